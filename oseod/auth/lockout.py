"""One lock-out for every way in: failed logins counted per user name and per
client address, whatever the transport (SOAP UsernameTokens, HTTP Basic,
FTP, the console), in Redis so that the daemons sharing it count together.
Past ``[auth] max_failures_per_user`` failures of a user name, or
``max_failures_per_address`` from an address, within ``lockout_minutes``,
that name or address is locked out for ``lockout_minutes``: every login is
refused, the right password too, and without being checked (a check would
answer faster for the right password than for a wrong one).

Every password login goes through :class:`LockoutPortal`, the daemon's one
Portal: a transport passes a :class:`Client` as the ``mind`` of
``Portal.login`` and learns of a lock-out by :class:`LockedOut`, an
``UnauthorizedLogin`` carrying the time left.

What a login costs: a client's next request, from the address its user
name logged in from here less than ``view_seconds`` (1 s) ago with no
failure of either counted here since, and whose password the checker's
cache answers, costs no Redis round trip and no coroutine's turn (a few
microseconds). Otherwise one read of both subjects' counters comes first
(one round trip); a good login whose check needed I/O of its own (a first
login, a password cache miss) is then settled by a second trip that clears
the user name's failures and catches a lock-out set meanwhile. A busy
client's view is read again in the background in the last quarter of its
life (:meth:`LoginLockout.keep_clean`), so its requests never wait for that
read (under load it waited behind the engine's Redis traffic, some 10 ms
for one request a second). A lock-out set by another daemon applies here
within ``view_seconds`` of the last read before it. Concurrent
guesses at one user name are taken one at a time (see :class:`LockoutPortal`).
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementedBy

from ..model.logins import ADDRESS, USER, Client, LockedOut
from ..model.tokens import IBearerToken
from ..store.audit import AuditStore
from ..store.connection import RedisUnavailable
from ..store.lockouts import Failures, LockoutStore, Subject
from .checkers import IRememberingChecker, NotAGuess, credential_bytes

AUDIT_ACTION = "login.lockout"
# How long this process trusts a clean read of a subject (no failures, not
# locked out) before reading Redis again: a lock-out set by another daemon
# takes at most this long to reach this one.
DEFAULT_VIEW_SECONDS = 1.0
VIEW_LIMIT = 10_000
# The user name under which the local view keeps logins that name nobody
# (bearer tokens): never one a client can log in with (empty names are refused).
ADDRESS_ONLY = b""
MAX_SHOWN_NAME = 256


@attrs.frozen
class LockoutLimits:
    per_user: int = 5
    per_address: int = 20
    seconds: float = 15 * 60.0


class LockoutObserver(Protocol):
    """Where failures and lock-outs are counted for /metrics
    (:class:`oseod.metrics.RequestMetrics` is one)."""

    def login_failed(self, via: str) -> None: ...

    def locked_out(self, via: str, scope: str) -> None: ...


class _Unobserved:
    def login_failed(self, via: str) -> None:
        pass

    def locked_out(self, via: str, scope: str) -> None:
        pass


def shown_name(name: bytes) -> str:
    """A user name as the audit log shows it (any bytes a client sent)."""
    return name[:MAX_SHOWN_NAME].decode("utf-8", "replace")


class LoginLockout:
    """The rules: when a login is refused unchecked, what a failure counts,
    what a good login clears; and this process's short-lived view of the
    (user name, address) pairs it has recently seen log in."""

    log = Logger()

    def __init__(self, store: LockoutStore, clock: IReactorTime, limits: LockoutLimits = LockoutLimits(), *,
                 audit: AuditStore | None = None, observer: LockoutObserver | None = None,
                 view_seconds: float = DEFAULT_VIEW_SECONDS) -> None:
        self._store = store
        self.clock = clock
        self.limits = limits
        self._audit = audit
        self._observer: LockoutObserver = observer if observer is not None else _Unobserved()
        self._view_seconds = view_seconds
        # The view: each (user name, address) that logged in here after a
        # read found the name without failures and neither locked out, until
        # when that is trusted and the event that read was; the last failure
        # counted here of each name and address, as an event. Events are a
        # sequence (the clock may stand still): a pair is clean while its read
        # is newer than every failure of its name and of its address.
        self._events = 0
        self._clean: dict[tuple[bytes, str], tuple[float, int]] = {}
        self._failed_users: dict[bytes, int] = {}
        self._failed_addresses: dict[str, int] = {}
        # The pairs whose view is being read again (keep_clean).
        self._refreshing: dict[tuple[bytes, str], defer.Deferred[None]] = {}

    # --- the local view ---------------------------------------------------------------

    def event(self) -> int:
        self._events += 1
        return self._events

    def seen_clean(self, user: bytes, address: str) -> bool:
        """Whether ``user`` logged in from ``address`` here within the last
        ``view_seconds``, found without failures nor lock-out, and no failure
        of either has been counted here since."""
        entry = self._clean.get((user, address))
        if entry is None:
            return False
        until, read = entry
        return until > self.clock.seconds() and self._failed_users.get(user, 0) < read \
            and self._failed_addresses.get(address, 0) < read

    def keep_clean(self, user: bytes, address: str) -> defer.Deferred[None] | None:
        """For a pair :meth:`seen_clean` let through: when its view is in the
        last quarter of its life, read both counters again in the background
        (one read per pair at a time) and, when they are still clean, trust
        the pair for another ``view_seconds``. The read under way, or None."""
        pair = (user, address)
        entry = self._clean.get(pair)
        if entry is None or entry[0] - self.clock.seconds() >= self._view_seconds / 4 or pair in self._refreshing:
            return None
        reading = defer.Deferred.fromCoroutine(self._read_again(user, address))
        if not reading.called:  # (a Redis away fails at once)
            self._refreshing[pair] = reading
            reading.addBoth(self._read_over, pair)
        return reading

    def _read_over(self, result: None, pair: tuple[bytes, str]) -> None:
        del self._refreshing[pair]
        return result

    async def _read_again(self, user: bytes, address: str) -> None:
        read = self.event()
        try:
            failures = await self.check(user if user != ADDRESS_ONLY else None, address)
        except LockedOut:
            return  # not renewed: the pair's next login after the view reads, and is refused
        except Exception as e:
            self.log.debug("reading the lock-out counters ahead of time failed: {error}", error=str(e) or repr(e))
            return
        if failures.count == 0:  # failures from elsewhere: the next login settles them, in turn
            self.remember_clean(user, address, read)

    def remember_clean(self, user: bytes, address: str, read: int) -> None:
        """``user`` logged in from ``address``, all clean as of event ``read``."""
        if self._view_seconds <= 0:
            return
        now = self.clock.seconds()
        if len(self._clean) >= VIEW_LIMIT:
            self._clean = {pair: entry for pair, entry in self._clean.items() if entry[0] > now}
            if len(self._clean) >= VIEW_LIMIT:
                self._clean.clear()
        self._clean[(user, address)] = (now + self._view_seconds, read)

    def _failing(self, user: bytes, address: str) -> None:
        if len(self._failed_users) >= VIEW_LIMIT or len(self._failed_addresses) >= VIEW_LIMIT:
            # Forgetting failures is safe only with the clean pairs they spoil.
            self._failed_users.clear()
            self._failed_addresses.clear()
            self._clean.clear()
        event = self.event()
        self._failed_users[user] = event
        self._failed_addresses[address] = event

    # --- the counters in Redis ------------------------------------------------------------

    @staticmethod
    def _subjects(user: bytes | None, address: str) -> list[Subject]:
        """Whose failures count: the user name's (None: the credentials name
        nobody, such as a bearer token) and the address's (when known)."""
        subjects = [Subject(USER, user)] if user is not None else []
        return subjects + ([Subject(ADDRESS, address.encode("utf-8", "replace"))] if address else [])

    async def check(self, user: bytes | None, address: str) -> Failures:
        """The user name's failures so far (none for ``user`` None);
        LockedOut when it or the address is locked out now."""
        subjects = self._subjects(user, address)
        found = await self._store.read(subjects) if subjects else []
        now = self.clock.seconds()
        waits = [(subject.scope, f.locked_until - now) for subject, f in zip(subjects, found)
                 if f.locked_until is not None and f.locked_until > now]
        if waits:
            scope, seconds = max(waits, key=lambda w: w[1])
            raise LockedOut(scope, seconds)
        by_name = found[0] if user is not None else Failures()
        if by_name.start is not None and by_name.start + self.limits.seconds <= now:
            by_name = Failures()  # a window that has ended
        return by_name

    async def failed(self, user: bytes | None, address: str, via: str) -> None:
        """Count a failed login (of the address alone for ``user`` None); a
        lock-out it causes is audited and counted."""
        view_name = user if user is not None else ADDRESS_ONLY
        self._failing(view_name, address)
        self._observer.login_failed(via)
        subjects = self._subjects(user, address)
        if not subjects:
            return
        limits = [self.limits.per_user if s.scope == USER else self.limits.per_address for s in subjects]
        counted = await self._store.count(subjects, limits, now=self.clock.seconds(),
                                          window_seconds=self.limits.seconds)
        self._failing(view_name, address)  # again: a read sent meanwhile may have been answered before the count
        for subject, failures, limit in zip(subjects, counted, limits):
            if failures.newly_locked:
                await self._locked_out(subject, user if user is not None else b"(bearer token)", address, via,
                                       limit)

    async def succeeded(self, user: bytes, address: str) -> None:
        """A good login clears the user name's failures (not the address's:
        one client's success does not excuse guesses at other names);
        LockedOut when either was locked out since :meth:`check`."""
        by_user = Subject(USER, user)
        by_address = Subject(ADDRESS, address.encode("utf-8", "replace")) if address else None
        now, read = self.clock.seconds(), self.event()
        locked = await self._store.clear(by_user, by_address, now=now)
        if locked is not None:
            subject, until = locked
            raise LockedOut(subject.scope, until - now)
        self.remember_clean(user, address, read)

    async def _locked_out(self, subject: Subject, user: bytes, address: str, via: str, limit: int) -> None:
        minutes = f"{self.limits.seconds / 60:g}"
        what = "user name" if subject.scope == USER else "address"
        target = shown_name(user) if subject.scope == USER else address
        detail = f"{limit} failed logins within {minutes} minutes: the {what} is locked out for {minutes} minutes"
        self._observer.locked_out(via, "user" if subject.scope == USER else "address")
        self.log.warn("login lock-out of {what} {target} (last try {user} via {via} from {address}): {detail}",
                      what=what, target=target, user=shown_name(user), via=via, address=address or "-",
                      detail=detail)
        if self._audit is not None:
            try:
                await self._audit.append(self.clock.seconds(), shown_name(user), via, address, AUDIT_ACTION, target,
                                         detail)
            except Exception as e:  # the lock-out holds all the same
                self.log.warn("cannot audit the lock-out of {target}: {error}", target=target,
                              error=str(e) or repr(e))


