"""Credential checkers for the one Portal: accounts in Redis, and the chain
that asks each configured password source in turn (see also
:mod:`oseod.auth.ldap` and :mod:`oseod.auth.htpasswd`)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..reactors import IDaemonReactor
from ..store.connection import RedisUnavailable
from ..store.users import UserRecord, UserStore
from ..threads import ThreadPools
from .account import Account, KnownUser, account_of
from .passwords import hash_password, verify_password

CACHE_LIMIT = 10_000
V = TypeVar("V")
T = TypeVar("T")


class IRememberingChecker(ICredentialsChecker):
    """A checker that may vouch for credentials from what it holds in
    memory (a password it verified moments ago, against the account as it
    is now), with no I/O and no verification: what the Portal asks first for
    a client's next request, so that its login takes no Deferred's turn."""

    def rememberedAvatarId(credentials: ICredentials) -> Any:
        """The avatar id that ``requestAvatarId`` would give now, or None
        when it cannot be told without checking (then ``requestAvatarId``
        decides, whatever the answer: a refusal is never remembered)."""


def credential_bytes(value: str | bytes) -> bytes:
    """Credentials as the UTF-8 bytes the client meant. Transports that receive
    raw bytes (HTTP Basic, FTP after re-encoding) pass bytes; text from XML
    (a UsernameToken) is already decoded."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


class SuccessCache(Generic[V]):
    """Recently verified (user, password) pairs, so that a slow check (scrypt,
    bcrypt, a directory's bind) runs once per client and not once per
    request. Entries are keyed by a keyed BLAKE2b digest of the credentials
    (the key lives only in this process, so the digests are useless
    elsewhere) and keep what the check found: the stored hash it was made
    against, so that a password change invalidates the entry at once, or the
    account it vouched for."""

    def __init__(self, ttl: float, clock: IReactorTime) -> None:
        self._ttl = ttl
        self._clock = clock
        self._key = os.urandom(32)
        self._entries: dict[bytes, tuple[float, V]] = {}
        # Checks under way, by credentials: the callers that wait for each.
        self._flights: dict[bytes, list[defer.Deferred[Any]]] = {}

    def _digest(self, name: bytes, password: bytes) -> bytes:
        return hashlib.blake2b(name + b"\0" + password, key=self._key, digest_size=32).digest()

    def get(self, name: bytes, password: bytes) -> V | None:
        found = self.lookup(name, password)
        return found[0] if found is not None else None

    def lookup(self, name: bytes, password: bytes) -> tuple[V, bool] | None:
        """The value kept for these credentials (None when there is none or
        it expired), and whether the entry is in the last quarter of its life
        with no check of it under way: time to check again, in the
        background, so that a busy client never finds it expired (and all
        its requests waiting). One digest of the credentials for both."""
        if self._ttl <= 0:
            return None
        digest = self._digest(name, password)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        left = entry[0] - self._clock.seconds()
        if left <= 0:
            return None
        return entry[1], left < self._ttl / 4 and digest not in self._flights

    async def once(self, name: bytes, password: bytes, check: Callable[[], Awaitable[T]]) -> T:
        """``check()`` for these credentials, one at a time: a client's
        concurrent requests (its entry just expired, or its first burst)
        wait for the one check under way and share its outcome, instead of
        each running scrypt."""
        digest = self._digest(name, password)
        waiting = self._flights.get(digest)
        if waiting is not None:
            mine: defer.Deferred[T] = defer.Deferred()
            waiting.append(mine)
            return await mine
        waiting = self._flights[digest] = []
        try:
            outcome = await check()
        except BaseException:
            failure = Failure()
            for other in self._flights.pop(digest, ()):
                other.errback(failure)
            raise
        for other in self._flights.pop(digest, ()):
            other.callback(outcome)
        return outcome

    def remember(self, name: bytes, password: bytes, value: V) -> None:
        if self._ttl <= 0:
            return
        now = self._clock.seconds()
        if len(self._entries) >= CACHE_LIMIT:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= CACHE_LIMIT:
                self._entries.clear()
        self._entries[self._digest(name, password)] = (now + self._ttl, value)


