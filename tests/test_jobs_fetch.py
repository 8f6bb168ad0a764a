"""The http processor against a real HTTP server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from oseod.config import CollectionConfig, ProcessingConfig
from oseod.jobs.fetch import HttpProcessor
from oseod.jobs.processors import ProcessorConfigError
from oseod.model.orders import Notification, OrderStatus
from oseod.store.connection import Redis
from tests.polling import eventually
from tests.test_jobs_engine import ALICE, CONFIG, Daemon, daemon, spec
from tests.pools import POOLS

S = OrderStatus


class Products(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.hanging: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        name = unquote(request.uri.decode().split("/products/", 1)[1])
        if name == "slow":
            self.hanging.append(request)
            return NOT_DONE_YET
        if name.startswith("missing"):
            request.setResponseCode(404)
            return b"not here"
        return f"product {name} ".encode() * 10_000


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[tuple[str, Products]]:
    products = Products()
    port = reactor.listenTCP(0, Site(products), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}", products
    for request in products.hanging:
        if not request.finished and not request._disconnected:  # noqa: SLF001
            request.finish()
    await port.stopListening()


def with_fetch(redis: Redis, **options: Any) -> Daemon:
    collection = CollectionConfig(id="urn:x:remote", processor="http", processor_options=options)
    config = attrs.evolve(CONFIG, collections=(collection,), processing=ProcessingConfig(max_attempts=1))
    return daemon(redis, config=config)


@pytest_twisted.ensureDeferred
async def test_products_are_fetched_and_answers_other_than_200_fail(redis: Redis,
                                                                    server: tuple[str, Products]) -> None:
    base, _ = server
    d = with_fetch(redis, url=base + "/products/{product_id}", output="{product_id}.bin")
    order = await d.service.submit(ALICE, spec("a b/c", "missing-1", collection="urn:x:remote"), Notification())
    await d.engine.start()
    await d.engine.drain()
    stored = await d.service.get(ALICE, order.order_id)
    assert [i.status.status for i in stored.items] == [S.Completed, S.Failed]
    assert stored.items[1].status.additional_info == f"{base}/products/missing-1 answered 404 Not Found"
    files = [p for p in d.results.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["a_b_c.bin"]
    # the id went percent-encoded into the URL, as one path segment (the
    # server decodes it back: its last segment is the whole id)
    assert files[0].read_bytes() == b"product a b/c " * 10_000
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_transfer_past_its_timeout_fails(redis: Redis, server: tuple[str, Products]) -> None:
    base, products = server
    d = with_fetch(redis, url=base + "/products/slow", timeout=30)
    order = await d.service.submit(ALICE, spec("x", collection="urn:x:remote"), Notification())
    await d.engine.start()

    async def asked() -> bool:
        return bool(products.hanging)

    await eventually(asked, what="the request to reach the server")
    d.clock.advance(30)
    await d.engine.drain()
    item = (await d.service.get(ALICE, order.order_id)).items[0].status
    assert (item.status, item.additional_info) == (S.Failed, f"fetching {base}/products/slow took longer than 30 s")
    assert not [p for p in d.results.rglob("*") if p.is_file()]  # no partial file left
    await d.engine.stop()


@pytest.mark.parametrize(("options", "message"), [
    ({}, "must be an http:// or https:// URL"),
    ({"url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
    ({"url": "http://x/{owner}"}, "unknown field {owner}"),
])
def test_bad_configurations_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ProcessorConfigError) as error:
        HttpProcessor(options, None, None, threads=POOLS)
    assert message in str(error.value)
