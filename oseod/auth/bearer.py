"""OAuth2 bearer tokens (RFC 6750) through the one Portal.

``POST /odata/v1/token`` (oseod.http.odata_token) logs a client in with a
password and asks :class:`BearerTokens` for a token; a later request's
``Authorization: Bearer`` becomes a :class:`BearerToken`, checked by
:class:`BearerChecker` like any credentials, so that /odata, /oseo and
/results take tokens wherever they take HTTP Basic.

A token carries no user name a client chose: a wrong, expired or revoked
one counts as a failed login of the client's address only
(:class:`oseod.auth.lockout.LockoutPortal`).

A token lives until it expires or is revoked (oseoctl token revoke), and
dies with its user's password: it remembers a digest of the password hash
of the user's record at issue, and a user whose password changed, who was
deleted or disabled since, is refused. Users with no record of ours (a
password file's, a directory's) keep what their source said of them
(group, admin, e-mail) in the token, whose logins ask no directory.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from typing import Any

import attrs
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..model.tokens import AccessToken, BearerToken, IBearerToken
from ..store.tokens import TOKEN_ID, TokenStore, token_id_of
from ..store.users import UserStore
from .account import Account, KnownUser, account_of

INVALID = "the bearer token is invalid, expired or revoked"
# How long a checked token is taken on trust by this process (see SeenTokens).
DEFAULT_SEEN_SECONDS = 1.0
SEEN_LIMIT = 10_000

__all__ = ["BearerChecker", "BearerToken", "BearerTokens", "IBearerToken", "Issued", "SeenTokens", "password_mark"]


def password_mark(password_hash: str) -> str:
    """What a token remembers of its user's password hash (enough to tell
    that it changed, too little to be worth stealing)."""
    return hashlib.sha256(b"oseod token mark\0" + password_hash.encode("utf-8")).hexdigest()[:16]


@attrs.frozen
class Issued:
    token: str = attrs.field(repr=False)
    expires_in: int
    record: AccessToken
    revoked: Sequence[str] = ()  # ids of the user's oldest tokens, revoked for the cap


class BearerTokens:
    """Issues, lists and revokes tokens: ``lifetime`` seconds each ([odata]
    token_seconds), at most ``max_per_user`` unexpired per user
    ([odata] max_tokens_per_user; issuing more revokes the oldest)."""

    log = Logger()

    def __init__(self, store: TokenStore, users: UserStore, clock: IReactorTime, *, lifetime: float,
                 max_per_user: int, seen_seconds: float = DEFAULT_SEEN_SECONDS) -> None:
        self._store = store
        self._users = users
        self._clock = clock
        self.lifetime = lifetime
        self.max_per_user = max_per_user
        self._seen = SeenTokens(clock, seen_seconds)

    def checker(self) -> BearerChecker:
        """The Portal's checker of these tokens (a revocation here reaches it at once)."""
        return BearerChecker(self._store, self._users, self._clock, self._seen)

    async def issue(self, account: Account, *, grant: str, address: str = "") -> Issued:
        """A token for ``account``, just logged in with a password."""
        record = await self._users.get(account.name)
        mark = password_mark(record.password_hash) if record is not None else ""
        token, stored, revoked = await self._store.create(
            account.name, now=self._clock.seconds(), lifetime=self.lifetime, max_per_user=self.max_per_user,
            grant=grant, address=address, password_mark=mark, group=account.group, admin=account.admin,
            email=account.email)
        self.log.info("bearer token {id} issued to {user} ({grant} grant, from {address})", id=stored.token_id,
                      user=account.name, grant=grant, address=address or "-")
        if revoked:
            self._seen.forget()
            self.log.info("{user} holds {limit} tokens: revoked the oldest ({ids})", user=account.name,
                          limit=self.max_per_user, ids=", ".join(revoked))
        return Issued(token, math.ceil(self.lifetime), stored, tuple(revoked))

    async def list(self, user: str | None = None) -> Sequence[AccessToken]:
        """The unexpired tokens of ``user`` (None: everybody's), soonest to expire first."""
        return await self._store.list(user, now=self._clock.seconds())

    async def revoke(self, token_or_id: str) -> AccessToken | None:
        """Revoke a token given by its id (as listed) or by itself; what
        it was, None when there is no such token."""
        given = token_or_id.strip()
        token_id = given if TOKEN_ID.match(given) else token_id_of(given)
        found = await self._store.get(token_id)
        owner = await self._store.revoke(token_id)
        self._seen.forget()
        if owner is None:
            return None
        return found if found is not None else AccessToken(token_id=token_id, user=owner, created_at=0.0,
                                                           expires_at=0.0)

    async def revoke_user(self, user: str) -> int:
        """Revoke every token of ``user``; how many were unexpired."""
        revoked = await self._store.revoke_user(user, now=self._clock.seconds())
        self._seen.forget()
        return revoked


