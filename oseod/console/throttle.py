"""Failed console logins, counted per user name and per client address in
Redis (so that every daemon sharing it counts together): past the limit,
even the right password is refused until the window ends."""

from __future__ import annotations

import attrs

from ..store.sessions import SessionStore

USER = "user"
ADDRESS = "addr"


@attrs.frozen
class ThrottleLimits:
    per_user: int = 5
    per_address: int = 20
    window_seconds: int = 15 * 60


class LoginThrottle:
    def __init__(self, store: SessionStore, limits: ThrottleLimits = ThrottleLimits()) -> None:
        self._store = store
        self.limits = limits

    async def locked(self, user: str, address: str) -> float | None:
        """Seconds until ``user`` from ``address`` may try again; None: now."""
        waits = []
        for scope, subject, limit in ((USER, user, self.limits.per_user),
                                      (ADDRESS, address, self.limits.per_address)):
            count, left = await self._store.failures(scope, subject)
            if count >= limit:
                waits.append(left or float(self.limits.window_seconds))
        return max(waits) if waits else None

    async def failed(self, user: str, address: str) -> bool:
        """Count a failure; True when it locks the user name or the address out."""
        window = self.limits.window_seconds
        by_user = await self._store.count_failure(USER, user, window)
        by_address = await self._store.count_failure(ADDRESS, address, window)
        return by_user == self.limits.per_user or by_address == self.limits.per_address

    async def succeeded(self, user: str) -> None:
        """A good login clears its user name's failures (not its address's:
        one operator's success does not excuse guesses at other names)."""
        await self._store.clear_failures(USER, user)
