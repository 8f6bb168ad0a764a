"""HTTP downloads of results: the owner only, HEAD and Range, and complete
downloads making items (then the order) Downloaded."""

from __future__ import annotations

from typing import Any

import pytest_twisted
import treq

from oseod.jobs.dummy import content
from oseod.model.orders import OrderStatus
from tests.events import captured, transfer_event
from tests.polling import eventually
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - server is a fixture

S = OrderStatus


async def fetch(url: str, user: str | None = "alice", method: str = "GET", **headers: str) -> tuple[int, Any, bytes]:
    auth = (user, f"{user}-password") if user else None
    response = await treq.request(method, url, auth=auth, headers=headers or None, persistent=False)
    return response.code, response.headers, await response.content()


@pytest_twisted.ensureDeferred
async def test_results_download_over_http(server: Any) -> None:
    srv = await server()
    code, ack = await srv.call(submit("a1", "a2"))
    assert code == 200
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    base = srv.url.removesuffix("/oseo") + f"/results/{order_id}"
    files = {item: f"{item}-product.dat" for item in ("a1", "a2")}

    code, _, page = await fetch(f"{base}/a1/")
    assert code == 200 and b'href="a1-product.dat"' in page

    # HEAD and a Range: answered, but no download
    code, headers, body = await fetch(f"{base}/a1/{files['a1']}", method="HEAD")
    assert (code, body, headers.getRawHeaders("content-length")) == (200, b"", ["1024"])
    code, _, body = await fetch(f"{base}/a1/{files['a1']}", Range="bytes=0-9")
    assert (code, body) == (206, content("a1", 1024)[:10])
    status = await srv.parts.ordering.find(order_id)
    assert status is not None and [i.status.status for i in status.items] == [S.Completed, S.Completed]

    with captured(transfer_event) as transfers:
        for item, name in files.items():
            code, _, body = await fetch(f"{base}/{item}/{name}")
            assert (code, body) == (200, content(item, 1024))
    assert [(e["transport"], e["user"], e["file"], e["bytes_sent"], e["complete"], e["client"]) for e in transfers] == [
        ("http", "alice", name, 1024, True, "127.0.0.1") for name in files.values()]

    async def downloaded() -> bool:
        found = await srv.parts.ordering.find(order_id)
        return found is not None and found.status.status is S.Downloaded

    await eventually(downloaded, what="the order to be Downloaded")
    found = await srv.parts.ordering.find(order_id)
    assert found is not None
    assert [(i.status.status, i.status.additional_info) for i in found.items] == [(S.Downloaded, "Downloaded")] * 2
    assert found.status.additional_info == "All 2 items were downloaded"


@pytest_twisted.ensureDeferred
async def test_downloads_are_for_the_owner_only(server: Any) -> None:
    srv = await server()
    code, ack = await srv.call(submit("b1"))
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    url = srv.url.removesuffix("/oseo") + f"/results/{order_id}/b1/b1-product.dat"
    code, headers, _ = await fetch(url, user=None)
    assert code == 401 and headers.getRawHeaders("www-authenticate") == ['Basic realm="oseod", Bearer realm="oseod"']
    # Another user's order is answered as one that does not exist.
    theirs = await fetch(url, user="bob")
    assert theirs[0] == 404 and theirs[2] == (await fetch(url.replace(order_id, "k" * len(order_id)), user="bob"))[2]
    response = await treq.get(url, auth=("alice", "wrong"), persistent=False)
    assert response.code == 401
    await response.content()
    root = srv.url.removesuffix("/oseo") + "/results"
    for path in ("/999999/b1/b1-product.dat", f"/{order_id}/nope/x", f"/{order_id}/b1/other.dat",
                 f"/{order_id}/b1/..%2F..%2Fsecret", f"/{order_id}/b1/.b1-product.dat.partial"):
        code, _, body = await fetch(root + path)
        assert code == 404, (path, body)
