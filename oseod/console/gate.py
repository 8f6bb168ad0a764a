"""Who is at the console: logins through the one Portal, server-side
sessions with an idle timeout, the session cookie and the CSRF token."""

from __future__ import annotations

import hmac

import attrs
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ..admin.actions import Actor, OperatorActions
from ..forwarded import ClientAddresses
from ..model.accounts import Account, IAccount
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.logins import Client, LockedOut
from ..model.sessions import SessionRecord
from ..store.sessions import SessionStore

COOKIE = b"oseod_console"
COOKIE_PATH = b"/console/"
MAX_NAME = 256  # a longer user name is no user's: refused without asking the Portal
MAX_PASSWORD = 1024


@attrs.frozen
class SessionLimits:
    idle_seconds: float = 30 * 60  # no request for this long ends a session
    max_seconds: float = 12 * 3600  # and no session lasts longer than this


@attrs.frozen
class Refused:
    """A login refused: the HTTP status and the sentence the page shows."""

    status: int
    message: str
    retry_after: int | None = None  # seconds, for a 429 or 503


def _cookie(request: IRequest, value: bytes, extra: bytes, tls: bool) -> None:
    secure = b"; Secure" if tls else b""
    request.responseHeaders.addRawHeader(
        b"set-cookie", COOKIE + b"=" + value + b"; Path=" + COOKIE_PATH + b"; HttpOnly; SameSite=Strict" + secure + extra)


class Gate:
    log = Logger()

    def __init__(self, *, portal: Portal, store: SessionStore, actions: OperatorActions, clock: IReactorTime,
                 limits: SessionLimits = SessionLimits(), clients: ClientAddresses = ClientAddresses()) -> None:
        # ``portal``: the daemon's LockoutPortal, whose lock-out counts
        # failed console logins with every other transport's.
        self._portal = portal
        self._clients = clients
        self._store = store
        self._actions = actions
        self._clock = clock
        self.limits = limits

    def address(self, request: IRequest) -> str:
        """The visitor's address: what the lock-out counts and the audit records."""
        return self._clients.of(request)

    def actor(self, request: IRequest, user: str) -> Actor:
        return Actor(name=user, via="console", address=self.address(request))

    async def audit(self, who: Actor, action: str, target: str = "", detail: str = "") -> None:
        """Record a console event; a failure to record is logged, not shown
        to the visitor (the event itself has happened)."""
        try:
            await self._actions.record(who, action, target, detail)
        except RedisUnavailable as e:
            self.log.warn("could not record console event {action}: {error}", action=action, error=str(e))
        except Exception:
            self.log.failure("could not record console event {action}", action=action)

    # --- sessions ---------------------------------------------------------------

    @staticmethod
    def token_of(request: IRequest) -> str | None:
        raw = request.getCookie(COOKIE)
        if not raw or len(raw) > 128:
            return None
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return None

    async def session(self, request: IRequest, *, touch: bool = True) -> SessionRecord | None:
        """The request's live session, None when it has none or it ran out
        (then it is ended). ``touch``: count this request as activity."""
        token = self.token_of(request)
        if token is None:
            return None
        record = await self._store.get(token)
        if record is None:
            return None
        now = self._clock.seconds()
        if now - record.seen_at > self.limits.idle_seconds or now - record.created_at > self.limits.max_seconds:
            await self._store.delete(record)
            await self.audit(self.actor(request, record.user), "console.timeout", record.user)
            return None
        if not await self._actions.is_operator(record.user):
            # Demoted, disabled or deleted since logging in: out at once.
            await self._store.delete(record)
            await self.audit(self.actor(request, record.user), "console.revoked", record.user, "no longer an operator")
            return None
        if touch and not await self._store.touch(record, now=now, idle_seconds=self.limits.idle_seconds):
            return None
        return record

    async def still_open(self, record: SessionRecord) -> bool:
        """For a long-lived response (the event stream): has the session
        neither ended nor idled out, and is its user still an operator?
        Does not count as activity."""
        found = await self._store.get_by_digest(record.token_digest)
        if found is None:
            return False
        now = self._clock.seconds()
        return (now - found.seen_at <= self.limits.idle_seconds
                and now - found.created_at <= self.limits.max_seconds
                and await self._actions.is_operator(found.user))

    @staticmethod
    def csrf_ok(record: SessionRecord, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), record.csrf.encode())

    def set_cookie(self, request: IRequest, token: str) -> None:
        """A session cookie (no Max-Age: it goes with the browser; the server
        ends the session sooner when idle); ``Secure`` over TLS, ours or a
        trusted proxy's."""
        _cookie(request, token.encode("ascii"), b"", self._clients.is_secure(request))

    def clear_cookie(self, request: IRequest) -> None:
        _cookie(request, b"", b"; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT", self._clients.is_secure(request))

    async def flash(self, record: SessionRecord, kind: str, text: str) -> None:
        await self._store.flash(record, kind, text)

    async def flashes(self, record: SessionRecord) -> tuple[tuple[str, str], ...]:
        return tuple(await self._store.take_flashes(record))

    # --- logging in and out ----------------------------------------------------------

    async def login(self, request: IRequest, user: str, password: str) -> str | Refused:
        """A new session's token for ``user``, or why not. Failed logins
        count towards the lock-out of every transport (the portal's), which
        also audits the lock-out itself."""
        address = self.address(request)
        who = Actor(name=user[:MAX_NAME], via="console", address=address)
        try:
            if not user or not password or len(user) > MAX_NAME or len(password) > MAX_PASSWORD:
                raise UnauthorizedLogin()
            _, account, _ = await self._portal.login(UsernamePassword(user.encode(), password.encode()),
                                                     Client(address, "console"), IAccount)
        except LockedOut as e:
            await self.audit(who, "console.login-locked", who.name, "refused while locked out")
            return Refused(429, str(e), retry_after=e.seconds)
        except UnauthorizedLogin:
            await self.audit(who, "console.login-failed", who.name)
            return Refused(401, "wrong user name or password")
        except RedisUnavailable:
            return Refused(503, UNAVAILABLE_TEXT, retry_after=RETRY_AFTER)
        except Exception:
            self.log.failure("console login of {user} could not be checked", user=who.name)
            return Refused(503, "the password could not be checked now; the daemon's log says why")
        assert isinstance(account, Account)
        if not account.admin:
            await self.audit(who, "console.login-refused", who.name, "not an operator")
            return Refused(403, "this account is not an operator")
        token, _ = await self._store.create(account.name, now=self._clock.seconds(),
                                            idle_seconds=self.limits.idle_seconds, address=address)
        await self.audit(self.actor(request, account.name), "console.login", account.name)
        return token

    async def logout(self, request: IRequest, record: SessionRecord) -> None:
        await self._store.delete(record)
        await self.audit(self.actor(request, record.user), "console.logout", record.user)
