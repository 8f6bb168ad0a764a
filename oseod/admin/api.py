"""The admin JSON API under ``/admin/api/``: what ``oseoctl`` drives.
Authenticated by the bearer token in ``DATA_DIR/admin.token``.

Handlers only translate JSON and query strings into calls of
:class:`~oseod.admin.actions.OperatorActions` and their results back into
JSON; a refusal (:class:`~oseod.admin.actions.ActionRefused`) is answered
404, 409 or 400 with its one-line reason. The ``X-Oseod-Actor`` header
(oseoctl sends the local user's name) says who is acting, for the audit log.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs
from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..answers import allow_header, error_answer
from ..auth.bearer import BearerTokens
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.orders import Order, OrderStatus, StatusInfo
from ..model.sshkeys import BadPublicKey, TooManyKeys
from ..model.tokens import AccessToken
from ..model.users import check_user_name
from ..store.sshkeys import SshKeyStore, parse_public_key
from .actions import (
    MAX_PAGE,
    ActionRefused,
    Actor,
    AuditEntry,
    OperatorActions,
    OrderPage,
    OrderQuery,
    Refusal,
    UserView,
)

MAX_BODY = 64 * 1024
ACTOR_HEADER = b"x-oseod-actor"
TOKEN_ACTOR = "admin-token"  # who acts when the caller does not say
_ACTOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_REFUSAL_STATUS = {Refusal.NOT_FOUND: 404, Refusal.CONFLICT: 409, Refusal.INVALID: 400}


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
        answer["items"] = [{"id": i.spec.item_id, "product": i.spec.product_id, "collection": i.spec.collection_id,
                            "batch": i.batch, **_status_json(i.status)} for i in order.items]
    return answer


def _page_json(page: OrderPage) -> dict[str, Any]:
    return {"orders": [_order_json(o, items=False) for o in page.orders], "next": page.next,
            "truncated": page.truncated}


def _user_json(user: UserView) -> dict[str, Any]:
    return attrs.asdict(user)


def _token_json(token: AccessToken) -> dict[str, Any]:
    return {"id": token.token_id, "user": token.user, "grant": token.grant, "address": token.address,
            "created_at": token.created_at, "expires_at": token.expires_at}


def _audit_json(entry: AuditEntry) -> dict[str, Any]:
    return attrs.asdict(entry)


class AdminApi:
    app = Klein()
    log = Logger()

    def __init__(self, *, token: Callable[[], str], actions: OperatorActions, metrics: RequestMetrics,
                 clock: IReactorTime, clients: ClientAddresses = ClientAddresses(),
                 ssh_keys: SshKeyStore | None = None, tokens: BearerTokens | None = None) -> None:
        self._token = token
        self._ssh_keys = ssh_keys
        self._tokens = tokens
        self._clients = clients
        self._actions = actions
        self._metrics = metrics
        self._clock = clock

    def resource(self) -> IResource:
        return self.app.resource()

    async def _answer(self, request: IRequest, operation: str, action: Callable[[dict[str, Any], Actor], Any],
                      status: int = 200) -> bytes:
        """Authorise, decode the JSON body, run ``action``, encode its result;
        every failure becomes a JSON error with a one-line reason."""
        started = self._clock.seconds()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        who: str | None = None  # the request line names the actor once the token checks out
        try:
            self._authorise(request)
            actor = _actor(request, self._clients.of(request))
            who = actor.name
            result = await action(self._body(request), actor)
            request.setResponseCode(status)
            outcome = "ok"
            payload: Any = result
        except ActionRefused as e:
            request.setResponseCode(_REFUSAL_STATUS[e.kind])
            outcome, payload = str(_REFUSAL_STATUS[e.kind]), {"error": e.message}
        except ApiError as e:
            request.setResponseCode(e.status)
            if e.status == 401:
                request.setHeader(b"www-authenticate", b'Bearer realm="oseod-admin"')
            outcome, payload = str(e.status), {"error": str(e)}
        except RedisUnavailable:
            request.setResponseCode(503)
            request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
            outcome, payload = "503", {"error": UNAVAILABLE_TEXT}
        except Exception:
            self.log.failure("internal error in admin {operation}", operation=operation)
            request.setResponseCode(500)
            outcome, payload = "500", {"error": "internal error; the daemon's log has the details"}
        self._metrics.record("admin", operation, outcome, self._clock.seconds() - started, who,
                             self._clients.of(request))
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

    # ------------------------------------------------------------ users

    @app.route("/users", methods=["GET"])
    async def list_users(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return {"users": [_user_json(u) for u in await self._actions.users()]}

        return await self._answer(request, "user.list", action)

    @app.route("/users", methods=["POST"])
    async def add_user(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            user, warnings = await self._actions.add_user(
                actor, _field(body, "name", str), _field(body, "password", str),
                group=_field(body, "group", str, "default"), admin=_field(body, "admin", bool, False),
                email=_field(body, "email", str, ""))
            return {**_user_json(user), "warnings": list(warnings)}

        return await self._answer(request, "user.add", action, status=201)

    @app.route("/users/<name>", methods=["GET"])
    async def show_user(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return _user_json(await self._actions.user(name))

        return await self._answer(request, "user.show", action)

    @app.route("/users/<name>", methods=["PATCH"])
    async def change_user(self, request: IRequest, name: str) -> bytes:
        """``{"group": G, "admin": bool, "email": E, "disabled": bool}``, any of them."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            unknown = set(body) - {"group", "admin", "email", "disabled"}
            if unknown:
                raise ApiError(400, f"unknown field {sorted(unknown)[0]!r}")
            return _user_json(await self._actions.set_user(
                actor, name, group=_field(body, "group", str, None), admin=_field(body, "admin", bool, None),
                email=_field(body, "email", str, None), disabled=_field(body, "disabled", bool, None)))

        return await self._answer(request, "user.change", action)

    @app.route("/users/<name>/password", methods=["PUT"])
    async def set_password(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            warnings = await self._actions.set_password(actor, name, _field(body, "password", str))
            return {"name": name, "password": "changed", "warnings": list(warnings)}

        return await self._answer(request, "user.passwd", action)

    @app.route("/users/<name>", methods=["DELETE"])
    async def delete_user(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            await self._actions.delete_user(actor, name)
            return {"name": name, "deleted": True}

        return await self._answer(request, "user.del", action)

    # ------------------------------------------------------------ SSH keys (SFTP logins)

    def _keys(self, name: str) -> SshKeyStore:
        if self._ssh_keys is None:
            raise ApiError(404, "no SSH key store in this daemon")
        try:
            check_user_name(name)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        return self._ssh_keys

    @app.route("/users/<name>/keys", methods=["GET"])
    async def list_keys(self, request: IRequest, name: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return {"name": name, "keys": [attrs.asdict(k) for k in await self._keys(name).list(name)]}

        return await self._answer(request, "user.key.list", action)

    @app.route("/users/<name>/keys", methods=["POST"])
    async def add_key(self, request: IRequest, name: str) -> bytes:
        """``{"key": "ssh-ed25519 AAAA... comment"}``: the line of a .pub file."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            store = self._keys(name)
            try:
                key = parse_public_key(_field(body, "key", str))
                added = await store.add(name, key)
            except (BadPublicKey, TooManyKeys) as e:
                raise ApiError(400, str(e)) from None
            await self._actions.record(actor, "user.key.add", name, key.fingerprint)
            return {"name": name, **attrs.asdict(key), "added": added}

        return await self._answer(request, "user.key.add", action, status=201)

    @app.route("/users/<name>/keys/<path:fingerprint>", methods=["DELETE"])
    async def delete_key(self, request: IRequest, name: str, fingerprint: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            if not await self._keys(name).delete(name, fingerprint):
                raise ApiError(404, f"{name} has no key {fingerprint}")
            await self._actions.record(actor, "user.key.del", name, fingerprint)
            return {"name": name, "fingerprint": fingerprint, "deleted": True}

        return await self._answer(request, "user.key.del", action)

    # ------------------------------------------------------------ OAuth2 bearer tokens (/odata/v1/token)

    def _bearer(self) -> BearerTokens:
        if self._tokens is None:
            raise ApiError(404, "no bearer tokens in this daemon")
        return self._tokens

    @app.route("/tokens", methods=["GET"])
    async def list_tokens(self, request: IRequest) -> bytes:
        """``?user=NAME``: that user's only. Never the tokens themselves (only their digests are kept)."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            user = _last(_args(request), "user")
            if user is not None:
                try:
                    check_user_name(user)
                except ValueError as e:
                    raise ApiError(400, str(e)) from None
            return {"tokens": [_token_json(t) for t in await self._bearer().list(user)]}

        return await self._answer(request, "token.list", action)

    @app.route("/tokens/revoke", methods=["POST"])
    async def revoke_tokens(self, request: IRequest) -> bytes:
        """``{"token": ID or the token itself}`` or ``{"user": NAME}`` (all of theirs)."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            tokens = self._bearer()
            if ("token" in body) == ("user" in body):
                raise ApiError(400, "give either 'token' (a token or its id) or 'user'")
            if "user" in body:
                user = _field(body, "user", str)
                try:
                    check_user_name(user)
                except ValueError as e:
                    raise ApiError(400, str(e)) from None
                count = await tokens.revoke_user(user)
                await self._actions.record(actor, "token.revoke", user, f"all {count} token(s)")
                return {"user": user, "revoked": count}
            revoked = await tokens.revoke(_field(body, "token", str))
            if revoked is None:
                raise ApiError(404, "no such token (expired, revoked, or never issued)")
            await self._actions.record(actor, "token.revoke", revoked.user, revoked.token_id)
            return {"user": revoked.user, "revoked": 1, "id": revoked.token_id}

        return await self._answer(request, "token.revoke", action)

    # ------------------------------------------------------------ the service

    @app.route("/stats", methods=["GET"])
    async def stats(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return {"jobs": await self._actions.job_report()}

        return await self._answer(request, "stats", action)

    @app.route("/overview", methods=["GET"])
    async def overview(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            overview = await self._actions.overview()
            shown = attrs.asdict(overview, recurse=True, filter=lambda a, v: a.name != "recent_orders")
            shown["recent_orders"] = [_order_json(o, items=False) for o in overview.recent_orders]
            return shown

        return await self._answer(request, "overview", action)

    @app.route("/audit", methods=["GET"])
    async def audit(self, request: IRequest) -> bytes:
        """``?limit=N`` (default 100), ``?before=ID`` (the next page)."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            args = _args(request)
            entries = await self._actions.audit(_limit(args, 100), _last(args, "before"))
            return {"entries": [_audit_json(e) for e in entries], "next": entries[-1].id if entries else None}

        return await self._answer(request, "audit", action)

    @app.route("/config", methods=["GET"])
    async def configuration(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return self._actions.configuration()

        return await self._answer(request, "config", action)

    # ------------------------------------------------------------ subscriptions

    @app.route("/subscriptions", methods=["GET"])
    async def list_subscriptions(self, request: IRequest) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return {"subscriptions": [
                {**_order_json(s.order, items=False), "collections": list(s.collections), "starts_at": s.starts_at,
                 "ends_at": s.ends_at, "batches": s.batches, "last_timeslot": s.last_timeslot}
                for s in await self._actions.subscriptions()]}

        return await self._answer(request, "subscription.list", action)

    @app.route("/subscriptions/timeslot", methods=["POST"])
    async def timeslot(self, request: IRequest) -> bytes:
        """``{"collection": ID, "timestamp": ISO 8601, "force": false}``."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            served = await self._actions.timeslot(actor, _field(body, "collection", str),
                                                  _field(body, "timestamp", str), _field(body, "force", bool, False))
            return {"orders": list(served)}

        return await self._answer(request, "subscription.timeslot", action)

    # ------------------------------------------------------------ orders

    @app.route("/orders", methods=["GET"])
    async def list_orders(self, request: IRequest) -> bytes:
        """``?status=S`` (repeatable), ``?user=U``, ``?collection=C``,
        ``?type=T`` (MASSIVE_ORDER too), ``?reference=R``, ``?from=`` and
        ``?to=`` (last update, Unix seconds or ISO 8601), ``?oldest_first=1``,
        ``?after=CURSOR`` (the ``next`` of the page before), ``?limit=N``
        (at most 1000)."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            args = _args(request)
            try:
                statuses = frozenset(_order_status(s) for s in args.get("status", []))
            except ValueError:
                raise ApiError(400, f"status must be one of {', '.join(s.value for s in OrderStatus)}") from None
            query = OrderQuery(
                statuses=statuses, user=_last(args, "user"), collection=_last(args, "collection"),
                order_type=_last(args, "type"), reference=_last(args, "reference"),
                updated_from=_moment(args, "from"), updated_to=_moment(args, "to"),
                oldest_first=_last(args, "oldest_first") in ("1", "true", "yes"), after=_last(args, "after"),
                limit=_limit(args, 100))
            return _page_json(await self._actions.search_orders(query))

        return await self._answer(request, "order.list", action)

    @app.route("/moderation", methods=["GET"])
    async def moderation(self, request: IRequest) -> bytes:
        """Orders waiting for approval, oldest first: ``?limit=N``, ``?after=CURSOR``."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            args = _args(request)
            return _page_json(await self._actions.moderation_queue(_limit(args, 100), _last(args, "after")))

        return await self._answer(request, "order.moderation", action)

    @app.route("/orders/<order_id>", methods=["GET"])
    async def show_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            detail = await self._actions.order_detail(order_id)
            shown = _order_json(detail.order, items=True)
            for item in shown["items"]:
                count, last = detail.item_downloads.get(item["id"], (0, 0.0))
                item["downloads"], item["last_downloaded_at"] = count, last or None
            failure = detail.callback_failure
            shown["callback_failure"] = None if failure is None else {
                "at": failure["at"], "attempts": failure["attempts"], "error": failure["error"],
                "message": failure["seq"]}
            shown["history"] = [attrs.asdict(h) for h in detail.history]
            shown["outbox"] = [attrs.asdict(e) for e in detail.outbox]
            shown["transfers"] = [attrs.asdict(d) for d in detail.downloads]
            return shown

        return await self._answer(request, "order.show", action)

    @app.route("/orders/<order_id>/approve", methods=["POST"])
    async def approve_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return _order_json(await self._actions.approve(actor, order_id), items=False)

        return await self._answer(request, "order.approve", action)

    @app.route("/orders/approve", methods=["POST"])
    async def approve_orders(self, request: IRequest) -> bytes:
        """``{"orders": [ID, ...]}``: per id, null when approved, else why not."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            ids = _field(body, "orders", list)
            if not all(isinstance(i, str) for i in ids):
                raise ApiError(400, "field 'orders' must be a list of order ids")
            return {"orders": dict(await self._actions.approve_many(actor, ids))}

        return await self._answer(request, "order.approve_many", action)

    @app.route("/orders/<order_id>/reject", methods=["POST"])
    async def reject_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return _order_json(await self._actions.reject(actor, order_id, _field(body, "reason", str)), items=False)

        return await self._answer(request, "order.reject", action)

    @app.route("/orders/<order_id>/cancel", methods=["POST"])
    async def cancel_order(self, request: IRequest, order_id: str) -> bytes:
        """``{"reason": TEXT}`` (optional: the client reads it in the order's status)."""
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return _order_json(await self._actions.cancel(actor, order_id, _field(body, "reason", str, "")),
                               items=False)

        return await self._answer(request, "order.cancel", action)

    @app.route("/orders/<order_id>/retry", methods=["POST"])
    async def retry_order(self, request: IRequest, order_id: str) -> bytes:
        async def action(body: dict[str, Any], actor: Actor) -> Any:
            return {"id": order_id, "items": list(await self._actions.retry_failed(actor, order_id))}

        return await self._answer(request, "order.retry", action)

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        return error_answer(request, 404, "no such admin API resource", as_json=True)

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self, request: IRequest, failure: Any) -> bytes:
        allow_header(request, failure)
        return error_answer(request, 405, "method not allowed", as_json=True)


def _actor(request: IRequest, address: str) -> Actor:
    """Who acts: the name oseoctl says (the token's holder when it says
    none, or something that is no user name), from the client's ``address``."""
    said = (request.getHeader(ACTOR_HEADER) or b"").decode("utf-8", "replace").strip()
    return Actor(name=said if _ACTOR_NAME.match(said) else TOKEN_ACTOR, via="api", address=address)


def _order_status(name: str) -> OrderStatus:
    """The status ``name`` names, in any case ("cancelled"); ValueError if none."""
    for status in OrderStatus:
        if status.value.lower() == name.lower():
            return status
    raise ValueError(name)


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


def _args(request: IRequest) -> Mapping[str, list[str]]:
    return {k.decode("latin-1"): [v.decode("utf-8", "replace") for v in vs] for k, vs in (request.args or {}).items()}


def _last(args: Mapping[str, list[str]], name: str) -> str | None:
    values = args.get(name)
    return values[-1] if values and values[-1] else None


def _limit(args: Mapping[str, list[str]], default: int) -> int:
    text = _last(args, "limit") or str(default)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_PAGE}")
    return int(text)


def _moment(args: Mapping[str, list[str]], name: str) -> float | None:
    """A time given as Unix seconds or ISO 8601 (UTC unless it says otherwise)."""
    text = _last(args, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be Unix seconds or an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
