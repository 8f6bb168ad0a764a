"""Canned operator views for console tests that look at rendering alone
(escaping, every page's markup): deterministic data, hostile strings in
every field a client or an operator can choose, and a record of the calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oseod.admin.actions import (
    ActionRefused,
    Actor,
    AuditEntry,
    HourBucket,
    OperatorActions,
    OrderDetail,
    OrderPage,
    OrderQuery,
    OutboxEvent,
    Overview,
    RedisHealth,
    Refusal,
    SubscriptionView,
    TaskRun,
    UserView,
)
from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Item,
    ItemSpec,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    StatusInfo,
)
from oseod.store.orders import HistoryLine, Transfer

HOSTILE = '<script>alert("x")</script>&\'"'
NOW = 1_700_000_000.0


def order(order_id: str = "1", status: OrderStatus = OrderStatus.Submitted, reference: str = HOSTILE,
          owner: str = "alice") -> Order:
    items = tuple(
        Item(ItemSpec(item_id=f"i{n}<b>", product_id=HOSTILE, collection_id="urn:oseod:demo",
                      options=(OptionValue("format", HOSTILE),)),
             StatusInfo(s, HOSTILE, changed_at=NOW), batch=n % 2)
        for n, s in enumerate((OrderStatus.Completed, OrderStatus.Failed, status)))
    spec = OrderSpec(order_type=OrderType.PRODUCT_ORDER, items=tuple(i.spec for i in items), reference=reference,
                     remark=HOSTILE, options=(OptionValue("format", HOSTILE),),
                     delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "ftp"))
    return Order(order_id=order_id, owner=owner, spec=spec, status=StatusInfo(status, HOSTILE, changed_at=NOW),
                 created_at=NOW - 60, items=items)


class CannedActions(OperatorActions):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.audit_log: list[tuple[Actor, str, str, str]] = []
        self.revoked: set[str] = set()  # names no longer operators (is_operator)
        self.overviews = 0  # overview() calls

    async def overview(self) -> Overview:
        self.overviews += 1
        hours = tuple(HourBucket(NOW - 3600 * (23 - n), n % 5, n % 2, n) for n in range(24))
        return Overview(
            orders_by_status={"Submitted": 2, "Completed": 5}, items_by_status={"Completed": 9, "Failed": 1},
            jobs={"waiting": {"FAST_TRACK": 0, "STANDARD": 3}, "delayed": 1, "running": 2},
            items_per_minute=1.5, downloads_last_hour=4, outbox_pending={"callback": 1, "mail": 0},
            outbox_given_up=0, leader=HOSTILE, task_runs=(TaskRun(HOSTILE, NOW, 0.1, "ok"),),
            redis=RedisHealth(True, 0.3, 1 << 20, "7.2", "unix:///r.sock"), hours=hours,
            recent_orders=(order(),))

    async def search_orders(self, query: OrderQuery) -> OrderPage:
        self.calls.append(("search", query))
        return OrderPage((order(), order("2", OrderStatus.Completed)), "cursor<&>")

    async def order_detail(self, order_id: str) -> OrderDetail:
        if order_id != "1":
            raise ActionRefused(Refusal.NOT_FOUND, f"no order {order_id}")
        return OrderDetail(order(), (HistoryLine(NOW, "Submitted", HOSTILE, HOSTILE),),
                           (OutboxEvent(NOW, "mail", 1, "sent", HOSTILE),),
                           (Transfer(NOW, "i0", HOSTILE, HOSTILE, "ftp", "127.0.0.1", 1024, True),),
                           {"error": HOSTILE})

    async def moderation_queue(self, limit: int = 100, after: str | None = None) -> OrderPage:
        return OrderPage((order(), order("3")), None)

    async def approve(self, actor: Actor, order_id: str) -> Order:
        self.calls.append(("approve", (actor, order_id)))
        return order(order_id, OrderStatus.Accepted)

    async def approve_many(self, actor: Actor, order_ids: Sequence[str]) -> Mapping[str, str | None]:
        self.calls.append(("approve_many", (actor, tuple(order_ids))))
        return {i: None for i in order_ids}

    async def reject(self, actor: Actor, order_id: str, reason: str) -> Order:
        self.calls.append(("reject", (actor, order_id, reason)))
        return order(order_id, OrderStatus.Cancelled)

    async def cancel(self, actor: Actor, order_id: str, reason: str = "") -> Order:
        self.calls.append(("cancel", (actor, order_id, reason)))
        return order(order_id, OrderStatus.Cancelled)

    async def retry_failed(self, actor: Actor, order_id: str) -> tuple[str, ...]:
        self.calls.append(("retry", (actor, order_id)))
        return ("i0",)

    async def add_user(self, actor: Actor, name: str, password: str, *, group: str = "default",
                       admin: bool = False, email: str = "") -> tuple[UserView, tuple[str, ...]]:
        self.calls.append(("add_user", (actor, name, group, admin, email)))
        return await self.user(name), ()

    async def set_user(self, actor: Actor, name: str, *, group: str | None = None, admin: bool | None = None,
                       email: str | None = None, disabled: bool | None = None) -> UserView:
        self.calls.append(("set_user", (actor, name, group, admin, email, disabled)))
        return await self.user(name)

    async def set_password(self, actor: Actor, name: str, password: str) -> tuple[str, ...]:
        self.calls.append(("set_password", (actor, name)))
        return ()

    async def delete_user(self, actor: Actor, name: str) -> None:
        self.calls.append(("delete_user", (actor, name)))

    async def users(self) -> tuple[UserView, ...]:
        return (UserView(HOSTILE, "redis", HOSTILE, True, HOSTILE, False, NOW, NOW, True),
                UserView("ldapuser", "ldap", "default", False, "", False, None, None, False))

    async def user(self, name: str) -> UserView:
        if name == "ldapuser":
            return UserView("ldapuser", "ldap", "default", False, "", False, None, None, False)
        return UserView(name, "redis", HOSTILE, True, HOSTILE, True, NOW, None, True)

    async def is_operator(self, name: str) -> bool:
        return name not in self.revoked

    async def audit(self, limit: int = 100, before: str | None = None) -> tuple[AuditEntry, ...]:
        return tuple(AuditEntry(str(n), NOW - n, HOSTILE, "console", "127.0.0.1", "order.approve", HOSTILE, HOSTILE)
                     for n in range(3))

    async def record(self, actor: Actor, action: str, target: str = "", detail: str = "") -> None:
        self.audit_log.append((actor, action, target, detail))

    def configuration(self) -> Mapping[str, Any]:
        return {"orders": {"moderation": "manual", "max_items_per_order": 200},
                "email": {"smtp_host": "", "password": "***", "admins": [HOSTILE]},
                "collection": [{"id": "urn:oseod:demo", "processor": "dummy", "order_types": ["PRODUCT_ORDER"],
                                "option": [{"name": "format", "choices": ["GeoTIFF", HOSTILE]}]}]}

    async def subscriptions(self) -> tuple[SubscriptionView, ...]:
        return (SubscriptionView(order("9", OrderStatus.InProduction), ("urn:oseod:demo",), NOW, None, 2, HOSTILE),)

    async def timeslot(self, actor: Actor, collection_id: str, timestamp: str, force: bool = False) -> tuple[str, ...]:
        self.calls.append(("timeslot", (actor, collection_id, timestamp, force)))
        return ("9",)
