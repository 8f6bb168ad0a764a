"""The client address behind trusted proxies, and only behind them."""

from __future__ import annotations

import pytest
from twisted.web.test.requesthelper import DummyRequest
from twisted.internet.address import IPv4Address

from oseod.forwarded import ClientAddresses, forwarded_for, ip_of, x_forwarded_for


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    assert addresses.resolve("192.0.2.7", x_forwarded=["198.51.100.1"]) == "192.0.2.7"
    assert addresses.resolve("192.0.2.7", forwarded=["for=198.51.100.1"]) == "192.0.2.7"


def test_no_trusted_proxies_believes_no_header() -> None:
    assert ClientAddresses().resolve("127.0.0.1", x_forwarded=["198.51.100.1"]) == "127.0.0.1"


def test_trusted_proxy_names_the_client() -> None:
    addresses = ClientAddresses(["127.0.0.1/32"])
    assert addresses.resolve("127.0.0.1", x_forwarded=["198.51.100.1"]) == "198.51.100.1"


def test_chain_is_read_from_the_right_up_to_the_first_untrusted_hop() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    # The left entries were written by the client itself: not believed.
    header = ["6.6.6.6, 198.51.100.1", "10.1.1.1"]
    assert addresses.resolve("10.0.0.1", x_forwarded=header) == "198.51.100.1"


def test_garbage_entry_stops_at_the_last_believed_hop() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    assert addresses.resolve("10.0.0.1", x_forwarded=["unknown"]) == "10.0.0.1"
    assert addresses.resolve("10.0.0.1", x_forwarded=["198.51.100.1, _hidden"]) == "10.0.0.1"


def test_forwarded_header_wins_and_its_nodes_are_parsed() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    value = 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.2:80'
    assert forwarded_for([value]) == ["2001:db8::1", "10.0.0.2"]
    assert addresses.resolve("10.0.0.1", forwarded=[value], x_forwarded=["198.51.100.9"]) == "2001:db8::1"


def test_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert str(ip_of("::ffff:127.0.0.1")) == "127.0.0.1"
    assert ClientAddresses(["127.0.0.0/8"]).resolve("::ffff:127.0.0.1", x_forwarded=["192.0.2.1"]) == "192.0.2.1"
    assert ip_of("not an address") is None


def test_x_forwarded_for_splits_every_value() -> None:
    assert x_forwarded_for(["a, b", " c ,", ""]) == ["a", "b", "c"]


@pytest.mark.parametrize("trusted, expected", [((), "127.0.0.1"), (("127.0.0.1/32",), "192.0.2.5")])
def test_of_reads_a_twisted_request(trusted: tuple[str, ...], expected: str) -> None:
    request = DummyRequest([b""])
    request.client = IPv4Address("TCP", "127.0.0.1", 5555)
    request.requestHeaders.addRawHeader(b"X-Forwarded-For", b"192.0.2.5")
    assert ClientAddresses(trusted).of(request) == expected


@pytest.mark.parametrize("peer, trusted, headers, secure", [
    ("127.0.0.1", (), {b"X-Forwarded-Proto": b"https"}, False),
    ("192.0.2.9", ("127.0.0.1/32",), {b"X-Forwarded-Proto": b"https"}, False),
    ("127.0.0.1", ("127.0.0.1/32",), {b"X-Forwarded-Proto": b"https"}, True),
    ("127.0.0.1", ("127.0.0.1/32",), {b"X-Forwarded-Proto": b"https, http"}, False),
    ("127.0.0.1", ("127.0.0.1/32",), {b"X-Forwarded-Proto": b"HTTPS"}, True),
    ("127.0.0.1", ("127.0.0.1/32",), {b"Forwarded": b'for=192.0.2.5;proto="https"'}, True),
    ("127.0.0.1", ("127.0.0.1/32",), {b"Forwarded": b"for=192.0.2.5;proto=https, for=10.0.0.1",
                                      b"X-Forwarded-Proto": b"https"}, False),
    ("127.0.0.1", ("127.0.0.1/32",), {}, False),
], ids=["no proxies", "peer not trusted", "trusted", "nearest says http", "case", "Forwarded",
        "Forwarded wins, its last element", "says nothing"])
def test_is_secure_believes_only_trusted_proxies(peer: str, trusted: tuple[str, ...], headers: dict[bytes, bytes],
                                                 secure: bool) -> None:
    request = DummyRequest([b""])
    request.client = IPv4Address("TCP", peer, 5555)
    request.isSecure = lambda: False  # type: ignore[attr-defined] - a plain TCP connection
    for name, value in headers.items():
        request.requestHeaders.addRawHeader(name, value)
    assert ClientAddresses(trusted).is_secure(request) is secure


def test_answers_kept_are_bounded_and_only_for_proxies() -> None:
    from oseod.forwarded import KNOWN_ANSWERS, KNOWN_VALUE_LENGTH

    addresses = ClientAddresses(["127.0.0.1/32"])
    known = addresses._known  # noqa: SLF001 - what it keeps is the point
    assert addresses.resolve("192.0.2.7", x_forwarded=["198.51.100.1"]) == "192.0.2.7"
    assert not known  # not a proxy: nothing kept
    long_chain = ", ".join(["127.0.0.1"] * (KNOWN_VALUE_LENGTH // 10)) + ", 198.51.100.1"
    assert addresses.resolve("127.0.0.1", x_forwarded=[long_chain + ", 127.0.0.1"]) == "198.51.100.1"
    assert not known  # too long to keep
    for n in range(KNOWN_ANSWERS + 10):
        assert addresses.resolve("127.0.0.1", x_forwarded=[f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"]) == (
            f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        assert len(known) <= KNOWN_ANSWERS
    # A kept answer is the same answer.
    assert addresses.resolve("127.0.0.1", x_forwarded=["198.51.100.1"]) == "198.51.100.1"
    assert addresses.resolve("127.0.0.1", x_forwarded=["198.51.100.1"]) == "198.51.100.1"
