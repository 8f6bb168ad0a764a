"""Which daemon runs the periodic tasks: a lock in Redis with an expiry.

The holder renews it at every tick; if it dies, the lock runs out and the
next daemon to try takes it. A task may thus run twice around a takeover,
never concurrently for long: every periodic task is idempotent."""

from __future__ import annotations

from typing import Any

from . import keys

# KEYS: the lock. ARGV: holder, ttl in ms. Returns 1 when the caller holds it now.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

# KEYS: the lock. ARGV: holder. Lets go, if held by the caller.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLock:
    def __init__(self, redis: Any, holder: str) -> None:
        self._redis = redis
        self.holder = holder

    async def hold(self, seconds: float) -> bool:
        """Take or keep the lock for ``seconds``; whether this daemon leads."""
        return int(await self._redis.conn.eval(_HOLD, [keys.leader()], [self.holder, str(int(seconds * 1000))])) == 1

    async def release(self) -> None:
        await self._redis.conn.eval(_RELEASE, [keys.leader()], [self.holder])
