"""Failed logins, counted per user name and per client address for every
transport (oseod.auth.lockout decides what they mean).

One Redis hash per subject, named by the SHA-256 of the user name or address,
so that every daemon sharing the Redis counts together and no client-chosen
text becomes a key name. Times are the caller's clock (POSIX seconds), kept
in the hash: the window is decided by that clock, and the key's TTL only
sweeps away subjects nobody fails with any more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import attrs

from . import keys, lua

# A subject's hash is kept this much longer than its window after its last failure.
SWEEP_MARGIN = 60


_READ = lua.load("login_failures_read")
_COUNT = lua.load("login_failures_count")
_CLEAR = lua.load("login_failures_clear")


@attrs.frozen
class Subject:
    """Whose failures: ``scope`` oseod.model.logins.USER or ADDRESS, ``name`` the user name's
    bytes as the client sent them, or the address."""

    scope: str
    name: bytes

    @property
    def key(self) -> str:
        return keys.login_failures(self.scope, hashlib.sha256(self.name).hexdigest())


@attrs.frozen
class Failures:
    """A subject's failed logins: ``count`` in the window that started at
    ``start``; ``locked_until`` once the count reached the limit (None: not
    locked, or never). A stale window still reads as stored: compare with the clock."""

    count: int = 0
    start: float | None = None
    locked_until: float | None = None
    newly_locked: bool = False  # for :meth:`LockoutStore.count`: this failure locked it


def _number(value: Any) -> float | None:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return float(text) if text else None


class LockoutStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def read(self, subjects: Sequence[Subject]) -> list[Failures]:
        """The stored failures of each subject (one round trip)."""
        rows = await self._redis.conn.eval(_READ, [s.key for s in subjects], [])
        return [Failures(count=int(_number(n) or 0), start=_number(start), locked_until=_number(until))
                for n, start, until in rows]

    async def count(self, subjects: Sequence[Subject], limits: Sequence[int], *, now: float,
                    window_seconds: float) -> list[Failures]:
        """One more failed login of each subject, each with its limit; what
        they are now (``start`` is not read back)."""
        keep = math.ceil(window_seconds) + SWEEP_MARGIN
        rows = await self._redis.conn.eval(_COUNT, [s.key for s in subjects],
                                           [repr(float(now)), repr(float(window_seconds)), str(keep),
                                            *(str(limit) for limit in limits)])
        return [Failures(count=int(_number(n) or 0), locked_until=_number(until), newly_locked=int(newly) == 1)
                for n, until, newly in rows]

    async def clear(self, user: Subject, address: Subject | None, *, now: float) -> tuple[Subject, float] | None:
        """A good login of ``user`` (from ``address``): its failures are
        forgotten, unless either is locked out at ``now``; then which one and
        until when, and nothing changes."""
        subjects = [user] if address is None else [user, address]
        which, until = await self._redis.conn.eval(_CLEAR, [s.key for s in subjects], [repr(float(now))])
        if int(which) == 0:
            return None
        locked_until = _number(until)
        assert locked_until is not None
        return subjects[int(which) - 1], locked_until
