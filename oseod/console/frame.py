"""What every part of the console shares: the security headers, the page
frame (session, menu, flash messages), the problem pages, and the one way a
change is made (session, same origin, CSRF token, form, one action, a flash
message and a 303 back). Each part (orders, users, system, audit) is a small
Klein app of its own over one :class:`Frame`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..admin.actions import ActionRefused, Actor, OperatorActions, Refusal
from ..metrics import RequestMetrics
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.sessions import SessionRecord
from .forms import Form, FormError
from .gate import Gate
from .pages import Pages

BASE = "/console/"
CSP = b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
MAX_ID = 200  # an order id, a user name or a cursor in a URL

# Builds a page for a live session: its template and the template's context.
Build = Callable[[SessionRecord], Awaitable[tuple[str, dict[str, Any]]]]
# Makes a change from its form, for whom: the flash message saying what was done.
Act = Callable[[Form, Actor], Awaitable[str]]


def secure(request: IRequest, *, cache: bytes = b"no-store") -> None:
    request.setHeader(b"content-security-policy", CSP)
    request.setHeader(b"x-frame-options", b"DENY")
    request.setHeader(b"referrer-policy", b"same-origin")
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"cache-control", cache)


def redirect(request: IRequest, where: str, status: int = 303) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"location", where.encode())
    return b""


def safe_back(where: str, default: str) -> str:
    """A place inside the console to go back to: a path under /console/,
    never another site (``//host``, a scheme) nor a header injection."""
    parts = urlsplit(where)
    if (not where.startswith(BASE) or parts.scheme or parts.netloc or "//" in where or "\\" in where
            or any(ord(c) < 0x20 for c in where) or len(where) > 2000):
        return default
    return where


def page_url(kind: str, name: str) -> str:
    """The console page of an order (``kind`` "orders") or a user ("users")."""
    return f"{BASE}{kind}/{quote(name, safe='')}"


class Frame:
    log = Logger()

    def __init__(self, *, gate: Gate, pages: Pages, clock: IReactorTime, public: Callable[[], str] | None = None,
                 metrics: RequestMetrics | None = None) -> None:
        """``public``: where clients reach the HTTP side ([server] public_url's
        address), for the Origin check; ``metrics``: where each change (a
        POST: log in, log out, an action) gets its request line."""
        self.gate = gate
        self.pages = pages
        self.clock = clock
        self._public = public
        self._metrics = metrics

    def same_origin(self, request: IRequest) -> bool:
        """Whether a browser's POST came from a page of ours: its Origin (when
        the browser sends one) names the host the request was sent to, or the
        public address (a reverse proxy may pass on its own Host instead)."""
        origin = request.getHeader(b"origin")
        if origin is None or origin == b"null":
            return True
        netloc = urlsplit(origin.decode("latin-1")).netloc
        return netloc.encode() == request.getHeader(b"host") or (
            self._public is not None and netloc == urlsplit(self._public()).netloc)

    # --- the frame every page shares -------------------------------------------------

    def render(self, request: IRequest, template: str, status: int = 200, **context: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return self.pages.render(template, **context)

    def login_page(self, request: IRequest, status: int = 200, message: str = "", user: str = "",
                   next_page: str = BASE, notice: str = "") -> bytes:
        return self.render(request, "login.html", status, message=message, user=user, next=next_page,
                           notice=notice, session=None, active="", flashes=())

    async def page(self, request: IRequest, active: str, build: Build) -> bytes:
        """A page for a live session (the login page otherwise): ``build``
        gives the template and its context."""
        secure(request)
        record = await self.gate.session(request)
        if record is None:
            return self.login_page(request, next_page=safe_back(request.uri.decode("latin-1"), BASE))
        try:
            template, context = await build(record)
            status = context.pop("status", 200)
            return self.render(request, template, status, **await self._frame(record, active), **context)
        except FormError as e:
            return await self.problem(request, record, active, 400, str(e))
        except ActionRefused as e:
            return await self.problem(request, record, active, 404 if e.kind is Refusal.NOT_FOUND else 409,
                                      e.message)
        except RedisUnavailable:
            raise  # the one-line 503 of unavailable() below, without Redis
        except Exception:
            self.log.failure("console page {uri} failed", uri=request.uri)
            return await self.problem(request, record, active, 500,
                                      "internal error; the daemon's log has the details")

    async def _frame(self, record: SessionRecord, active: str) -> dict[str, Any]:
        return {"session": record, "active": active, "flashes": await self.gate.flashes(record)}

    async def problem(self, request: IRequest, record: SessionRecord | None, active: str, status: int,
                      message: str) -> bytes:
        frame = await self._frame(record, active) if record is not None else {"session": None, "active": active,
                                                                                "flashes": ()}
        return self.render(request, "problem.html", status, message=message, **frame)

    def request_line(self, request: IRequest, outcome: str, started: float, user: str | None) -> None:
        """A change's request line: ``console orders.approve ok user=root``.
        The operation is the route's first and last segment (a closed set,
        as the metrics' labels must be): ``/console/users/NAME/edit`` is
        ``users.edit``."""
        if self._metrics is None:
            return
        parts = request.path.decode("latin-1")[len(BASE):].split("/")
        operation = parts[0] if len(parts) == 1 else f"{parts[0]}.{parts[-1]}"
        self._metrics.record("console", operation, outcome, self.clock.seconds() - started, user,
                             self.gate.address(request))

    async def post(self, request: IRequest, fields: Iterable[str], default_back: str, act: Act) -> bytes:
        """A change: session, CSRF token, form, one action, a flash message
        saying what happened, and a 303 back."""
        started = self.clock.seconds()
        secure(request)
        if not self.same_origin(request):
            self.request_line(request, "403", started, None)
            return self.login_page(request, 403, "this form came from another site; nothing was changed")
        record = await self.gate.session(request)
        if record is None:
            self.request_line(request, "403", started, None)
            return self.login_page(request, 403, "your session has ended: log in again (nothing was changed)")
        given = (request.args or {}).get(b"csrf", [b""])
        if len(given) != 1 or not self.gate.csrf_ok(record, given[0].decode("latin-1")):
            await self.gate.audit(self.gate.actor(request, record.user), "console.csrf-refused",
                                  request.path.decode("latin-1"))
            self.request_line(request, "403", started, record.user)
            return await self.problem(request, record, "", 403,
                                      "this form is stale or forged (its CSRF token does not match your session); "
                                      "nothing was changed")
        try:
            form = Form(request, {*fields, "csrf", "back"})
            back = safe_back(form.text("back"), default_back)
        except FormError as e:
            self.request_line(request, "400", started, record.user)
            return await self.problem(request, record, "", 400, str(e))
        outcome = "ok"
        try:
            message = await act(form, self.gate.actor(request, record.user))
            await self.gate.flash(record, "ok", message)
        except FormError as e:
            outcome = "400"
            await self.gate.flash(record, "error", str(e))
        except ActionRefused as e:
            outcome = "404" if e.kind is Refusal.NOT_FOUND else "409"
            await self.gate.flash(record, "error", e.message)
        except RedisUnavailable:
            raise
        except Exception:
            outcome = "500"
            self.log.failure("console action {uri} failed", uri=request.uri)
            await self.gate.flash(record, "error", "internal error; the daemon's log has the details")
        self.request_line(request, outcome, started, record.user)
        return redirect(request, back)

    # --- what reaches no handler --------------------------------------------------------

    def not_found(self, request: IRequest) -> bytes:
        secure(request)
        return self.render(request, "problem.html", 404, message="there is no such page in the console",
                           session=None, active="", flashes=())

    def unavailable(self, request: IRequest) -> bytes:
        """Redis away: one line, without the session or menu (both read from Redis)."""
        secure(request)
        request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
        return self.render(request, "problem.html", 503, message=UNAVAILABLE_TEXT, session=None, active="",
                           flashes=())

    def not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        secure(request)
        allowed = getattr(failure.value, "valid_methods", None) or []
        request.setHeader(b"allow", ", ".join(allowed).encode())
        return self.render(request, "problem.html", 405, message="this page does not take that method",
                           session=None, active="", flashes=())


def error_pages(app: Klein) -> None:
    """The console's own pages for what reaches no route, the wrong method
    and Redis away, on one part's app (each part answers them alike)."""

    # Klein calls these with the part whose app it is (``self``: each part's
    # app is a class attribute of that part).
    @app.handle_errors(NotFound)
    def not_found(self: Any, request: IRequest, failure: Failure) -> bytes:
        part: Part = self
        return part.frame.not_found(request)

    @app.handle_errors(RedisUnavailable)
    def unavailable(self: Any, request: IRequest, failure: Failure) -> bytes:
        part: Part = self
        return part.frame.unavailable(request)

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self: Any, request: IRequest, failure: Failure) -> bytes:
        part: Part = self
        return part.frame.not_allowed(request, failure)


class Part:
    """A part of the console: a Klein app of its own whose routes all start
    with one of ``segments`` (the first path segment below /console/, by
    which the console hands a request to it), over the shared frame and the
    operator's actions."""

    app: ClassVar[Klein]
    segments: ClassVar[tuple[str, ...]]

    def __init__(self, frame: Frame, actions: OperatorActions) -> None:
        self.frame = frame
        self.actions = actions

    def resource(self) -> IResource:
        return self.app.resource()
