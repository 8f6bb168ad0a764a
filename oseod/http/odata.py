"""``/odata/v1``: ODIP production orders, LTA orders and batch orders as
OData JSON, over the same ordering core as ``/oseo``. A thin shell, as
/oseo is: find out who calls, run the operation (:mod:`.odata_orders`),
answer in OData's shape (``{"error": {"code", "message", "target"}}`` for a
refusal, the OWS exceptionCode the core gave as its code); record each
request's metrics as /oseo does.

Keys come in either form a client writes them (``ProductionOrders(<uuid>)``
or ``ProductionOrders('<uuid>')``), as a UUID or as the OSEO orderId; the
singular set names (``ProductionOrder(<id>)``) that the ICDs' action URLs use
are accepted wherever the plural is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from klein import Klein
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..answers import allow_header
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.accounts import Account
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable, RequestRejected
from ..model.logins import Client, LockedOut
from ..odata.errors import CONTENT_TYPE, ODataError
from .credentials import CHALLENGE, BadCredentials, request_account, too_many_requests
from .odata_orders import ODataOrders, Reply, Site
from .outlive import outlive_the_client

JSON = CONTENT_TYPE.encode()
# Where the service is, below a listener's root (and below [server] public_url's base).
ROOT = "/odata/v1"

# The order sets by every name a client may give them: ICD action URLs use
# the singular (ProductionOrder(<id>)/OData.CSC.Cancel), reads the plural.
_ORDER_SETS = "ProductionOrders,ProductionOrder,Orders,Order,BatchOrders,BatchOrder"
_WITH_PRODUCT = "ProductionOrders,ProductionOrder,Orders,Order"
_SETS = {"ProductionOrder": "ProductionOrders", "Order": "Orders", "BatchOrder": "BatchOrders"}


class TokenRoute(Protocol):
    """``POST /odata/v1/token`` (OAuth2): answers the request itself, status and headers included."""

    async def post(self, request: IRequest) -> bytes: ...


class LockedOutError(Exception):
    """The caller's name or address is locked out: 429 with Retry-After."""

    def __init__(self, locked: LockedOut) -> None:
        super().__init__(str(locked))
        self.locked = locked


def _set(name: str) -> str:
    return _SETS.get(name, name)