# Not yet looked up (None: looked up, and not a remembering checker).
_UNSEEN: Any = object()


class LockoutPortal(Portal):
    """The one Portal, with the lock-out in front of its checkers. A login
    whose ``mind`` is a :class:`Client` counts per address too; any other
    mind (None) per user name only.

    The logins of one user name that the local view does not let through
    are taken one at a time in this process, read, check and count: so
    concurrent guesses cannot all pass the read before the first of them is
    counted, and the limit holds for them as for guesses one after another."""

    def __init__(self, realm: IRealm, checkers: Any, lockout: LoginLockout) -> None:
        # (Before the Portal's registerChecker calls, which clear it.)
        self._checker_of: dict[type, Any] = {}
        super().__init__(realm, checkers)
        self.lockout = lockout
        self._turns: dict[bytes, defer.DeferredLock] = {}

    def login(self, credentials: Any, mind: object, *interfaces: type[Interface]) -> defer.Deferred[Any]:
        name = getattr(credentials, "username", None)
        if not isinstance(name, (str, bytes)):
            if IBearerToken.providedBy(credentials) and isinstance(mind, Client) and mind.address:
                if self.lockout.seen_clean(ADDRESS_ONLY, mind.address):
                    self.lockout.keep_clean(ADDRESS_ONLY, mind.address)
                    return self._token_checked(credentials, mind, interfaces)
                return defer.Deferred.fromCoroutine(self._by_address(credentials, mind, interfaces))
            return super().login(credentials, mind, *interfaces)  # nothing to count (anonymous)
        user = credential_bytes(name)
        address, via = (mind.address, mind.via) if isinstance(mind, Client) else ("", "other")
        if self.lockout.seen_clean(user, address):
            # A client's next request, most likely: no Redis read, and no
            # coroutine's turn either when the password cache answers.
            self.lockout.keep_clean(user, address)
            remembered = self._remembered(credentials, mind, interfaces)
            if remembered is not None:
                return remembered
            return self._checked(credentials, mind, interfaces, user, address, via, None)
        return defer.Deferred.fromCoroutine(self._login(credentials, mind, interfaces, user, address, via))

    def registerChecker(self, checker: Any, *credentialInterfaces: Any) -> None:
        super().registerChecker(checker, *credentialInterfaces)
        self._checker_of.clear()

    def _remembered(self, credentials: Any, mind: object, interfaces: tuple[type[Interface], ...]
                    ) -> defer.Deferred[Any] | None:
        """The login answered from the checker's memory (see
        IRememberingChecker), the realm's avatar at once; None when the
        checker must check. Nothing to count or settle: the password was
        verified moments ago, and the local view saw no failures."""
        kind = credentials.__class__
        checker = self._checker_of.get(kind, _UNSEEN)
        if checker is _UNSEEN:
            checker = self._checker_of[kind] = self._checker_for(kind)
        if checker is None:
            return None
        avatar_id = checker.rememberedAvatarId(credentials)
        if avatar_id is None:
            return None
        try:
            avatar = self.realm.requestAvatar(avatar_id, mind, *interfaces)
        except Exception:
            return defer.fail()
        return avatar if isinstance(avatar, defer.Deferred) else defer.succeed(avatar)

    def _checker_for(self, kind: type) -> Any:
        """The remembering checker the Portal would give credentials of
        class ``kind``, or None (another checker, or none)."""
        provided = implementedBy(kind)
        for interface, checker in self.checkers.items():
            if provided.isOrExtends(interface):
                return checker if IRememberingChecker.providedBy(checker) else None
        return None

    async def _login(self, credentials: Any, mind: object, interfaces: tuple[type[Interface], ...], user: bytes,
                     address: str, via: str) -> Any:
        turn = self._turns.get(user)
        if turn is None:
            turn = self._turns[user] = defer.DeferredLock()
        await turn.acquire()
        try:
            if self.lockout.seen_clean(user, address):  # the login before this one saw to it
                return await self._checked(credentials, mind, interfaces, user, address, via, None)
            read = self.lockout.event()
            failures = await self.lockout.check(user, address)
            return await self._checked(credentials, mind, interfaces, user, address, via, (failures, read))
        finally:
            turn.release()
            if not turn.locked:
                self._turns.pop(user, None)

    async def _by_address(self, credentials: Any, mind: Client, interfaces: tuple[type[Interface], ...]) -> Any:
        """A login whose credentials name nobody (a bearer token): the
        address's lock-out and failures alone. A good token clears nothing
        (it proves no password)."""
        read = self.lockout.event()
        await self.lockout.check(None, mind.address)
        result = await self._token_checked(credentials, mind, interfaces)
        self.lockout.remember_clean(ADDRESS_ONLY, mind.address, read)
        return result

    def _token_checked(self, credentials: Any, mind: Client, interfaces: tuple[type[Interface], ...]
                       ) -> defer.Deferred[Any]:
        checking = super().login(credentials, mind, *interfaces)
        return checking.addErrback(self._bad, None, mind.address, mind.via)

    def _checked(self, credentials: Any, mind: object, interfaces: tuple[type[Interface], ...], user: bytes,
                 address: str, via: str, read: tuple[Failures, int] | None) -> defer.Deferred[Any]:
        """The check itself, then a failure counted or a success settled.
        ``read``: what :meth:`LoginLockout.check` found, and its event; None
        when the local view let the login through."""
        checking = super().login(credentials, mind, *interfaces)
        # Fired already: answered from the password cache, without I/O: no
        # guess (the password was verified moments ago) and, when there were
        # no failures to clear, nothing to settle.
        settled = checking.called and (read is None or read[0].count == 0)
        clean = read[1] if settled and read is not None else None
        return checking.addCallbacks(self._good, self._bad, callbackArgs=(user, address, settled, clean),
                                     errbackArgs=(user, address, via))

    def _good(self, result: Any, user: bytes, address: str, settled: bool, clean: int | None) -> Any:
        if settled:
            if clean is not None:
                self.lockout.remember_clean(user, address, clean)
            return result
        return defer.Deferred.fromCoroutine(self._settle(result, user, address))

    async def _settle(self, result: Any, user: bytes, address: str) -> Any:
        try:
            await self.lockout.succeeded(user, address)
        except LockedOut:
            try:
                result[2]()  # the avatar's logout: it is not handed out
            except Exception:
                self.lockout.log.failure("logging out a refused avatar failed")
            raise
        return result

    def _bad(self, failure: Failure, user: bytes | None, address: str, via: str) -> Any:
        if not failure.check(UnauthorizedLogin) or failure.check(NotAGuess):
            return failure  # nothing learnt about the password: no failed login
        return defer.Deferred.fromCoroutine(self._count(failure, user, address, via))

    async def _count(self, failure: Failure, user: bytes | None, address: str, via: str) -> Any:
        await self._count_quietly(user, address, via)
        failure.raiseException()

    async def _count_quietly(self, user: bytes | None, address: str, via: str) -> None:
        who = shown_name(user) if user is not None else f"a token from {address}"
        try:
            await self.lockout.failed(user, address, via)
        except RedisUnavailable as e:  # refused all the same; the outage is logged once elsewhere
            self.lockout.log.warn("cannot count a failed login of {user}: {error}", user=who, error=str(e))
        except Exception:  # the login is refused all the same
            self.lockout.log.failure("counting a failed login of {user} failed", user=who)
