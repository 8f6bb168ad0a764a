"""Credential checkers for the one Portal. The first: accounts in Redis."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

from ..store.users import UserStore
from .account import KnownUser, account_of
from .passwords import hash_password, verify_password

CACHE_LIMIT = 10_000


def credential_bytes(value: str | bytes) -> bytes:
    """Credentials as the UTF-8 bytes the client meant. Transports that receive
    raw bytes (HTTP Basic, FTP after re-encoding) pass bytes; text from XML
    (a UsernameToken) is already decoded."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


class _SuccessCache:
    """Recently verified (user, password) pairs, so scrypt runs once per client
    and not once per request. Entries are keyed by a keyed BLAKE2b digest of
    the credentials (the key lives only in this process, so the digests are
    useless elsewhere) and remember the stored hash they were verified
    against, so a password change invalidates them at once."""

    def __init__(self, ttl: float, clock: Any) -> None:
        self._ttl = ttl
        self._clock = clock
        self._key = os.urandom(32)
        self._entries: dict[bytes, tuple[float, str]] = {}

    def _digest(self, name: bytes, password: bytes) -> bytes:
        return hashlib.blake2b(name + b"\0" + password, key=self._key, digest_size=32).digest()

    def hit(self, name: bytes, password: bytes, stored_hash: str) -> bool:
        if self._ttl <= 0:
            return False
        entry = self._entries.get(self._digest(name, password))
        return (
            entry is not None
            and entry[0] > self._clock.seconds()
            and hmac.compare_digest(entry[1], stored_hash)
        )

    def remember(self, name: bytes, password: bytes, stored_hash: str) -> None:
        if self._ttl <= 0:
            return
        now = self._clock.seconds()
        if len(self._entries) >= CACHE_LIMIT:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= CACHE_LIMIT:
                self._entries.clear()
        self._entries[self._digest(name, password)] = (now + self._ttl, stored_hash)


@implementer(ICredentialsChecker)
class UserStoreChecker:
    """Checks user name and password against the scrypt hashes in Redis."""

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, users: UserStore, reactor: Any, cache_seconds: float = 60.0, clock: Any = None) -> None:
        self._users = users
        self._reactor = reactor
        self._cache = _SuccessCache(cache_seconds, clock if clock is not None else reactor)
        #: scrypt verifications run so far (the cache's effect shows here).
        self.verifications = 0
        # Verifying against this for unknown users keeps a login for a missing
        # account as slow as one with a wrong password: no user enumeration.
        self._decoy = hash_password(os.urandom(16).hex())

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> KnownUser:
        name_bytes = credential_bytes(credentials.username)
        password = credential_bytes(credentials.password)
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise UnauthorizedLogin("bad user name") from None
        if not name or not password:
            raise UnauthorizedLogin("empty user name or password")
        record = await self._users.get(name)
        stored = record.password_hash if record is not None else self._decoy
        if record is not None and self._cache.hit(name_bytes, password, stored):
            return KnownUser(account_of(record))
        self.verifications += 1
        matched = await threads.deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), verify_password, password, stored
        )
        if record is None or not matched:
            self.log.info("login refused for {user}", user=name)
            raise UnauthorizedLogin("wrong user name or password")
        self._cache.remember(name_bytes, password, stored)
        return KnownUser(account_of(record))
