"""The console's orders, as :mod:`oseod.admin.actions.orders` has them: the
search, an order's page and what an operator does to it, the moderation
queue, subscriptions and their timeslots."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from klein import Klein
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ..admin.actions import ActionRefused, Actor, OperatorActions, OrderQuery, Refusal
from ..model.orders import OrderStatus
from ..model.sessions import SessionRecord
from .forms import Form, FormError
from .frame import BASE, MAX_ID, Part, error_pages, page_url
from .pages import ORDER_TYPES, STATUSES

PAGE_SIZE = 50


class OrderPages(Part):
    app: ClassVar[Klein] = Klein()
    segments = ("orders", "moderation", "subscriptions")
    log = Logger()
    error_pages(app)

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
            page = await self.actions.search_orders(query)
            args = [(k, v) for k, v in _query_args(request) if k != "after"]
            next_url = f"{BASE}orders?{urlencode([*args, ('after', page.next)])}" if page.next else None
            return "orders.html", {"error": "", "page": page, "query": args, "next_url": next_url,
                                   "selected": frozenset(statuses)}

        return await self.frame.page(request, "orders", build)

    @app.route("/orders/<order_id>", methods=["GET", "HEAD"])
    async def order(self, request: IRequest, order_id: str) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            if len(order_id) > MAX_ID:
                raise ActionRefused(Refusal.NOT_FOUND, "no such order")
            detail = await self.actions.order_detail(order_id)
            batches: dict[int, dict[str, int]] = {}
            for item in detail.order.items:
                counts = batches.setdefault(item.batch, {})
                counts[item.status.status.value] = counts.get(item.status.status.value, 0) + 1
            return "order.html", {"detail": detail, "order": detail.order, "batches": sorted(batches.items()),
                                  "back": f"{BASE}orders/{order_id}"}

        return await self.frame.page(request, "orders", build)

    @app.route("/orders/<order_id>/approve", methods=["POST"])
    async def approve(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self.actions.approve(who, order_id)
            return f"order {order_id} approved"

        return await self.frame.post(request, {"order", "reason"}, page_url("orders", order_id), act)

    @app.route("/orders/<order_id>/reject", methods=["POST"])
    async def reject(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            reason = form.text("reason", required="a rejection needs a reason")
            await self.actions.reject(who, order_id, reason)
            return f"order {order_id} rejected: {reason}"

        return await self.frame.post(request, {"order", "reason"}, page_url("orders", order_id), act)

    @app.route("/orders/<order_id>/cancel", methods=["POST"])
    async def cancel(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            await self.actions.cancel(who, order_id, form.text("reason"))
            return f"order {order_id} cancelled"

        return await self.frame.post(request, {"reason"}, page_url("orders", order_id), act)

    @app.route("/orders/<order_id>/retry", methods=["POST"])
    async def retry(self, request: IRequest, order_id: str) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            items = await self.actions.retry_failed(who, order_id)
            if not items:
                return f"order {order_id} had no failed item to retry"
            return f"order {order_id}: {len(items)} failed item{'s' if len(items) > 1 else ''} queued again"

        return await self.frame.post(request, (), page_url("orders", order_id), act)

    # --- moderation --------------------------------------------------------------------

    @app.route("/moderation", methods=["GET", "HEAD"])
    async def moderation(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            form = Form(request, {"after"})
            page = await self.actions.moderation_queue(limit=100, after=form.optional("after", max_length=MAX_ID))
            next_url = f"{BASE}moderation?{urlencode([('after', page.next)])}" if page.next else None
            return "moderation.html", {"page": page, "next_url": next_url, "back": f"{BASE}moderation"}

        return await self.frame.page(request, "moderation", build)

    @app.route("/moderation/approve", methods=["POST"])
    async def approve_many(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            chosen = form.values("order")
            if not chosen:
                raise FormError("no order was ticked")
            outcome = await self.actions.approve_many(who, chosen)
            done = [order_id for order_id, why in outcome.items() if why is None]
            refused = [f"{order_id} ({why})" for order_id, why in outcome.items() if why is not None]
            message = f"approved {len(done)} order{'s' if len(done) != 1 else ''}"
            if done:
                message += ": " + ", ".join(done)
            if refused:
                message += "; refused: " + "; ".join(refused)
            return message

        return await self.frame.post(request, {"order", "reason"}, f"{BASE}moderation", act)

    # --- subscriptions ---------------------------------------------------------------

    @app.route("/subscriptions", methods=["GET", "HEAD"])
    async def subscriptions(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "subscriptions.html", {"subscriptions": await self.actions.subscriptions(),
                                          "collections": _collections(self.actions)}

        return await self.frame.page(request, "subscriptions", build)

    @app.route("/subscriptions/timeslot", methods=["POST"])
    async def timeslot(self, request: IRequest) -> bytes:
        async def act(form: Form, who: Actor) -> str:
            collection = form.text("collection", required="name the collection", max_length=MAX_ID)
            stamp = form.text("timestamp", required="give the timeslot's time (ISO 8601)", max_length=64)
            orders = await self.actions.timeslot(who, collection, stamp, force=form.flag("force"))
            if not orders:
                return f"timeslot {stamp} of {collection}: no subscription took it"
            return f"timeslot {stamp} of {collection} served to order{'s' if len(orders) > 1 else ''} " + \
                ", ".join(orders)

        return await self.frame.post(request, {"collection", "timestamp", "force"}, f"{BASE}subscriptions", act)


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
        OrderPages.log.failure("no collections for the timeslot form")
        return ()
    found = config.get("collection") or config.get("collections") or ()
    return tuple(str(c.get("id")) for c in found if isinstance(c, dict) and c.get("id"))
