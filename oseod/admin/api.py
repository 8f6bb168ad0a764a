"""The admin JSON API under ``/admin/api/``: what ``oseoctl`` (and later the
console) drive. Authenticated by the bearer token in ``DATA_DIR/admin.token``."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any, Protocol

from klein import Klein
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..core.accounts import AccountService, password_warnings
from ..core.ordering import MAX_SEARCH_RESULTS, OrderingService
from ..http.errors import allow_header, error_answer
from ..metrics import RequestMetrics
from ..model.errors import RequestRejected
from ..model.orders import Order, OrderStatus, StatusInfo
from ..store.users import NoSuchUser, UserExists, UserRecord

MAX_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status_json(info: StatusInfo) -> dict[str, Any]:
    return {"status": info.status.value, "info": info.additional_info, "changed_at": info.changed_at}


def _order_json(order: Order, items: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": order.order_id, "owner": order.owner, "type": order.spec.order_type.value,
        "reference": order.spec.reference, "created_at": order.created_at, **_status_json(order.status),
        "items_total": len(order.items),
    }
    if items:
        answer["items"] = [{"id": i.spec.item_id, "product": i.spec.product_id,
                            "collection": i.spec.collection_id, **_status_json(i.status)} for i in order.items]
    return answer


def _rejected(e: RequestRejected) -> ApiError:
    """The core's refusal, as the admin API says it."""
    return ApiError(404 if e.code == "InvalidOrderIdentifier" else 409, e.text)


def _user_json(record: UserRecord) -> dict[str, Any]:
    return {"name": record.name, "group": record.group, "admin": record.admin, "email": record.email,
            "created_at": record.created_at}


class ProcessingReport(Protocol):
    async def report(self) -> dict[str, Any]: ...


