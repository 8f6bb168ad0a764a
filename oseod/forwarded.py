"""Who the client is: the peer of the connection, or, when that peer is one
of ``[server] trusted_proxies``, the address the proxy says it forwards for.

Everything that counts or records clients by address (lock-outs, the audit
log, transfer logs, connection and rate limits) asks this one place, so that
behind a reverse proxy they all see the real client, and without one nobody
can pose as another address by sending the headers himself.

A chain of proxies appends to ``X-Forwarded-For`` (and ``Forwarded``, RFC
7239), each hop the address it received the request from. The list is read
from its right end: each entry added by a trusted proxy is believed, and the
first address that is not a trusted proxy is the client. An entry that is no
IP address (``unknown``, an obfuscated ``_hidden`` name, garbage) ends the
walk at the last hop that was believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The answers ClientAddresses keeps, and the longest header values it keeps them for.
KNOWN_ANSWERS = 4096
KNOWN_VALUE_LENGTH = 256


def ip_of(text: str) -> IPAddress | None:
    """``text`` as an IP address, IPv4-mapped IPv6 as the IPv4 inside; None
    when it is none (a unix socket, a name)."""
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_node(node: str) -> str:
    """The address of one RFC 7239 node: ``"[2001:db8::1]:4711"``,
    ``192.0.2.1:80`` or ``192.0.2.1``."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node


def forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` nodes of ``Forwarded`` header values, in order."""
    nodes = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, node = pair.partition("=")
                if name.strip().lower() == "for":
                    nodes.append(_forwarded_node(node))
    return nodes


def forwarded_proto(values: Iterable[str]) -> str:
    """The ``proto=`` of the last element of ``Forwarded`` header values:
    what the nearest proxy says its client used ("" when it says nothing)."""
    elements = [element for value in values for element in value.split(",") if element.strip()]
    for pair in elements[-1].split(";") if elements else ():
        name, _, proto = pair.partition("=")
        if name.strip().lower() == "proto":
            return proto.strip().strip('"').lower()
    return ""


def x_forwarded_for(values: Iterable[str]) -> list[str]:
    """The entries of ``X-Forwarded-For`` header values, in order."""
    return [entry.strip() for value in values for entry in value.split(",") if entry.strip()]


class ClientAddresses:
    """The client address of requests, believing ``trusted_proxies`` (CIDRs)
    and nobody else."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self._trusted = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies)
        # Behind a proxy the same few header values come again and again, and
        # parsing addresses costs tens of microseconds a request: answers for
        # short values are kept (a bounded number, and only from proxies).
        self._known: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}

    def trusts(self, host: str) -> bool:
        address = ip_of(host)
        return address is not None and self._trusts(address)

    def _trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, peer: str, forwarded: Sequence[str] = (), x_forwarded: Sequence[str] = ()) -> str:
        """The client behind ``peer``, given the request's ``Forwarded`` and
        ``X-Forwarded-For`` header values (``Forwarded`` wins when both are
        there: it is the standard, and a proxy that writes it means it)."""
        key = (peer, tuple(forwarded), tuple(x_forwarded))
        client = self._known.get(key)
        if client is not None:
            return client
        address = ip_of(peer)
        if address is None or not self._trusted or not self._trusts(address):
            return str(address or peer)
        client = self._behind(str(address), forwarded, x_forwarded)
        if sum(map(len, forwarded)) + sum(map(len, x_forwarded)) <= KNOWN_VALUE_LENGTH:
            if len(self._known) >= KNOWN_ANSWERS:
                self._known.clear()
            self._known[key] = client
        return client

    def _behind(self, proxy: str, forwarded: Sequence[str], x_forwarded: Sequence[str]) -> str:
        """The client behind trusted ``proxy``: the hops it and the proxies
        before it added, read from the right."""
        client = proxy
        hops = forwarded_for(forwarded) if forwarded else x_forwarded_for(x_forwarded)
        for hop in reversed(hops):
            address = ip_of(hop)
            if address is None:
                break
            client = str(address)
            if not self._trusts(address):
                break
        return client

    @staticmethod
    def _peer(request: Any) -> str:
        return str(getattr(request.getClientAddress(), "host", "") or "local")

    def is_secure(self, request: Any) -> bool:
        """Whether the client of a twisted.web request reached us over TLS:
        this connection, or what a trusted proxy says (the last entry of
        ``X-Forwarded-Proto``, or ``Forwarded``'s ``proto=``). For the
        console cookie's ``Secure`` and the URLs the daemon builds."""
        if request.isSecure():
            return True
        if not self._trusted or not self.trusts(self._peer(request)):
            return False
        headers = request.requestHeaders
        forwarded = headers.getRawHeaders("forwarded", [])
        if forwarded:
            return forwarded_proto(forwarded) == "https"
        protos = x_forwarded_for(headers.getRawHeaders("x-forwarded-proto", []))
        return bool(protos) and protos[-1].lower() == "https"

    def of(self, request: Any) -> str:
        """The client address of a twisted.web request (``"local"`` for a
        connection that has no IP address, such as a unix socket)."""
        peer = self._peer(request)
        if not self._trusted:
            return peer
        headers = request.requestHeaders
        return self.resolve(peer, headers.getRawHeaders("forwarded", []),
                            headers.getRawHeaders("x-forwarded-for", []))
