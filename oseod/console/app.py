"""The console: its own routes (logging in and out, static files) and its
parts, each a Klein app of its own mirroring :mod:`oseod.admin.actions`
(orders, users, system, audit), over one shared :class:`Frame`. Each page
handler checks the session, parses its form, makes one
:class:`OperatorActions` call and renders; each change is a POST with the
session's CSRF token, answered by a redirect (303) back to a page that
shows what happened."""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Callable, Mapping
from typing import Any

from klein import Klein
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import NotFound

from ..admin.actions import OperatorActions
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..store.sessions import SessionStore
from .audit import AuditPages
from .forms import Form, FormError
from .frame import BASE, Frame, Part, error_pages, redirect, safe_back, secure
from .gate import Gate, Refused, SessionLimits
from .orders import OrderPages
from .pages import Pages
from .system import SystemPages
from .users import UserPages

__all__ = ["BASE", "Console", "safe_back"]

STATIC = {"console.css": b"text/css; charset=utf-8", "console.js": b"text/javascript; charset=utf-8",
          "favicon.svg": b"image/svg+xml"}


class Parts(Resource):
    """The console's parts by the first path segment below /console/. A part
    holds every route under its segments, so a URL is matched (or refused
    with a 404 or 405) exactly as one app holding all routes would; the rest
    (logging in and out, static files, unknown pages) go to ``rest``."""

    isLeaf = True

    def __init__(self, parts: Mapping[bytes, IResource], rest: IResource) -> None:
        super().__init__()
        self._parts = parts
        self._rest = rest

    def render(self, request: IRequest) -> Any:
        # The first segment that is not empty: the apps' URL map merges
        # slashes, so /console//orders is /console/orders.
        first = next((segment for segment in request.postpath or () if segment), b"")
        return self._parts.get(first, self._rest).render(request)


class Console(Part):
    app = Klein()
    segments = ("login", "logout", "static")
    error_pages(app)

    def __init__(self, *, portal: Portal, actions: OperatorActions, store: SessionStore, clock: IReactorTime,
                 limits: SessionLimits = SessionLimits(),
                 live_interval: float = 3.0, public: Callable[[], str] | None = None,
                 clients: ClientAddresses = ClientAddresses(), metrics: RequestMetrics | None = None) -> None:
        """``public``: where clients reach the HTTP side ([server] public_url's
        address), for the Origin check; ``metrics``: where each change (a
        POST: log in, log out, an action) gets its request line."""
        self.gate = Gate(portal=portal, store=store, actions=actions, clock=clock, limits=limits, clients=clients)
        self.pages = Pages()
        super().__init__(Frame(gate=self.gate, pages=self.pages, clock=clock, public=public, metrics=metrics),
                         actions)
        self.sections: tuple[Part, ...] = (SystemPages(self.frame, actions, live_interval=live_interval),
                                           OrderPages(self.frame, actions), UserPages(self.frame, actions),
                                           AuditPages(self.frame, actions))
        self._resource = Parts({segment.encode(): part.resource() for part in self.sections
                                for segment in part.segments}, self.app.resource())
        files = importlib.resources.files("oseod.console") / "static"
        self._static = {name: (files / name).read_bytes() for name in STATIC}
        self._versions = {name: hashlib.sha256(body).hexdigest()[:12] for name, body in self._static.items()}
        self.pages.env.globals["static"] = lambda name: f"{BASE}static/{name}?v={self._versions[name]}"

    def resource(self) -> IResource:
        return self._resource

    # --- logging in and out ----------------------------------------------------------

    @app.route("/login", methods=["GET", "HEAD"])
    async def login_form(self, request: IRequest) -> bytes:
        secure(request)
        try:
            form = Form(request, {"next", "bye"})
            next_page = safe_back(form.text("next"), BASE)
            notice = "you have logged out" if form.text("bye") else ""
        except FormError:
            next_page, notice = BASE, ""
        if await self.gate.session(request, touch=False) is not None:
            return redirect(request, next_page)
        return self.frame.login_page(request, next_page=next_page, notice=notice)

    @app.route("/login", methods=["POST"])
    async def login(self, request: IRequest) -> bytes:
        frame = self.frame
        started = frame.clock.seconds()
        secure(request)
        if not frame.same_origin(request):
            frame.request_line(request, "403", started, None)
            return frame.login_page(request, 403, "this login form came from another site")
        try:
            form = Form(request, {"user", "password", "next"})
            user = form.text("user", max_length=256)
            password = form.text("password", strip=False)
            next_page = safe_back(form.text("next"), BASE)
        except FormError as e:
            frame.request_line(request, "400", started, None)
            return frame.login_page(request, 400, str(e))
        outcome = await self.gate.login(request, user, password)
        if isinstance(outcome, Refused):
            page = frame.login_page(request, outcome.status, outcome.message, user=user, next_page=next_page)
            if outcome.retry_after is not None:
                if outcome.status == 429:  # twisted.web has no phrase for it
                    request.setResponseCode(outcome.status, b"Too Many Requests")
                request.setHeader(b"retry-after", str(outcome.retry_after).encode())
            frame.request_line(request, str(outcome.status), started, user[:64])
            return page
        self.gate.set_cookie(request, outcome)
        frame.request_line(request, "ok", started, user)
        return redirect(request, next_page)

    @app.route("/logout", methods=["POST"])
    async def logout(self, request: IRequest) -> bytes:
        secure(request)
        record = await self.gate.session(request, touch=False)
        if record is None:
            self.gate.clear_cookie(request)
            return redirect(request, f"{BASE}login")
        given = (request.args or {}).get(b"csrf", [b""])
        if len(given) != 1 or not self.gate.csrf_ok(record, given[0].decode("latin-1")):
            return await self.frame.problem(request, record, "", 403,
                                            "this form is stale or forged; you are still logged in")
        await self.gate.logout(request, record)
        self.gate.clear_cookie(request)
        self.frame.request_line(request, "ok", self.frame.clock.seconds(), record.user)
        return redirect(request, f"{BASE}login?bye=1")

    # --- static files ----------------------------------------------------------------

    @app.route("/static/<name>", methods=["GET", "HEAD"])
    def static(self, request: IRequest, name: str) -> bytes:
        if name not in self._static:
            raise NotFound()
        secure(request, cache=b"public, max-age=86400")
        request.setHeader(b"content-type", STATIC[name])
        return self._static[name]
