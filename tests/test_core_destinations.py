"""Where the daemon may connect to (call-backs, WS-N, pushes): an IPv6 address
that carries an IPv4 one is judged by the IPv4 address inside, at Submit and
after a name is resolved, right before connecting."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from oseod.core.deliverables import Deliverable
from oseod.core.destinations import embedded_ipv4, literal_refusal, network_refusal
from oseod.core.validation import check_notification
from oseod.jobs.push import FtpPusher, PushFailed
from oseod.model.errors import RequestRejected
from oseod.model.orders import Notification, OnlineAddress, StatusNotification
from oseod.notify.posting import CallbackPoster
from oseod.notify.sender import Undeliverable
from oseod.oseo.callbacks import Callback, CallbackKind
from oseod.store.connection import Redis
from tests.fake_dns import FixedResolver
from tests.test_jobs_engine import ALICE, daemon
from tests.test_jobs_push import push_spec
from tests.pools import POOLS

# Each IPv4 address of a kind, then the forms an IPv6 address can carry it in.
KINDS = {
    "loopback": "127.0.0.1",
    "private": "10.1.2.3",
    "link-local": "169.254.169.254",
    None: "8.8.8.8",  # public
}


def forms(v4: str) -> dict[str, str]:
    n = int(ipaddress.IPv4Address(v4))
    high, low = f"{n >> 16:x}", f"{n & 0xFFFF:x}"
    client = n ^ 0xFFFFFFFF  # Teredo keeps the client's address inverted
    return {
        "IPv4": v4,
        "IPv4-mapped": f"::ffff:{v4}",
        "IPv4-mapped, hex": f"::ffff:{high}:{low}",
        "IPv4-compatible": f"::{v4}",
        "NAT64": f"64:ff9b::{v4}",
        "NAT64, hex": f"64:ff9b::{high}:{low}",
        "6to4": f"2002:{high}:{low}::1",
        "Teredo": f"2001:0:4136:e378:8000:63bf:{client >> 16:x}:{client & 0xFFFF:x}",
    }


TABLE = [(kind, form, address) for kind, v4 in KINDS.items() for form, address in forms(v4).items()]


@pytest.mark.parametrize(("kind", "form", "address"), TABLE)
def test_an_ipv4_address_is_judged_alike_in_every_form(kind: str | None, form: str, address: str) -> None:
    refusal = network_refusal(address, [])
    if form == "Teredo":
        # Teredo needs a relay the provider would not run: refused whatever it carries.
        assert refusal is not None and (kind is None or kind in refusal), refusal
    elif kind is None:
        assert refusal is None, refusal
    else:
        assert refusal == (f"{address} is a {kind} address" + ("" if form == "IPv4" else f" ({KINDS[kind]} inside)")
                           + ", which this service does not deliver to")
    # What Submit says needs no DNS for an IP address: the same verdict.
    assert literal_refusal(address, []) == refusal


@pytest.mark.parametrize(("kind", "form", "address"), [row for row in TABLE if row[0] == "private"])
def test_allowed_networks_allow_the_ipv4_address_in_every_form(kind: str, form: str, address: str) -> None:
    if form == "Teredo":
        return
    assert network_refusal(address, ["10.0.0.0/8"]) is None
    assert network_refusal(address, ["192.168.0.0/16"]) is not None


@pytest.mark.parametrize(("address", "inside"), [
    ("::1", []),  # IPv6's own loopback, judged as itself
    ("::", []),
    ("2001:db8::1", []),
    ("::127.0.0.1", ["127.0.0.1"]),
    ("64:ff9b::7f00:1", ["127.0.0.1"]),
    ("2002:7f00:1::", ["127.0.0.1"]),
    # The local-use NAT64 prefix: the operator's prefix length is unknown, so
    # every position RFC 6052 allows is read (/48, /56, /64, /96).
    ("64:ff9b:1:7f00:0:100::", ["127.0.0.1", "0.0.1.0", "0.1.0.0", "0.0.0.0"]),
    ("64:ff9b:1::808:808", ["0.0.0.0", "0.0.0.0", "0.0.0.8", "8.8.8.8"]),
])
def test_embedded_ipv4(address: str, inside: list[str]) -> None:
    assert [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(address))] == inside


def test_ipv6_addresses_of_their_own_are_judged_as_before() -> None:
    assert network_refusal("::1", []) == "::1 is a loopback address, which this service does not deliver to"
    assert network_refusal("fe80::1", []) == "fe80::1 is a link-local address, which this service does not deliver to"
    assert network_refusal("fd00::1", []) == "fd00::1 is a private address, which this service does not deliver to"
    assert network_refusal("2a00:1450:4001:80b::200e", []) is None
    # Local-use NAT64 reaches the provider's own translator: refused unless allowed.
    assert "0.0.0.0 inside" in (network_refusal("64:ff9b:1::808:808", []) or "")
    assert network_refusal("64:ff9b:1::808:808", ["64:ff9b:1::/48"]) is None


# ------------------------------------------------------------------ at Submit


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[::ffff:7f00:1]", "[2002:7f00:1::1]",
                                  "[64:ff9b::a01:203]"])
def test_submit_refuses_a_callback_to_a_translated_internal_address(host: str) -> None:
    notification = Notification(StatusNotification.ALL, f"http://{host}:8080/cb", "uuid:1", "1.2")
    with pytest.raises(RequestRejected) as refused:
        check_notification(notification)
    assert (refused.value.code, refused.value.locator) == ("InvalidNotificationValue", "ws-address")
    assert " inside)" in refused.value.text
    check_notification(Notification(StatusNotification.ALL, "http://[64:ff9b::808:808]:8080/cb", "uuid:1", "1.2"))


@pytest.mark.parametrize("address", ["[::127.0.0.1]:21", "64:ff9b::7f00:1", "ftp://[::ffff:a01:203]/in",
                                     "[2002:a9fe:a9fe::1]:2121"])
@pytest_twisted.ensureDeferred
async def test_submit_refuses_a_push_to_a_translated_internal_address(redis: Redis, address: str) -> None:
    d = daemon(redis)  # no allowed_networks
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, push_spec("p", address=address), Notification())
    assert (refused.value.code, refused.value.locator) == ("InvalidParameterValue", "onlineAddress")
    assert " inside)" in refused.value.text


# ------------------------------------------------------------------ once resolved


@pytest.mark.parametrize("resolved", ["64:ff9b::7f00:1", "::127.0.0.1", "2002:a00:1::1"])
@pytest_twisted.ensureDeferred
async def test_a_name_that_resolves_to_a_translated_internal_address_is_not_pushed_to(
        tmp_path: Path, resolved: str) -> None:
    class Reactor:
        nameResolver = FixedResolver(resolved)

        def connectTCP(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no connection should be tried")

    pusher = FtpPusher(Reactor(), reactor, connect_timeout=5.0, idle_timeout=5.0)
    result = tmp_path / "r.dat"
    result.write_bytes(b"x")
    with pytest.raises(PushFailed) as failed:
        await pusher.push(OnlineAddress("ftp", "files.client.example", "bob", "secret", "in"),
                          [Deliverable("r.dat", result, 1, 0.0)])
    assert f"files.client.example: {resolved} is a " in str(failed.value) and " inside)" in str(failed.value)


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]"])
@pytest_twisted.ensureDeferred
async def test_a_callback_to_a_translated_loopback_address_is_not_posted(host: str) -> None:
    # As a call-back queued by an earlier version (or to a name) meets the
    # check again right before the connection.
    poster = CallbackPoster(reactor, timeout=5.0, threads=POOLS)
    try:
        with pytest.raises(Undeliverable) as refused:
            await poster.post(Callback(CallbackKind.SUBMIT_RESPONSE, f"http://{host}:1/cb", "uuid:1", b"<x/>",
                                       "application/soap+xml", None))
        assert "127.0.0.1 inside" in str(refused.value)
    finally:
        await poster.close()
