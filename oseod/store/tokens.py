"""OAuth2 bearer tokens (POST /odata/v1/token) in Redis.

A token is 256 random bits the client holds; Redis holds only its SHA-256,
in a hash named by the digest's first 16 hex digits (the token's id, what
operators list and revoke), so a copy of the database lets nobody in.
Expiry is decided by the caller's clock (the ``expires`` field); the key's
TTL only sweeps away tokens nobody revokes. Each user's unexpired tokens are
a sorted set scored by expiry, and everybody's another (for operators);
issuing past the per-user cap revokes the user's oldest.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from typing import Any

from ..model.tokens import AccessToken
from . import keys, lua

# A token's hash outlives its expiry by this much at most before Redis drops it.
SWEEP_MARGIN = 60
# What a client may send as a token: what token_urlsafe makes, with room to spare.
TOKEN_FORM = re.compile(r"^[A-Za-z0-9_\-.~+/]{16,256}=*$")
TOKEN_PREFIX = "oseod_"
TOKEN_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_LISTED = 1000

_CREATE = lua.load("token_create")
_REVOKE = lua.load("token_revoke")
_REVOKE_USER = lua.load("token_revoke_user")
_LIST = lua.load("token_list")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def token_id_of(token: str) -> str:
    """The id of a token: the first 16 hex digits of its SHA-256."""
    return token_digest(token)[:16]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _record(token_id: str, fields: Any) -> AccessToken | None:
    if isinstance(fields, (list, tuple)):
        fields = {_text(k): _text(v) for k, v in zip(fields[::2], fields[1::2])}
    else:
        fields = {_text(k): _text(v) for k, v in fields.items()}
    try:
        return AccessToken(token_id=token_id, user=fields["user"], created_at=float(fields["created"]),
                           expires_at=float(fields["expires"]), grant=fields.get("grant", ""),
                           address=fields.get("address", ""), password_mark=fields.get("mark", ""),
                           group=fields.get("group", "default"), admin=fields.get("admin") == "1",
                           email=fields.get("email", ""))
    except (KeyError, ValueError):
        return None  # a damaged record lets nobody in


class TokenStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    @property
    def _conn(self) -> Any:
        return self._redis.conn

    async def create(self, user: str, *, now: float, lifetime: float, max_per_user: int, grant: str = "",
                     address: str = "", password_mark: str = "", group: str = "default", admin: bool = False,
                     email: str = "") -> tuple[str, AccessToken, list[str]]:
        """A new token for ``user`` valid ``lifetime`` seconds from ``now``:
        the token (for the client, never kept), its record, and the ids of
        the user's tokens revoked to stay within ``max_per_user``."""
        while True:
            # A prefix: a token never begins with "-" (which oseoctl, like any
            # command line, would take for an option), and secret scanners
            # and people can tell an oseod token at a glance.
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            digest = token_digest(token)
            record = AccessToken(token_id=digest[:16], user=user, created_at=now, expires_at=now + lifetime,
                                 grant=grant, address=address, password_mark=password_mark, group=group,
                                 admin=admin, email=email)
            answer = await self._conn.eval(_CREATE, [
                keys.access_token(record.token_id), keys.access_tokens(user), keys.access_tokens(None),
            ], [
                repr(float(now)), repr(float(record.expires_at)), str(math.ceil(lifetime) + SWEEP_MARGIN),
                str(max_per_user), record.token_id, keys.access_token_prefix(),
                "user", user, "digest", digest, "created", repr(float(now)), "expires", repr(record.expires_at),
                "grant", grant, "address", address, "mark", password_mark, "group", group,
                "admin", "1" if admin else "0", "email", email,
            ])
            if int(answer[0]) == 1:
                return token, record, [_text(old) for old in answer[1:]]

    async def find(self, token: str, *, now: float) -> AccessToken | None:
        """The unexpired token the client holds, None when there is none."""
        if not TOKEN_FORM.match(token):
            return None
        digest = token_digest(token)
        fields = await self._conn.hgetall(keys.access_token(digest[:16]))
        if not fields:
            return None
        stored = _text(fields.get("digest", fields.get(b"digest", "")))
        record = _record(digest[:16], fields)
        if record is None or not hmac.compare_digest(stored, digest) or record.expires_at <= now:
            return None
        return record

    async def get(self, token_id: str) -> AccessToken | None:
        """The token of this id as stored (expired or not), None when there is none."""
        if not TOKEN_ID.match(token_id):
            return None
        fields = await self._conn.hgetall(keys.access_token(token_id))
        return _record(token_id, fields) if fields else None

    async def list(self, user: str | None, *, now: float, limit: int = MAX_LISTED) -> Sequence[AccessToken]:
        """The unexpired tokens of ``user`` (None: everybody's), soonest to expire first."""
        rows = await self._conn.eval(_LIST, [keys.access_tokens(user)],
                                     [repr(float(now)), str(limit), keys.access_token_prefix()])
        found = [_record(_text(token_id), fields) for token_id, fields in rows or ()]
        return [record for record in found if record is not None]

    async def revoke(self, token_id: str) -> str | None:
        """Revoke the token of this id; its owner, None when there was none."""
        if not TOKEN_ID.match(token_id):
            return None
        owner = await self._conn.eval(_REVOKE, [keys.access_token(token_id), keys.access_tokens(None)],
                                      [keys.access_tokens_prefix(), token_id])
        return _text(owner) if owner else None

    async def revoke_user(self, user: str, *, now: float) -> int:
        """Revoke every token of ``user``; how many were unexpired."""
        revoked = await self._conn.eval(_REVOKE_USER, [keys.access_tokens(user), keys.access_tokens(None)],
                                        [repr(float(now)), keys.access_token_prefix()])
        return int(revoked or 0)
