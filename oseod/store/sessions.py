"""The operator console's server-side sessions (failed logins are counted
for every transport by oseod.store.lockouts).

A session lives in one Redis hash named by the SHA-256 of its token: the
token itself (the cookie's value) is never stored, so a copy of the database
opens no session. Idle timeouts are decided by the caller's clock (the
``seen`` field); the key's TTL only sweeps away sessions nobody ends.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from typing import Any

from ..model.sessions import SessionRecord
from . import keys, lua

# A session key outlives its idle timeout by this much at most before Redis drops it.
SWEEP_MARGIN = 60


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# The sessions' scripts (lua/session_*.lua, each headed by its KEYS and ARGV).
_CREATE = lua.load("session_create")
_TOUCH = lua.load("session_touch")
_FLASH = lua.load("session_flash")
_TAKE = lua.load("session_take_flashes")


class SessionStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    @property
    def _conn(self) -> Any:
        return self._redis.conn

    async def create(self, user: str, *, now: float, idle_seconds: float, address: str = "") -> tuple[str, SessionRecord]:
        """A new session for ``user``: its token (for the cookie, never kept) and record."""
        while True:
            token = secrets.token_urlsafe(32)
            record = SessionRecord(token_digest=_digest(token), user=user, csrf=secrets.token_urlsafe(32),
                                   created_at=now, seen_at=now, address=address)
            created = await self._conn.eval(_CREATE, [keys.console_session(record.token_digest)], [
                str(int(idle_seconds) + SWEEP_MARGIN),
                "user", user, "csrf", record.csrf, "created", repr(now), "seen", repr(now), "address", address,
            ])
            if str(created) == "1":
                return token, record

    async def get(self, token: str) -> SessionRecord | None:
        """The session of a cookie's token, None when there is none."""
        return await self.get_by_digest(_digest(token))

    async def get_by_digest(self, digest: str) -> SessionRecord | None:
        fields = await self._conn.hgetall(keys.console_session(digest))
        if not fields or "user" not in fields or "csrf" not in fields:
            return None
        try:
            return SessionRecord(token_digest=digest, user=fields["user"], csrf=fields["csrf"],
                                 created_at=float(fields.get("created", "0")), seen_at=float(fields.get("seen", "0")),
                                 address=fields.get("address", ""))
        except ValueError:
            return None

    async def touch(self, record: SessionRecord, *, now: float, idle_seconds: float) -> bool:
        """Note activity now; False when the session has gone meanwhile."""
        touched = await self._conn.eval(_TOUCH, [keys.console_session(record.token_digest)],
                                        [repr(now), str(int(idle_seconds) + SWEEP_MARGIN)])
        return str(touched) == "1"

    async def delete(self, record: SessionRecord) -> None:
        await self._conn.delete(keys.console_session(record.token_digest))

    async def flash(self, record: SessionRecord, kind: str, text: str) -> None:
        """Keep a message for the session's next page."""
        await self._conn.eval(_FLASH, [keys.console_session(record.token_digest)], [json.dumps([kind, text])])

    async def take_flashes(self, record: SessionRecord) -> Sequence[tuple[str, str]]:
        """The kept messages, oldest first, forgotten as they are read."""
        kept = await self._conn.eval(_TAKE, [keys.console_session(record.token_digest)], [])
        if not kept:
            return ()
        try:
            return tuple((str(kind), str(text)) for kind, text in json.loads(kept))
        except (ValueError, TypeError):
            return ()
