"""The console's routes. Each page handler checks the session, parses its
form, makes one :class:`OperatorActions` call and renders; each change is a
POST with the session's CSRF token, answered by a redirect (303) back to a
page that shows what happened."""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from klein import Klein
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..admin.actions import ActionRefused, Actor, OperatorActions, OrderQuery, Refusal
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.orders import OrderStatus
from ..model.sessions import SessionRecord
from ..store.sessions import SessionStore
from .forms import Form, FormError
from .gate import Gate, Refused, SessionLimits
from .live import EventStream, Recent
from .pages import ORDER_TYPES, STATUSES, Pages, charts, overview_values

BASE = "/console/"
STATIC = {"console.css": b"text/css; charset=utf-8", "console.js": b"text/javascript; charset=utf-8",
          "favicon.svg": b"image/svg+xml"}
CSP = b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
PAGE_SIZE = 50
MAX_ID = 200  # an order id, a user name or a cursor in a URL


def _secure(request: IRequest, *, cache: bytes = b"no-store") -> None:
    request.setHeader(b"content-security-policy", CSP)
    request.setHeader(b"x-frame-options", b"DENY")
    request.setHeader(b"referrer-policy", b"same-origin")
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"cache-control", cache)


def _redirect(request: IRequest, where: str, status: int = 303) -> bytes:
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


