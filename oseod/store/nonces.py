"""WS-Security nonces seen recently, so a captured UsernameToken cannot be replayed."""

from __future__ import annotations

from typing import Any

from . import keys

MAX_NONCE_ID = 256


class NonceStore:
    """One short-lived Redis key per nonce. Redis expires them, so the set never
    grows beyond the nonces of one freshness window; several daemons sharing a
    Redis share it too, so a token replayed to another daemon is refused as well."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def first_use(self, nonce: str, ttl: int) -> bool:
        """Record ``nonce`` for ``ttl`` seconds: True the first time, False while
        it is remembered. One SET NX EX, so two concurrent uses cannot both win."""
        if not nonce or len(nonce) > MAX_NONCE_ID:
            raise ValueError(f"a nonce id has 1 to {MAX_NONCE_ID} characters")
        if ttl < 1:
            raise ValueError("a nonce is remembered for at least one second")
        result = await self._redis.conn.set(keys.nonce(nonce), "1", expire=ttl, only_if_not_exists=True)
        return result == "OK"