def _key(text: str) -> str:
    """An OData key literal without its quotes (``'abc'`` → ``abc``)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


class ODataService:
    """The Klein app serving /odata/v1: a door of its own on the HTTP
    listener (oseod.http.frontend.Doors), so it sees the whole path."""

    log = Logger()
    app = Klein()

    def __init__(self, *, portal: Portal, orders: ODataOrders, metrics: RequestMetrics, clock: IReactorTime,
                 clients: ClientAddresses = ClientAddresses(), public_base: str = "",
                 token_endpoint: TokenRoute | None = None) -> None:
        """``public_base``: where clients reach the HTTP side ([server]
        public_url's scheme, host and prefix), "" for the request's own host;
        ``token_endpoint``: the OAuth2 token endpoint, None: no /token (404)."""
        self._portal = portal
        self._orders = orders
        self._metrics = metrics
        self._clock = clock
        self._clients = clients
        self._public_base = public_base.rstrip("/")
        self._token_endpoint = token_endpoint
        self._resource = self.app.resource()  # (one per service: the door asks for it on every request)

    def resource(self) -> IResource:
        return self._resource

    def service_root(self, request: IRequest) -> str:
        """The service's URL as this client reaches it (@odata.context, nextLink, Location)."""
        if self._public_base:
            return self._public_base + ROOT
        scheme = "https" if self._clients.is_secure(request) else "http"
        host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
        return f"{scheme}://{host}{ROOT}"

    # ------------------------------------------------------------ the service

    @app.route(ROOT, methods=["GET", "HEAD"])
    @app.route(ROOT + "/", methods=["GET", "HEAD"])
    async def service_document(self, request: IRequest) -> bytes:
        return await self._public(request, "OData.ServiceDocument",
                                  lambda: self._orders.service_document(Site(self.service_root(request), {})))

    @app.route(ROOT + "/$metadata", methods=["GET", "HEAD"])
    async def metadata(self, request: IRequest) -> bytes:
        return await self._public(request, "OData.Metadata", self._orders.metadata)

    @app.route(ROOT + "/token", methods=["POST"])
    async def token(self, request: IRequest) -> bytes:
        if self._token_endpoint is None:
            return self._routing_error(request, 404, "NotFound", "no token endpoint here: use HTTP Basic")
        return await self._token_endpoint.post(request)

    @app.route(ROOT + "/Workflows", methods=["GET"])
    async def workflows(self, request: IRequest) -> bytes:
        return await self._answer(request, "OData.Workflows.list",
                                  lambda user: self._orders.workflows(user, self._site(request)))

    @app.route(ROOT + "/Workflows(<key>)", methods=["GET"])
    async def workflow(self, request: IRequest, key: str) -> bytes:
        return await self._answer(request, "OData.Workflows.get",
                                  lambda user: self._orders.workflow(user, self._site(request), _key(key)))

    # ------------------------------------------------------------ orders

    @app.route(ROOT + "/<any(ProductionOrder,ProductionOrders):name>/OData.CSC.Order", methods=["POST"])
    @app.route(ROOT + "/ProductionOrders", methods=["POST"])
    def create_production_order(self, request: IRequest, name: str = "") -> Deferred[bytes]:
        body = _body(request)
        return _kept(self._answer(request, "OData.ProductionOrders.create",
                                  lambda user: self._orders.create_production_order(user, self._site(request), body)))

    @app.route(ROOT + "/<any(Products,Product):name>(<key>)/OData.CSC.Order", methods=["POST"])
    def create_product_order(self, request: IRequest, name: str, key: str) -> Deferred[bytes]:
        body = _body(request)
        return _kept(self._answer(request, "OData.Orders.create", lambda user: self._orders.create_product_order(
            user, self._site(request), _key(key), body)))

    @app.route(ROOT + "/<any(BatchOrder,BatchOrders):name>/OData.CSC.Order", methods=["POST"])
    @app.route(ROOT + "/BatchOrders", methods=["POST"])
    def create_batch_order(self, request: IRequest, name: str = "") -> Deferred[bytes]:
        body = _body(request)
        return _kept(self._answer(request, "OData.BatchOrders.create",
                                  lambda user: self._orders.create_batch_order(user, self._site(request), body)))

    @app.route(ROOT + "/<any(ProductionOrders,Orders,BatchOrders):name>", methods=["GET"])
    async def list_orders(self, request: IRequest, name: str) -> bytes:
        return await self._answer(request, f"OData.{name}.list",
                                  lambda user: self._orders.list_orders(user, self._site(request), name))

    @app.route(f"{ROOT}/<any({_ORDER_SETS}):name>(<key>)", methods=["GET"])
    async def get_order(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, f"OData.{_set(name)}.get",
                                  lambda user: self._orders.get(user, self._site(request), _set(name), _key(key)))

    @app.route(f"{ROOT}/<any({_ORDER_SETS}):name>(<key>)/OData.CSC.Cancel", methods=["POST"])
    def cancel_order(self, request: IRequest, name: str, key: str) -> Deferred[bytes]:
        return _kept(self._answer(request, f"OData.{_set(name)}.cancel",
                                  lambda user: self._orders.cancel(user, self._site(request), _set(name), _key(key))))

    @app.route(f"{ROOT}/<any({_WITH_PRODUCT}):name>(<key>)/Product", methods=["GET"])
    async def product(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, f"OData.{_set(name)}.product",
                                  lambda user: self._orders.product(user, self._site(request), _set(name), _key(key)))

    @app.route(f"{ROOT}/<any({_WITH_PRODUCT}):name>(<key>)/Product/$value", methods=["GET"])
    async def product_value(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, f"OData.{_set(name)}.value", lambda user: self._orders.product_value(
            user, self._site(request), _set(name), _key(key)))

    @app.route(ROOT + "/<any(Products,Product):name>(<key>)", methods=["GET"])
    async def product_by_id(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, "OData.Products.get",
                                  lambda user: self._orders.product_by_id(user, self._site(request), _key(key)))

    @app.route(ROOT + "/<any(Products,Product):name>(<key>)/$value", methods=["GET"])
    async def product_by_id_value(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, "OData.Products.value", lambda user: self._orders.product_by_id_value(
            user, self._site(request), _key(key)))

    @app.route(ROOT + "/<any(BatchOrders,BatchOrder):name>(<key>)/Products", methods=["GET"])
    async def batch_products(self, request: IRequest, name: str, key: str) -> bytes:
        return await self._answer(request, "OData.BatchOrders.products",
                                  lambda user: self._orders.batch_products(user, self._site(request), _key(key)))

    # ------------------------------------------------------------ no route

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Failure) -> bytes:
        return self._routing_error(request, 404, "NotFound", "no such resource in this OData service")

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        allow_header(request, failure)
        return self._routing_error(request, 405, "MethodNotAllowed", f"{request.method.decode()} is not allowed here")

    def _routing_error(self, request: IRequest, status: int, code: str, message: str) -> bytes:
        self._metrics.record("http", "OData.unknown", str(status), 0.0, None, self._clients.of(request))
        return self._error(request, ODataError(code, message, None, status))

    # ------------------------------------------------------------ the shell

    def _site(self, request: IRequest) -> Site:
        args = {k.decode("utf-8", "replace"): v[-1].decode("utf-8", "replace")
                for k, v in (request.args or {}).items() if v}
        return Site(self.service_root(request), args)

    async def _answer(self, request: IRequest, operation: str, work: Callable[[Account], Awaitable[Reply]]) -> bytes:
        """Run ``work`` for the caller (401 without credentials) and answer."""
        started = self._clock.seconds()
        account = None
        try:
            account = await self._account(request)
            reply = await work(account)
        except Exception as e:
            return self._failed(request, operation, started, account, e)
        return self._replied(request, operation, started, account, reply)

    async def _public(self, request: IRequest, operation: str, work: Callable[[], Awaitable[Reply]]) -> bytes:
        """Run ``work`` for anybody (the service document, $metadata) and answer."""
        started = self._clock.seconds()
        try:
            reply = await work()
        except Exception as e:
            return self._failed(request, operation, started, None, e)
        return self._replied(request, operation, started, None, reply)

    def _replied(self, request: IRequest, operation: str, started: float, account: Account | None,
                 reply: Reply) -> bytes:
        request.setResponseCode(reply.status)
        request.setHeader(b"odata-version", b"4.0")
        request.setHeader(b"content-type", reply.content_type or JSON)
        if reply.location is not None:
            request.setHeader(b"location", reply.location.encode("utf-8"))
        self._metrics.record("http", operation, "ok", self._clock.seconds() - started,
                             account.name if account else None, self._clients.of(request))
        return reply.body

    def _failed(self, request: IRequest, operation: str, started: float, account: Account | None,
                exc: Exception) -> bytes:
        outcome, body = self._fail(request, operation, exc)
        self._metrics.record("http", operation, outcome, self._clock.seconds() - started,
                             account.name if account else None, self._clients.of(request))
        return body

    async def _account(self, request: IRequest) -> Account:
        try:
            account = await request_account(self._portal, request, Client(self._clients.of(request), "http"))
        except LockedOut as e:
            raise LockedOutError(e) from None
        except (BadCredentials, UnauthorizedLogin) as e:
            raise ODataError("AuthenticationFailed", str(e) or "wrong user name or password", None, 401) from None
        if account is None:
            raise ODataError("AuthenticationFailed", "credentials required: HTTP Basic (your oseod user) or a "
                                                     f"Bearer token from POST {ROOT}/token", None, 401)
        return account

    def _fail(self, request: IRequest, operation: str, exc: Exception) -> tuple[str, bytes]:
        """The answer to a refusal (or, never in tests, a bug): its outcome for the metrics, its body."""
        if isinstance(exc, ODataError):
            error = exc
        elif isinstance(exc, RequestRejected):
            error = ODataError(exc.code, exc.text, exc.locator)
        elif isinstance(exc, LockedOutError):
            error = ODataError("AuthenticationFailed", str(exc), None, 429)
        elif isinstance(exc, RedisUnavailable):
            # Logged once for all requests by the store's RedisWatch.
            self.log.debug("{operation}: {error}", operation=operation, error=str(exc))
            error = ODataError("Unavailable", UNAVAILABLE_TEXT, None, 503)
        else:
            self.log.failure("internal error in {operation}", Failure(exc), operation=operation)
            error = ODataError("NoApplicableCode", "internal error (logged by the server)", None, 500)
        body = self._error(request, error)
        if isinstance(exc, LockedOutError):
            too_many_requests(request, exc.locked)
        elif error.http_status == 503:
            request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
        outcome = "InternalError" if error.http_status == 500 else error.code
        return outcome, body

    def _error(self, request: IRequest, error: ODataError) -> bytes:
        request.setResponseCode(error.http_status)
        request.setHeader(b"odata-version", b"4.0")
        request.setHeader(b"content-type", JSON)
        if error.http_status == 401:
            request.setHeader(b"www-authenticate", CHALLENGE)
        return error.body()


def _kept(answer: Coroutine[Any, Any, bytes]) -> Deferred[bytes]:
    """An order's creation or cancel carries on when its client hangs up
    (as a SOAP Submit does): only the answer is dropped."""
    return outlive_the_client(Deferred.fromCoroutine(answer))


def _body(request: IRequest) -> bytes:
    """The request's body, read before the first await (it is small: the
    site refuses larger ones with 413 before any route sees them)."""
    content: Any = request.content
    if content is None:
        return b""
    content.seek(0)
    data: bytes = content.read()
    return data