class AdminApi:
    app = Klein()
    log = Logger()

    def __init__(self, *, token: Callable[[], str], accounts: AccountService, ordering: OrderingService,
                 processing: ProcessingReport, metrics: RequestMetrics, clock: Any) -> None:
        self._processing = processing
        self._token = token
        self._accounts = accounts
        self._ordering = ordering
        self._metrics = metrics
        self._clock = clock

    def resource(self) -> IResource:
        return self.app.resource()

    async def _answer(self, request: IRequest, operation: str, action: Callable[[dict[str, Any]], Any],
                      status: int = 200) -> bytes:
        """Authorise, decode the JSON body, run ``action``, encode its result;
        every failure becomes a JSON error with a one-line reason."""
        started = self._clock.seconds()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        try:
            self._authorise(request)
            result = await action(self._body(request))
            request.setResponseCode(status)
            outcome = "ok"
            payload: Any = result
        except ApiError as e:
            request.setResponseCode(e.status)
            if e.status == 401:
                request.setHeader(b"www-authenticate", b'Bearer realm="oseod-admin"')
            outcome, payload = str(e.status), {"error": str(e)}
        except Exception:
            self.log.failure("internal error in admin {operation}", operation=operation)
            request.setResponseCode(500)
            outcome, payload = "500", {"error": "internal error; the daemon's log has the details"}
        self._metrics.record("admin", operation, outcome, self._clock.seconds() - started, None)
        return json.dumps(payload).encode() + b"\n"

    def _authorise(self, request: IRequest) -> None:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "admin token required (Authorization: Bearer ...)")
        if not hmac.compare_digest(given.strip().encode(), self._token().encode()):
            raise ApiError(401, "wrong admin token")

    @staticmethod
    def _body(request: IRequest) -> dict[str, Any]:
        raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if not raw:
            return {}
        if len(raw) > MAX_BODY:
            raise ApiError(413, "request body too large")
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise ApiError(400, f"request body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    @app.route("/users", methods=["GET"])
    async def list_users(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            return {"users": [_user_json(r) for r in await self._accounts.list()]}

        return await self._answer(request, "user.list", action)

    @app.route("/users", methods=["POST"])
    async def add_user(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            name = _field(body, "name", str)
            try:
                record = await self._accounts.add(
                    name,
                    _field(body, "password", str),
                    group=_field(body, "group", str, "default"),
                    admin=_field(body, "admin", bool, False),
                    email=_field(body, "email", str, ""),
                )
            except UserExists:
                raise ApiError(409, f"user {name} already exists") from None
            except ValueError as e:
                raise ApiError(400, str(e)) from None
            return {**_user_json(record), "warnings": password_warnings(body["password"])}

        return await self._answer(request, "user.add", action, status=201)

    @app.route("/users/<name>", methods=["GET"])
    async def show_user(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            record = await self._accounts.get(name)
            if record is None:
                raise ApiError(404, f"no user {name}")
            return _user_json(record)

        return await self._answer(request, "user.show", action)

    @app.route("/users/<name>", methods=["PATCH"])
    async def change_user(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            unknown = set(body) - {"group", "admin", "email"}
            if unknown:
                raise ApiError(400, f"unknown field {sorted(unknown)[0]!r}")
            try:
                record = await self._accounts.change(
                    name,
                    group=_field(body, "group", str, None),
                    admin=_field(body, "admin", bool, None),
                    email=_field(body, "email", str, None),
                )
            except NoSuchUser:
                raise ApiError(404, f"no user {name}") from None
            except ValueError as e:
                raise ApiError(400, str(e)) from None
            return _user_json(record)

        return await self._answer(request, "user.change", action)

    @app.route("/users/<name>/password", methods=["PUT"])
    async def set_password(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            password = _field(body, "password", str)
            try:
                await self._accounts.set_password(name, password)
            except NoSuchUser:
                raise ApiError(404, f"no user {name}") from None
            except ValueError as e:
                raise ApiError(400, str(e)) from None
            return {"name": name, "password": "changed", "warnings": password_warnings(password)}

        return await self._answer(request, "user.passwd", action)

    @app.route("/users/<name>", methods=["DELETE"])
    async def delete_user(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            try:
                await self._accounts.remove(name)
            except NoSuchUser:
                raise ApiError(404, f"no user {name}") from None
            return {"name": name, "deleted": True}

        return await self._answer(request, "user.del", action)

    @app.route("/stats", methods=["GET"])
    async def stats(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            return {"jobs": await self._processing.report()}

        return await self._answer(request, "stats", action)

    @app.route("/subscriptions/timeslot", methods=["POST"])
    async def timeslot(self, request: IRequest) -> bytes:
        """``{"collection": ID, "timestamp": ISO 8601, "force": false}``."""
        async def action(body: dict[str, Any]) -> Any:
            try:
                served = await self._ordering.timeslot(_field(body, "collection", str), _field(body, "timestamp", str),
                                                       _field(body, "force", bool, False))
            except RequestRejected as e:
                raise ApiError(404 if e.code == "UnsupportedCollection" else 400, e.text) from None
            return {"orders": served}

        return await self._answer(request, "subscription.timeslot", action)

    @app.route("/orders", methods=["GET"])
    async def list_orders(self, request: IRequest) -> bytes:
        """``?status=S`` (repeatable), ``?user=U``, ``?limit=N`` (at most 1000)."""
        async def action(body: dict[str, Any]) -> Any:
            args = {k.decode("latin-1"): [v.decode("utf-8", "replace") for v in vs]
                    for k, vs in (request.args or {}).items()}
            try:
                statuses = frozenset(OrderStatus(s) for s in args.get("status", []))
            except ValueError:
                raise ApiError(400, f"status must be one of {', '.join(s.value for s in OrderStatus)}") from None
            limit_text = (args.get("limit") or ["100"])[-1]
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_SEARCH_RESULTS:
                raise ApiError(400, f"limit must be a number from 1 to {MAX_SEARCH_RESULTS}")
            user = (args.get("user") or [None])[-1]
            orders = await self._ordering.orders(user, statuses, int(limit_text))
            return {"orders": [_order_json(o, items=False) for o in orders]}

        return await self._answer(request, "order.list", action)

    @app.route("/orders/<order_id>", methods=["GET"])
    async def show_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            try:
                shown = _order_json(await self._ordering.order(order_id), items=True)
            except RequestRejected as e:
                raise _rejected(e) from None
            downloads = await self._ordering.downloads(order_id)
            for item in shown["items"]:
                count, last = downloads.get(item["id"], (0, 0.0))
                item["downloads"], item["last_downloaded_at"] = count, last or None
            failure = await self._ordering.callback_failure(order_id)
            shown["callback_failure"] = None if failure is None else {
                "at": failure.at, "attempts": failure.attempts, "error": failure.error, "message": failure.seq}
            return shown

        return await self._answer(request, "order.show", action)

    @app.route("/orders/<order_id>/approve", methods=["POST"])
    async def approve_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            try:
                return _order_json(await self._ordering.approve(order_id), items=False)
            except RequestRejected as e:
                raise _rejected(e) from None

        return await self._answer(request, "order.approve", action)

    @app.route("/orders/<order_id>/reject", methods=["POST"])
    async def reject_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any]) -> Any:
            reason = _field(body, "reason", str).strip()
            if not reason:
                raise ApiError(400, "give a reason: the client reads it in the order's status")
            try:
                return _order_json(await self._ordering.reject(order_id, reason), items=False)
            except RequestRejected as e:
                raise _rejected(e) from None

        return await self._answer(request, "order.reject", action)

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        return error_answer(request, 404, "no such admin API resource", as_json=True)

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self, request: IRequest, failure: Any) -> bytes:
        allow_header(request, failure)
        return error_answer(request, 405, "method not allowed", as_json=True)


_MISSING = object()


def _field(body: dict[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise ApiError(400, f"missing field {name!r}")
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ApiError(400, f"field {name!r} must be a {kind.__name__}")
    return value