def login_name(credentials: IUsernamePassword) -> tuple[str, bytes, bytes]:
    """The user name as text, and the name and password as the bytes to
    check; UnauthorizedLogin for a name that is not UTF-8 or an empty name
    or password (an empty password would be an anonymous bind to LDAP)."""
    name_bytes = credential_bytes(credentials.username)
    password = credential_bytes(credentials.password)
    try:
        name = name_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise UnauthorizedLogin("bad user name") from None
    if not name or not password:
        raise UnauthorizedLogin("empty user name or password")
    return name, name_bytes, password


class UnknownUser(UnauthorizedLogin):
    """This checker has no such user: the next checker of a chain may."""


class NotAGuess(UnauthorizedLogin):
    """A login refused for a reason that tells nothing about the password (a
    stale or replayed token, a source that cannot answer): it counts as no
    failed login for the lock-out (oseod.auth.lockout)."""


class CheckUnavailable(NotAGuess):
    """No source could answer (a directory down): the login is refused, but
    it is no wrong password."""


class LoginRecorder(Protocol):
    """Where a checker writes the logins it checked for real (the user
    store; operators see them as each user's last login)."""

    async def record_login(self, name: str, source: str, at: float, *, group: str = "", admin: bool = False,
                           email: str = "") -> None: ...


async def record_login(logins: LoginRecorder | None, name: str, source: str, at: float, log: Logger,
                       account: Account | None = None) -> None:
    """Record a login (with the ``account`` a source without records of
    ours vouched for); a failure to do so never fails the login itself."""
    if logins is None:
        return
    try:
        if account is None:
            await logins.record_login(name, source, at)
        else:
            await logins.record_login(name, source, at, group=account.group, admin=account.admin,
                                      email=account.email)
    except Exception as e:
        log.warn("cannot record the login of {user}: {error}", user=name, error=str(e) or repr(e))


@implementer(IRememberingChecker)
class UserStoreChecker:
    """Checks user name and password against the scrypt hashes in Redis."""

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, users: UserStore, reactor: IDaemonReactor, cache_seconds: float = 60.0, clock: IReactorTime | None = None, *,
                 threads: ThreadPools, decoy: bool = True) -> None:
        self._users = users
        self._reactor = reactor
        self._threads = threads
        self._clock = clock if clock is not None else reactor
        self._cache: SuccessCache[str] = SuccessCache(cache_seconds, self._clock)
        #: scrypt verifications run so far (the cache's effect shows here).
        self.verifications = 0
        # Verifying against this for unknown users keeps a login for a missing
        # account as slow as one with a wrong password: no user enumeration.
        # Without (``decoy=False``, when other checkers follow in a chain and
        # answer for the names unknown here), an unknown name is UnknownUser
        # at once.
        self._decoy = hash_password(os.urandom(16).hex()) if decoy else None

    def rememberedAvatarId(self, credentials: IUsernamePassword) -> KnownUser | None:  # type: ignore[override]
        # Most logins are a client's next request: its record is held and its
        # password was verified moments ago, so the answer needs no I/O.
        # A disabled account is left to requestAvatarId, which says so.
        try:
            name, name_bytes, password = login_name(credentials)
        except UnauthorizedLogin:
            return None
        record = self._users.held(name)
        if record is None or record.disabled:
            return None
        found = self._cache.lookup(name_bytes, password)
        if found is None or not hmac.compare_digest(found[0], record.password_hash):
            return None
        if found[1]:
            self._check_again(name_bytes, password, record.password_hash)
        return KnownUser(account_of(record))

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        known = self.rememberedAvatarId(credentials)
        if known is not None:
            return defer.succeed(known)
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> KnownUser:
        name, name_bytes, password = login_name(credentials)
        record = await self._users.get(name)
        if record is None and self._decoy is None:
            raise UnknownUser("wrong user name or password")
        stored = record.password_hash if record is not None else self._decoy
        assert stored is not None
        if record is not None and (found := self._cache.lookup(name_bytes, password)) is not None \
                and hmac.compare_digest(found[0], stored):
            if found[1]:
                self._check_again(name_bytes, password, stored)
            return self._enabled(record)
        matched = await self._cache.once(name_bytes, password, lambda: self._verify(password, stored))
        if record is None or not matched:
            self.log.info("login refused for {user}", user=name)
            raise UnauthorizedLogin("wrong user name or password")
        self._cache.remember(name_bytes, password, stored)
        known = self._enabled(record)
        await record_login(self._users, name, "redis", self._clock.seconds(), self.log)
        return known

    def _verify(self, password: bytes, stored: str) -> defer.Deferred[bool]:
        self.verifications += 1
        return self._threads.on_cpu(verify_password, password, stored)

    def _check_again(self, name: bytes, password: bytes, stored: str) -> None:
        """Verify a cached password again before its entry expires (in the
        background: the request that noticed is answered from the cache)."""

        async def again() -> None:
            if await self._cache.once(name, password, lambda: self._verify(password, stored)):
                self._cache.remember(name, password, stored)

        defer.Deferred.fromCoroutine(again()).addErrback(
            lambda failure: self.log.debug("password check ahead of expiry failed: {error}", error=failure.value))

    def _enabled(self, record: UserRecord) -> KnownUser:
        # After the password check, so that a wrong password to a disabled
        # account reads as any wrong password.
        if record.disabled:
            self.log.info("login refused for {user}: the account is disabled", user=record.name)
            raise UnauthorizedLogin("the account is disabled")
        return KnownUser(account_of(record))


