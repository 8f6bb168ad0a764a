"""User accounts in Redis: who may log in, with which group and rights."""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime

from ..model.users import USER_NAME, Login, NoSuchUser, UserExists, UserRecord, check_group_name, check_user_name
from . import keys, lua

# The users' scripts (lua/user_*.lua, each headed by its KEYS and ARGV).
_CREATE = lua.load("user_create")
_DELETE = lua.load("user_delete")
_UPDATE = lua.load("user_update")


# How long a daemon may answer from a user record it read: every request
# authenticates, and a client (a portal's service account, a script polling
# GetStatus) may send hundreds a second. A change made through this daemon
# applies at once; one made through another daemon on the same Redis, within
# this many seconds.
RECORD_FRESH_SECONDS = 1.0
_KEPT_RECORDS = 10_000


class UserStore:
    """The accounts that the Redis checker authenticates against.

    With a ``clock``, a record read is reused for RECORD_FRESH_SECONDS;
    without one, every ``get`` reads Redis."""

    def __init__(self, redis: Any, clock: IReactorTime | None = None) -> None:
        self._redis = redis
        self._clock = clock
        self._fresh: dict[str, tuple[float, UserRecord | None]] = {}
        self._changes = 0  # a read that overlapped a change of ours is not kept

    async def create(self, record: UserRecord) -> None:
        check_user_name(record.name)
        check_group_name(record.group)
        if not record.created_at:
            record = attrs.evolve(record, created_at=time.time())
        self._forget(record.name)
        # User changes are told to an operator: on the replicas first ([redis] min_replicas).
        created = await self._redis.conn.eval(
            _CREATE, [keys.user(record.name), keys.users()], [record.name, *record.to_fields()], acknowledged=True
        )
        if str(created) != "1":
            raise UserExists(record.name)

    def held(self, name: str) -> UserRecord | None:
        """The record of ``name`` as ``get`` would answer it without asking
        Redis (read within RECORD_FRESH_SECONDS); None when it would have
        to ask, or there is no such user."""
        if self._clock is None:
            return None
        kept = self._fresh.get(name)
        return kept[1] if kept is not None and kept[0] > self._clock.seconds() else None

    async def get(self, name: str) -> UserRecord | None:
        if not USER_NAME.match(name):
            return None
        if self._clock is not None:
            kept = self._fresh.get(name)
            if kept is not None and kept[0] > self._clock.seconds():
                return kept[1]
        changes = self._changes
        fields = await self._redis.conn.hgetall(keys.user(name))
        record = UserRecord.from_fields(name, fields) if fields else None
        if self._clock is not None and changes == self._changes:
            if len(self._fresh) >= _KEPT_RECORDS:
                self._fresh.clear()
            self._fresh[name] = (self._clock.seconds() + RECORD_FRESH_SECONDS, record)
        return record

    def _forget(self, name: str) -> None:
        self._changes += 1
        self._fresh.pop(name, None)

    async def list(self) -> list[UserRecord]:
        names = sorted(await self._redis.conn.smembers(keys.users()))
        records = []
        for name in names:
            record = await self.get(name)
            if record is not None:
                records.append(record)
        return records

    async def delete(self, name: str) -> None:
        self._forget(name)
        # Its SSH keys go with it: a user made again under that name starts without them.
        deleted = await self._redis.conn.eval(_DELETE, [keys.user(name), keys.users(), keys.ssh_keys(name)], [name],
                                              acknowledged=True)
        if str(deleted) != "1":
            raise NoSuchUser(name)

    async def update(self, name: str, *, password_hash: str | None = None, digest_secret: str | None = None,
                     group: str | None = None, admin: bool | None = None, email: str | None = None,
                     disabled: bool | None = None) -> None:
        """Change the given fields at once. A new ``password_hash`` always
        replaces the digest secret: by ``digest_secret`` when given, else by
        none, so an old password never survives a change as a secret."""
        fields: list[str] = []
        deleted: list[str] = []
        if digest_secret is not None and password_hash is None:
            raise ValueError("a digest secret is only ever set together with its password hash")
        if password_hash is not None:
            fields += ["password", password_hash]
            if digest_secret:
                fields += ["digest_secret", digest_secret]
            else:
                deleted.append("digest_secret")
        if group is not None:
            fields += ["group", check_group_name(group)]
        if admin is not None:
            fields += ["admin", "1" if admin else "0"]
        if email is not None:
            fields += ["email", email]
        if disabled is not None:
            fields += ["disabled", "1" if disabled else "0"]
        if not fields:
            return
        self._forget(name)
        updated = await self._redis.conn.eval(_UPDATE, [keys.user(name)], [str(len(deleted)), *deleted, *fields],
                                              acknowledged=True)
        if str(updated) != "1":
            raise NoSuchUser(name)

    async def record_login(self, name: str, source: str, at: float, *, group: str = "", admin: bool = False,
                           email: str = "") -> None:
        """A password check by ``source`` ("redis", "file", "ldap") let
        ``name`` in at ``at``, with what the source said of the account
        (a directory's group...). Called on real checks only, not on answers
        from a checker's cache: a client polling every second costs nothing."""
        await self._redis.conn.hset(keys.logins(), name, json.dumps(
            {"source": source, "at": at, "group": group, "admin": admin, "email": email}))

    async def logins(self) -> dict[str, Login]:
        """The last real login of every user who has logged in, by name."""
        found = await self._redis.conn.hgetall(keys.logins()) or {}
        return {str(name): _login(text) for name, text in found.items()}

    async def login(self, name: str) -> Login | None:
        """The last real login of ``name``, if any."""
        text = await self._redis.conn.hget(keys.logins(), name)
        return _login(text) if text else None

    async def forget_login(self, name: str) -> None:
        await self._redis.conn.hdel(keys.logins(), name)


def _login(text: str) -> Login:
    data = json.loads(text)
    return Login(str(data["source"]), float(data["at"]), str(data.get("group", "")), bool(data.get("admin", False)),
                 str(data.get("email", "")))