class SeenTokens:
    """The tokens this process checked within the last ``seconds`` (1 s),
    so that a client's next requests cost no Redis read, as its password's
    do (oseod.auth.checkers.SuccessCache). Keyed by a keyed BLAKE2b digest
    of the token (the key lives only in this process). A revocation here
    forgets them all at once; one made by another daemon applies here
    within ``seconds``, as a lock-out does."""

    def __init__(self, clock: IReactorTime, seconds: float = DEFAULT_SEEN_SECONDS) -> None:
        self._clock = clock
        self._seconds = seconds
        self._key = os.urandom(32)
        self._entries: dict[bytes, tuple[float, AccessToken, KnownUser]] = {}

    def _digest(self, token: str) -> bytes:
        return hashlib.blake2b(token.encode("utf-8", "surrogateescape"), key=self._key, digest_size=32).digest()

    def get(self, token: str) -> tuple[AccessToken, KnownUser] | None:
        entry = self._entries.get(self._digest(token))
        if entry is None or entry[0] <= self._clock.seconds():
            return None
        return entry[1], entry[2]

    def remember(self, token: str, found: AccessToken, user: KnownUser) -> None:
        if self._seconds <= 0:
            return
        now = self._clock.seconds()
        if len(self._entries) >= SEEN_LIMIT:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= SEEN_LIMIT:
                self._entries.clear()
        self._entries[self._digest(token)] = (min(now + self._seconds, found.expires_at), found, user)

    def forget(self) -> None:
        self._entries.clear()


@implementer(ICredentialsChecker)
class BearerChecker:
    """A token the store holds, unexpired, whose user may still log in."""

    credentialInterfaces = (IBearerToken,)
    log = Logger()

    def __init__(self, store: TokenStore, users: UserStore, clock: IReactorTime, seen: SeenTokens | None = None
                 ) -> None:
        self._store = store
        self._users = users
        self._clock = clock
        self._seen = seen if seen is not None else SeenTokens(clock, 0)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        token = str(credentials.token)
        # A client's next request, most likely: answered without I/O nor a
        # coroutine's turn while its user's record is held fresh (a change
        # of password, or disabling, made here is seen at once).
        seen = self._seen.get(token)
        if seen is not None:
            found, user = seen
            if not found.password_mark:
                return defer.succeed(user)
            record = self._users.held(found.user)
            if record is not None and not record.disabled and password_mark(record.password_hash) == found.password_mark:
                return defer.succeed(KnownUser(account_of(record)))
        return defer.Deferred.fromCoroutine(self._check(token))

    async def _check(self, token: str) -> KnownUser:
        found = await self._store.find(token, now=self._clock.seconds())
        if found is None:
            raise UnauthorizedLogin(INVALID)
        record = await self._users.get(found.user)
        if not found.password_mark:
            # A user of another source; a record made since under that name
            # is another account, whose password the token never proved.
            if record is not None:
                raise self._refuse(found, "the user name is now a local account")
            user = KnownUser(Account(name=found.user, group=found.group, admin=found.admin, email=found.email))
        elif record is None:
            raise self._refuse(found, "the user was deleted")
        elif password_mark(record.password_hash) != found.password_mark:
            raise self._refuse(found, "the user's password changed since")
        elif record.disabled:
            raise self._refuse(found, "the account is disabled")
        else:
            user = KnownUser(account_of(record))
        self._seen.remember(token, found, user)
        return user

    def _refuse(self, token: AccessToken, reason: str) -> UnauthorizedLogin:
        self.log.info("bearer token {id} of {user} refused: {reason}", id=token.token_id, user=token.user,
                      reason=reason)
        return UnauthorizedLogin(INVALID)