class Console:
    app = Klein()
    log = Logger()

    def __init__(self, *, portal: Portal, actions: OperatorActions, store: SessionStore, clock: IReactorTime,
                 limits: SessionLimits = SessionLimits(),
                 live_interval: float = 3.0, public: Callable[[], str] | None = None,
                 clients: ClientAddresses = ClientAddresses(), metrics: RequestMetrics | None = None) -> None:
        """``public``: where clients reach the HTTP side ([server] public_url's
        address), for the Origin check; ``metrics``: where each change (a
        POST: log in, log out, an action) gets its request line."""
        self._actions = actions
        self._metrics = metrics
        self._public = public
        self._clock = clock
        self._interval = live_interval
        self.gate = Gate(portal=portal, store=store, actions=actions, clock=clock, limits=limits, clients=clients)
        self.pages = Pages()
        self._live_overview = Recent(self._overview_event, clock, live_interval / 2)
        files = importlib.resources.files("oseod.console") / "static"
        self._static = {name: (files / name).read_bytes() for name in STATIC}
        self._versions = {name: hashlib.sha256(body).hexdigest()[:12] for name, body in self._static.items()}
        self.pages.env.globals["static"] = lambda name: f"{BASE}static/{name}?v={self._versions[name]}"

    def resource(self) -> IResource:
        return self.app.resource()

    def _same_origin(self, request: IRequest) -> bool:
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

    def _render(self, request: IRequest, template: str, status: int = 200, **context: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return self.pages.render(template, **context)

    def _login_page(self, request: IRequest, status: int = 200, message: str = "", user: str = "",
                    next_page: str = BASE, notice: str = "") -> bytes:
        return self._render(request, "login.html", status, message=message, user=user, next=next_page,
                            notice=notice, session=None, active="", flashes=())

    async def _page(self, request: IRequest, active: str,
                    build: Callable[[SessionRecord], Awaitable[tuple[str, dict[str, Any]]]]) -> bytes:
        """A page for a live session (the login page otherwise): ``build``
        gives the template and its context."""
        _secure(request)
        record = await self.gate.session(request)
        if record is None:
            return self._login_page(request, next_page=safe_back(request.uri.decode("latin-1"), BASE))
        try:
            template, context = await build(record)
            status = context.pop("status", 200)
            return self._render(request, template, status, **await self._frame(record, active), **context)
        except FormError as e:
            return await self._problem(request, record, active, 400, str(e))
        except ActionRefused as e:
            return await self._problem(request, record, active, 404 if e.kind is Refusal.NOT_FOUND else 409,
                                       e.message)
        except RedisUnavailable:
            raise  # the one-line 503 of unavailable() below, without Redis
        except Exception:
            self.log.failure("console page {uri} failed", uri=request.uri)
            return await self._problem(request, record, active, 500,
                                       "internal error; the daemon's log has the details")

    async def _frame(self, record: SessionRecord, active: str) -> dict[str, Any]:
        return {"session": record, "active": active, "flashes": await self.gate.flashes(record)}

    async def _problem(self, request: IRequest, record: SessionRecord | None, active: str, status: int,
                       message: str) -> bytes:
        frame = await self._frame(record, active) if record is not None else {"session": None, "active": active,
                                                                                "flashes": ()}
        return self._render(request, "problem.html", status, message=message, **frame)

    def _request_line(self, request: IRequest, outcome: str, started: float, user: str | None) -> None:
        """A change's request line: ``console orders.approve ok user=root``.
        The operation is the route's first and last segment (a closed set,
        as the metrics' labels must be): ``/console/users/NAME/edit`` is
        ``users.edit``."""
        if self._metrics is None:
            return
        parts = request.path.decode("latin-1")[len(BASE):].split("/")
        operation = parts[0] if len(parts) == 1 else f"{parts[0]}.{parts[-1]}"
        self._metrics.record("console", operation, outcome, self._clock.seconds() - started, user,
                             self.gate.address(request))

    async def _post(self, request: IRequest, fields: Iterable[str], default_back: str,
                    act: Callable[[Form, Actor], Awaitable[str]]) -> bytes:
        """A change: session, CSRF token, form, one action, a flash message
        saying what happened, and a 303 back."""
        started = self._clock.seconds()
        _secure(request)
        if not self._same_origin(request):
            self._request_line(request, "403", started, None)
            return self._login_page(request, 403, "this form came from another site; nothing was changed")
        record = await self.gate.session(request)
        if record is None:
            self._request_line(request, "403", started, None)
            return self._login_page(request, 403, "your session has ended: log in again (nothing was changed)")
        given = (request.args or {}).get(b"csrf", [b""])
        if len(given) != 1 or not self.gate.csrf_ok(record, given[0].decode("latin-1")):
            await self.gate.audit(self.gate.actor(request, record.user), "console.csrf-refused",
                                  request.path.decode("latin-1"))
            self._request_line(request, "403", started, record.user)
            return await self._problem(request, record, "", 403,
                                       "this form is stale or forged (its CSRF token does not match your session); "
                                       "nothing was changed")
        try:
            form = Form(request, {*fields, "csrf", "back"})
            back = safe_back(form.text("back"), default_back)
        except FormError as e:
            self._request_line(request, "400", started, record.user)
            return await self._problem(request, record, "", 400, str(e))
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
        self._request_line(request, outcome, started, record.user)
        return _redirect(request, back)

    # --- logging in and out ----------------------------------------------------------

    @app.route("/login", methods=["GET", "HEAD"])
    async def login_form(self, request: IRequest) -> bytes:
        _secure(request)
        try:
            form = Form(request, {"next", "bye"})
            next_page = safe_back(form.text("next"), BASE)
            notice = "you have logged out" if form.text("bye") else ""
        except FormError:
            next_page, notice = BASE, ""
        if await self.gate.session(request, touch=False) is not None:
            return _redirect(request, next_page)
        return self._login_page(request, next_page=next_page, notice=notice)

    @app.route("/login", methods=["POST"])
    async def login(self, request: IRequest) -> bytes:
        started = self._clock.seconds()
        _secure(request)
        if not self._same_origin(request):
            self._request_line(request, "403", started, None)
            return self._login_page(request, 403, "this login form came from another site")
        try:
            form = Form(request, {"user", "password", "next"})
            user = form.text("user", max_length=256)
            password = form.text("password", strip=False)
            next_page = safe_back(form.text("next"), BASE)
        except FormError as e:
            self._request_line(request, "400", started, None)
            return self._login_page(request, 400, str(e))
        outcome = await self.gate.login(request, user, password)
        if isinstance(outcome, Refused):
            page = self._login_page(request, outcome.status, outcome.message, user=user, next_page=next_page)
            if outcome.retry_after is not None:
                if outcome.status == 429:  # twisted.web has no phrase for it
                    request.setResponseCode(outcome.status, b"Too Many Requests")
                request.setHeader(b"retry-after", str(outcome.retry_after).encode())
            self._request_line(request, str(outcome.status), started, user[:64])
            return page
        self.gate.set_cookie(request, outcome)
        self._request_line(request, "ok", started, user)
        return _redirect(request, next_page)

    @app.route("/logout", methods=["POST"])
    async def logout(self, request: IRequest) -> bytes:
        _secure(request)
        record = await self.gate.session(request, touch=False)
        if record is None:
            self.gate.clear_cookie(request)
            return _redirect(request, f"{BASE}login")
        given = (request.args or {}).get(b"csrf", [b""])
        if len(given) != 1 or not self.gate.csrf_ok(record, given[0].decode("latin-1")):
            return await self._problem(request, record, "", 403, "this form is stale or forged; you are still logged in")
        await self.gate.logout(request, record)
        self.gate.clear_cookie(request)
        self._request_line(request, "ok", self._clock.seconds(), record.user)
        return _redirect(request, f"{BASE}login?bye=1")

    # --- static files and the event stream ----------------------------------------------

    @app.route("/static/<name>", methods=["GET", "HEAD"])
    def static(self, request: IRequest, name: str) -> bytes:
        if name not in self._static:
            raise NotFound()
        _secure(request, cache=b"public, max-age=86400")
        request.setHeader(b"content-type", STATIC[name])
        return self._static[name]

    @app.route("/events", methods=["GET"])
    async def events(self, request: IRequest) -> IResource | bytes:
        _secure(request)
        record = await self.gate.session(request, touch=False)
        if record is None:
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"log in first\n"

        async def produce() -> str | None:
            if not await self.gate.still_open(record):
                return None
            return await self._live_overview.get()

        return EventStream("overview", produce, self._clock, self._interval)

    async def _overview_event(self) -> str:
        return self.pages.live_event(await self._actions.overview(), self._clock.seconds())

    # --- overview ------------------------------------------------------------------

    @app.route("/", methods=["GET", "HEAD"])
    async def overview(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            found = await self._actions.overview()
            return "overview.html", {"overview": found, "values": overview_values(found), "charts": charts(found),
                                     "now": self._clock.seconds()}

        return await self._page(request, "overview", build)

    # --- orders --------------------------------------------------------------------

    @app.route("/orders", methods=["GET", "HEAD"])
    async def orders(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            try:
                form = Form(request, {"status", "user", "collection", "type", "reference", "from", "to", "sort",
                                      "after"})
                statuses = form.values("status")
                unknown = [s for s in statuses if s not in STATUSES]
                if unknown:
                    raise FormError(f"unknown status {unknown[0][:40]!r}")
                query = OrderQuery(
                    statuses=frozenset(OrderStatus(s) for s in statuses),
                    user=form.optional("user", max_length=MAX_ID),
                    collection=form.optional("collection", max_length=MAX_ID),
                    order_type=form.choice("type", ("", *ORDER_TYPES), "") or None,
                    reference=form.optional("reference", max_length=MAX_ID),
                    updated_from=form.date("from"),
                    updated_to=form.date("to", end_of_day=True),
                    oldest_first=form.choice("sort", ("newest", "oldest"), "newest") == "oldest",
                    after=form.optional("after", max_length=MAX_ID),
                    limit=PAGE_SIZE,
                )
            except FormError as e:
                return "orders.html", {"status": 400, "error": str(e), "page": None, "query": _query_args(request),
                                       "next_url": None, "selected": ()}
            page = await self._actions.search_orders(query)
            args = [(k, v) for k, v in _query_args(request) if k != "after"]
            next_url = f"{BASE}orders?{urlencode([*args, ('after', page.next)])}" if page.next else None
            return "orders.html", {"error": "", "page": page, "query": args, "next_url": next_url,
                                   "selected": frozenset(statuses)}

        return await self._page(request, "orders", build)

    @app.route("/orders/<order_id>", methods=["GET", "HEAD"])
    async def order(self, request: IRequest, order_id: str) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            if len(order_id) > MAX_ID:
                raise ActionRefused(Refusal.NOT_FOUND, "no such order")
            detail = await self._actions.order_detail(order_id)
            batches: dict[int, dict[str, int]] = {}
            for item in detail.order.items:
                counts = batches.setdefault(item.batch, {})
                counts[item.status.status.value] = counts.get(item.status.status.value, 0) + 1
            return "order.html", {"detail": detail, "order": detail.order, "batches": sorted(batches.items()),
                                  "back": f"{BASE}orders/{order_id}"}

        return await self._page(request, "orders", build)

    @app.route("/orders/<order_id>/approve", methods=["POST"])
    async def approve(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self._actions.approve(who, order_id)
            return f"order {order_id} approved"

        return await self._post(request, {"order", "reason"}, _page("orders", order_id), act)

    @app.route("/orders/<order_id>/reject", methods=["POST"])
    async def reject(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            reason = form.text("reason", required="a rejection needs a reason")
            await self._actions.reject(who, order_id, reason)
            return f"order {order_id} rejected: {reason}"

        return await self._post(request, {"order", "reason"}, _page("orders", order_id), act)

    @app.route("/orders/<order_id>/cancel", methods=["POST"])
    async def cancel(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self._actions.cancel(who, order_id, form.text("reason"))
            return f"order {order_id} cancelled"

        return await self._post(request, {"reason"}, _page("orders", order_id), act)

    @app.route("/orders/<order_id>/retry", methods=["POST"])
    async def retry(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            items = await self._actions.retry_failed(who, order_id)
            if not items:
                return f"order {order_id} had no failed item to retry"
            return f"order {order_id}: {len(items)} failed item{'s' if len(items) > 1 else ''} queued again"

        return await self._post(request, (), _page("orders", order_id), act)

    # --- moderation --------------------------------------------------------------------

    @app.route("/moderation", methods=["GET", "HEAD"])
    async def moderation(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            form = Form(request, {"after"})
            page = await self._actions.moderation_queue(limit=100, after=form.optional("after", max_length=MAX_ID))
            next_url = f"{BASE}moderation?{urlencode([('after', page.next)])}" if page.next else None
            return "moderation.html", {"page": page, "next_url": next_url, "back": f"{BASE}moderation"}

        return await self._page(request, "moderation", build)

    @app.route("/moderation/approve", methods=["POST"])
    async def approve_many(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            chosen = form.values("order")
            if not chosen:
                raise FormError("no order was ticked")
            outcome = await self._actions.approve_many(who, chosen)
            done = [order_id for order_id, why in outcome.items() if why is None]
            refused = [f"{order_id} ({why})" for order_id, why in outcome.items() if why is not None]
            message = f"approved {len(done)} order{'s' if len(done) != 1 else ''}"
            if done:
                message += ": " + ", ".join(done)
            if refused:
                message += "; refused: " + "; ".join(refused)
            return message

        return await self._post(request, {"order", "reason"}, f"{BASE}moderation", act)

    # --- users -----------------------------------------------------------------------

    @app.route("/users", methods=["GET", "HEAD"])
    async def users(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "users.html", {"users": await self._actions.users()}

        return await self._page(request, "users", build)

    @app.route("/users", methods=["POST"])
    async def add_user(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            name = form.text("name", required="a new user needs a name", max_length=64)
            password = form.text("password", required="a new user needs a password", strip=False)
            if password != form.text("password2", strip=False):
                raise FormError("the two passwords differ; nothing was changed")
            view, warnings = await self._actions.add_user(
                who, name, password, group=form.text("group", max_length=64) or "default", admin=form.flag("admin"),
                email=form.text("email", max_length=254))
            return f"user {view.name} added" + (f" (password: {'; '.join(warnings)})" if warnings else "")

        return await self._post(request, {"name", "password", "password2", "group", "email", "admin"},
                                f"{BASE}users", act)

    @app.route("/users/<name>", methods=["GET", "HEAD"])
    async def user(self, request: IRequest, name: str) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            if len(name) > MAX_ID:
                raise ActionRefused(Refusal.NOT_FOUND, "no such user")
            return "user.html", {"user": await self._actions.user(name), "back": _page("users", name)}

        return await self._page(request, "users", build)

    @app.route("/users/<name>/edit", methods=["POST"])
    async def edit_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            view = await self._actions.set_user(who, name, group=form.text("group", max_length=64) or None,
                                                email=form.text("email", max_length=254), admin=form.flag("admin"))
            return f"user {view.name} changed: group {view.group}, {'operator' if view.admin else 'not an operator'}"

        return await self._post(request, {"group", "email", "admin"}, _page("users", name), act)

    @app.route("/users/<name>/disable", methods=["POST"])
    async def disable_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self._actions.set_user(who, name, disabled=True)
            return f"user {name} disabled: they can no longer log in"

        return await self._post(request, (), _page("users", name), act)

    @app.route("/users/<name>/enable", methods=["POST"])
    async def enable_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self._actions.set_user(who, name, disabled=False)
            return f"user {name} enabled"

        return await self._post(request, (), _page("users", name), act)

    @app.route("/users/<name>/password", methods=["POST"])
    async def reset_password(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            password = form.text("password", required="type the new password twice", strip=False)
            if password != form.text("password2", strip=False):
                raise FormError("the two passwords differ; the password was not changed")
            warnings = await self._actions.set_password(who, name, password)
            return f"password of {name} changed" + (f" ({'; '.join(warnings)})" if warnings else "")

        return await self._post(request, {"password", "password2"}, _page("users", name), act)

    @app.route("/users/<name>/delete", methods=["POST"])
    async def delete_user(self, request: IRequest, name: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            if not form.flag("confirm"):
                raise FormError(f"tick the box to confirm that {name} is to be deleted")
            await self._actions.delete_user(who, name)
            return f"user {name} deleted"

        return await self._post(request, {"confirm"}, f"{BASE}users", act)

    # --- configuration, subscriptions, audit -----------------------------------------------

    @app.route("/config", methods=["GET", "HEAD"])
    async def config(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "config.html", {"config": self._actions.configuration()}

        return await self._page(request, "config", build)

    @app.route("/subscriptions", methods=["GET", "HEAD"])
    async def subscriptions(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "subscriptions.html", {"subscriptions": await self._actions.subscriptions(),
                                          "collections": _collections(self._actions)}

        return await self._page(request, "subscriptions", build)

    @app.route("/subscriptions/timeslot", methods=["POST"])
    async def timeslot(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            collection = form.text("collection", required="name the collection", max_length=MAX_ID)
            stamp = form.text("timestamp", required="give the timeslot's time (ISO 8601)", max_length=64)
            orders = await self._actions.timeslot(who, collection, stamp, force=form.flag("force"))
            if not orders:
                return f"timeslot {stamp} of {collection}: no subscription took it"
            return f"timeslot {stamp} of {collection} served to order{'s' if len(orders) > 1 else ''} " + \
                ", ".join(orders)

        return await self._post(request, {"collection", "timestamp", "force"}, f"{BASE}subscriptions", act)

    @app.route("/audit", methods=["GET", "HEAD"])
    async def audit(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            form = Form(request, {"before"})
            entries = await self._actions.audit(limit=100, before=form.optional("before", max_length=MAX_ID))
            older = f"{BASE}audit?{urlencode([('before', entries[-1].id)])}" if len(entries) == 100 else None
            return "audit.html", {"entries": entries, "older": older}

        return await self._page(request, "audit", build)

    # --- what reaches no handler --------------------------------------------------------

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        _secure(request)
        return self._render(request, "problem.html", 404, message="there is no such page in the console",
                            session=None, active="", flashes=())

    @app.handle_errors(RedisUnavailable)
    def unavailable(self, request: IRequest, failure: Any) -> bytes:
        """Redis away: one line, without the session or menu (both read from Redis)."""
        _secure(request)
        request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
        return self._render(request, "problem.html", 503, message=UNAVAILABLE_TEXT, session=None, active="",
                            flashes=())

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self, request: IRequest, failure: Any) -> bytes:
        _secure(request)
        allowed = getattr(failure.value, "valid_methods", None) or []
        request.setHeader(b"allow", ", ".join(allowed).encode())
        return self._render(request, "problem.html", 405, message="this page does not take that method",
                            session=None, active="", flashes=())


def _page(kind: str, name: str) -> str:
    """The console page of an order (``kind`` "orders") or a user ("users")."""
    return f"{BASE}{kind}/{quote(name, safe='')}"


def _query_args(request: IRequest) -> list[tuple[str, str]]:
    """The request's query as decoded pairs (for the next page's link); what
    does not decode is left out (the form has refused it already)."""
    pairs = []
    for name, values in (request.args or {}).items():
        for value in values:
            try:
                pairs.append((name.decode("utf-8"), value.decode("utf-8")))
            except UnicodeDecodeError:
                continue
    return pairs


def _collections(actions: OperatorActions) -> tuple[str, ...]:
    """The configured collections' ids, for the timeslot form's choices (a
    convenience: without them the form still takes any id)."""
    try:
        config = actions.configuration()
    except Exception:
        Console.log.failure("no collections for the timeslot form")
        return ()
    found = config.get("collection") or config.get("collections") or ()
    return tuple(str(c.get("id")) for c in found if isinstance(c, dict) and c.get("id"))
