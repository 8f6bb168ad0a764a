"""The admin JSON API over HTTP: handlers translate to OperatorActions and
back; refusals become 404/409/400; X-Oseod-Actor names the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor

from oseod.auth.account import Account
from oseod.config import Config, parse_config
from oseod.http.site import OseodSite
from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderType
from oseod.store.connection import Redis
from tests.parts import make_parts

AUTH = {"Authorization": ["Bearer the-token"]}


class Api:
    def __init__(self, redis: Redis, config: Config) -> None:
        self.parts = make_parts(config, redis)
        self.port: Any = reactor.listenTCP(0, OseodSite(self.parts.frontend.resource(), 1 << 20),
                                           interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}/admin/api"

    async def call(self, method: str, path: str, body: Any = None, actor: str | None = "olga") -> tuple[int, Any]:
        headers = dict(AUTH)
        if actor is not None:
            headers["X-Oseod-Actor"] = [actor]
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(method, self.base + path, data=data, headers=headers, persistent=False)
        return response.code, json.loads(await response.content())


async def submit(api: Api, owner: str, n: int = 1, reference: str | None = None) -> str:
    items = tuple(ItemSpec(item_id=f"i{k}", product_id=f"p{k}", collection_id="urn:oseod:demo") for k in range(n))
    order = await api.parts.ordering.submit(Account(owner), OrderSpec(OrderType.PRODUCT_ORDER, items=items,
                                                                      reference=reference), Notification())
    return order.order_id


@pytest_twisted.ensureDeferred
async def test_orders_moderation_cancel_retry_and_audit(redis: Redis) -> None:
    api = Api(redis, parse_config({"orders": {"moderation": "manual"}}))
    try:
        first, second, third = [await submit(api, owner, reference=f"r{n}")
                                for n, owner in enumerate(("ann", "ben", "ann"))]
        code, page = await api.call("GET", "/moderation?limit=2")
        assert code == 200 and [o["id"] for o in page["orders"]] == [first, second] and page["next"]
        code, rest = await api.call("GET", f"/moderation?limit=2&after={page['next']}")
        assert [o["id"] for o in rest["orders"]] == [third] and rest["next"] is None

        code, found = await api.call("GET", "/orders?user=ann&status=Submitted&collection=urn:oseod:demo"
                                            "&type=PRODUCT_ORDER&oldest_first=1")
        assert code == 200 and [o["id"] for o in found["orders"]] == [first, third] and found["truncated"] is False
        code, found = await api.call("GET", "/orders?reference=r1&from=2000-01-01T00:00:00Z&to=4102444800")
        assert [o["id"] for o in found["orders"]] == [second]
        for query, message in (("type=BULK", "order type"), ("after=xyz", "not a cursor"), ("limit=0", "limit"),
                               ("status=Sleeping", "status must be one of"), ("from=someday", "from must be")):
            code, error = await api.call("GET", f"/orders?{query}")
            assert code == 400 and message in error["error"], query

        code, approved = await api.call("POST", "/orders/approve", {"orders": [first, "424242"]})
        assert code == 200 and approved["orders"][first] is None
        assert "there is no order" in approved["orders"]["424242"]
        code, error = await api.call("POST", f"/orders/{first}/approve")
        assert code == 409 and "not waiting for approval" in error["error"]
        code, error = await api.call("POST", f"/orders/{second}/reject", {"reason": " "})
        assert code == 400 and "give a reason" in error["error"]
        code, cancelled = await api.call("POST", f"/orders/{second}/cancel", {"reason": "duplicate"}, actor=None)
        assert code == 200 and cancelled["status"] == "Cancelled" and cancelled["info"].endswith(": duplicate")
        code, error = await api.call("POST", f"/orders/{second}/retry")
        assert code == 409 and "no failed item" in error["error"]
        code, error = await api.call("POST", "/orders/999999/cancel")
        assert code == 404 and "there is no order" in error["error"]

        code, shown = await api.call("GET", f"/orders/{second}")
        assert code == 200 and [(h["status"], h["by"]) for h in shown["history"]] == [
            ("Submitted", ""), ("Cancelled", "admin-token")]
        assert shown["outbox"] == [] and shown["transfers"] == [] and shown["callback_failure"] is None
        assert shown["items"][0]["downloads"] == 0

        code, audit = await api.call("GET", "/audit?limit=2")
        assert code == 200 and [(e["actor"], e["via"], e["action"], e["target"]) for e in audit["entries"]] == [
            ("admin-token", "api", "order.cancel", second), ("olga", "api", "order.approve", first)]
        assert audit["entries"][0]["address"] == "127.0.0.1"
        code, older = await api.call("GET", f"/audit?before={audit['next']}")
        assert older["entries"] == []
        code, error = await api.call("GET", "/audit?before=nope")
        assert code == 400
    finally:
        await api.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_users_overview_config_and_subscriptions(redis: Redis) -> None:
    api = Api(redis, parse_config({"ldap": {"service_password": "hush"}}))
    try:
        code, user = await api.call("POST", "/users", {"name": "ivy", "password": "ivy-password-1"})
        assert code == 201 and (user["source"], user["editable"], user["disabled"]) == ("redis", True, False)
        code, user = await api.call("PATCH", "/users/ivy", {"disabled": True, "group": "eo"})
        assert code == 200 and user["disabled"] and user["group"] == "eo"
        code, error = await api.call("PATCH", "/users/ivy", {"disabled": "yes"})
        assert code == 400 and "'disabled' must be a bool" in error["error"]
        code, listing = await api.call("GET", "/users")
        assert [(u["name"], u["disabled"]) for u in listing["users"]] == [("ivy", True)]
        code, audit = await api.call("GET", "/audit")
        assert [(e["actor"], e["action"], e["detail"]) for e in audit["entries"]] == [
            ("olga", "user.set", "group=eo disabled=yes"), ("olga", "user.add", "group=default admin=no email=")]

        await submit(api, "ivy", n=2)
        code, overview = await api.call("GET", "/overview")
        assert code == 200 and overview["orders_by_status"]["Accepted"] + overview["orders_by_status"][
            "InProduction"] + overview["orders_by_status"]["Completed"] == 1
        assert overview["redis"]["up"] is True and len(overview["hours"]) == 24
        assert overview["recent_orders"][0]["owner"] == "ivy"
        assert [r["name"] for r in overview["task_runs"]] == [t.name for t in api.parts.scheduler.tasks]

        code, config = await api.call("GET", "/config")
        assert code == 200 and config["ldap"]["service_password"] == "••••"
        assert config["collections"][0]["id"] == "urn:oseod:demo"

        code, subscriptions = await api.call("GET", "/subscriptions")
        assert code == 200 and subscriptions == {"subscriptions": []}
        code, served = await api.call("POST", "/subscriptions/timeslot", {"collection": "urn:x:none",
                                                                          "timestamp": "2026-01-01T00:00:00Z"})
        assert code == 404
        code, stats = await api.call("GET", "/stats")
        assert code == 200 and "waiting" in stats["jobs"]
    finally:
        await api.port.stopListening()