@implementer(IRememberingChecker)
class PasswordChain:
    """User names and passwords checked by several sources in turn ([auth]
    checkers: Redis, a password file, a directory): the first that accepts
    wins. A source that does not know the name, or refuses the password,
    passes to the next; one that cannot answer (a directory down) is logged
    and passed over too, so that local accounts still work."""

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, checkers: Sequence[tuple[str, ICredentialsChecker]]) -> None:
        self._checkers = tuple(checkers)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._checkers)

    def start(self) -> None:
        """Make each source ready (read a password file, a CA file); the
        first that cannot be stops the start, named."""
        for name, checker in self._checkers:
            start = getattr(checker, "start", None)
            if start is not None:
                try:
                    start()
                except ValueError as e:
                    raise ValueError(f"{name} checker: {e}") from None

    def rememberedAvatarId(self, credentials: IUsernamePassword) -> Any:  # type: ignore[override]
        # Only a chain of one: with several, a name remembered by a later
        # source may have been taken by an earlier one since.
        if len(self._checkers) == 1:
            checker = self._checkers[0][1]
            if IRememberingChecker.providedBy(checker):
                return checker.rememberedAvatarId(credentials)
        return None

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred[Any]:  # type: ignore[override]
        if len(self._checkers) == 1:
            # One source (the usual case): its answer, without a chain's turn
            # (this runs for every request that logs in).
            name, checker = self._checkers[0]
            checking: defer.Deferred[Any] = checker.requestAvatarId(credentials)
            return checking.addErrback(self._one_failed, name)
        return defer.Deferred.fromCoroutine(self._check(credentials))

    def _one_failed(self, failure: Failure, name: str) -> Any:
        if failure.check(RedisUnavailable):
            return failure  # the whole service waits for Redis: 503, not a refused login
        if failure.check(UnauthorizedLogin):
            if failure.check(UnknownUser):
                raise UnauthorizedLogin("wrong user name or password")
            return failure
        raise self._unavailable(name, failure.value)

    def _unavailable(self, name: str, error: BaseException | None) -> UnauthorizedLogin:
        """A source that could not answer (a directory down): logged; the
        refusal to give the client."""
        self.log.warn("password check by {checker} failed: {error}", checker=name, error=str(error) or repr(error))
        return CheckUnavailable("the password cannot be checked now; try again later")

    async def _check(self, credentials: IUsernamePassword) -> Any:
        refusal: UnauthorizedLogin = UnauthorizedLogin("wrong user name or password")
        for name, checker in self._checkers:
            try:
                return await checker.requestAvatarId(credentials)
            except UnknownUser:
                continue
            except UnauthorizedLogin as e:
                refusal = e
            except RedisUnavailable:
                raise  # nothing but the check works without Redis: 503, not a refusal
            except Exception as e:
                refusal = self._unavailable(name, e)
        raise refusal
