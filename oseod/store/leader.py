"""Which daemon runs the periodic tasks: a lock in Redis with an expiry.

The holder renews it at every tick; if it dies, the lock runs out and the
next daemon to try takes it. A task may thus run twice around a takeover,
never concurrently for long: every periodic task is idempotent."""

from __future__ import annotations

import json
from typing import Any

import attrs

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

    async def current(self) -> str | None:
        """The daemon that leads now (None: none)."""
        holder = await self._redis.conn.get(keys.leader())
        return None if holder is None else str(holder)


@attrs.frozen
class TaskRunRecord:
    name: str
    at: float  # when it started
    seconds: float
    ok: bool


class TaskRuns:
    """The last run of each periodic task, whichever daemon ran it."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def record(self, run: TaskRunRecord) -> None:
        await self._redis.conn.hset(keys.task_runs(), run.name,
                                    json.dumps({"at": run.at, "seconds": run.seconds, "ok": run.ok}))

    async def last(self) -> dict[str, TaskRunRecord]:
        found = await self._redis.conn.hgetall(keys.task_runs()) or {}
        runs = {}
        for name, text in found.items():
            data = json.loads(text)
            runs[str(name)] = TaskRunRecord(str(name), float(data["at"]), float(data["seconds"]), bool(data["ok"]))
        return runs
