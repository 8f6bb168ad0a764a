"""Where onlineDataDelivery sends an item's results: the client's own server
(``deliveryInformation/onlineAddress``), and whether the daemon may reach it.

The client names any host it likes, and the daemon runs inside the
provider's network: it must not become the client's way into that network.
So a destination is refused unless its address is public, or inside one of
the networks the operator allows (``[notifications] allowed_networks``, the
list call-backs use too). Submit refuses what it can judge without DNS (an
IP address, "localhost"); the pusher judges the resolved address again
right before it connects, and connects to that address.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import attrs

from ..model.orders import OnlineAddress, OrderSpec

FTP_PORT = 21
# Host names as DNS has them (letters, digits, hyphens, dots): anything else
# in a serverAddress is a typo or an attempt at something.
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")
# What an FTP command line cannot carry: CR or LF would end the command and
# start another one of the client's choosing.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadDestination(ValueError):
    """An onlineAddress the daemon cannot or will not deliver to; the
    message says why, for the client."""


@attrs.frozen
class FtpDestination:
    """An ftp onlineAddress, parsed."""

    host: str  # a DNS name or an IP address (IPv6 without brackets)
    port: int
    path: str  # "": the directory the server logs the user in to
    user: str | None = None  # None: anonymous
    password: str | None = attrs.field(default=None, repr=False)

    def __str__(self) -> str:
        """The destination as an ftp:// URL, for status texts and logs:
        never with the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = "" if self.port == FTP_PORT else f":{self.port}"
        path = self.path if self.path.startswith("/") or not self.path else f"/{self.path}"
        return f"ftp://{user}{host}{port}{path}"


def delivery_address(spec: OrderSpec, protocol: str) -> OnlineAddress | None:
    """The onlineAddress a push over ``protocol`` goes to: the order's first
    one of that protocol."""
    return next((a for a in spec.online_addresses if a.protocol == protocol), None)


def ftp_destination(address: OnlineAddress) -> FtpDestination:
    """``address`` as an FTP destination. Its serverAddress may be
    ``host``, ``host:port``, ``[IPv6]:port``, a bare IPv6 address, or an URL
    ``ftp://host[:port][/path]``; the URL's path is used when the address
    gives no ``path`` (the ``path`` element wins). BadDestination says what
    is wrong."""
    text = address.server_address.strip()
    url_path = ""
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "ftp":
            raise BadDestination(f'serverAddress "{text}" is not an ftp:// URL')
        if parts.username is not None or parts.password is not None:
            raise BadDestination("serverAddress must not hold credentials: give userName and userPassword")
        if parts.query or parts.fragment:
            raise BadDestination(f'serverAddress "{text}" has a query or fragment, which FTP has no use for')
        try:
            host, port = parts.hostname or "", parts.port or FTP_PORT
        except ValueError:
            raise BadDestination(f'serverAddress "{text}" has a bad port') from None
        url_path = unquote(parts.path)
    else:
        host, port = _host_port(text)
    if not host or not (_is_ip(host) or _HOST_NAME.match(host)):
        raise BadDestination(f'serverAddress "{text}" names no host')
    if not 0 < port < 65536:
        raise BadDestination(f'serverAddress "{text}" has a bad port')
    path = address.path if address.path is not None else url_path
    for name, value in (("userName", address.user_name), ("userPassword", address.user_password), ("path", path)):
        if value and _CONTROL.search(value):
            raise BadDestination(f"{name} holds control characters, which FTP commands cannot carry")
    return FtpDestination(host.rstrip(".").lower() if not _is_ip(host) else host, port, path or "",
                          address.user_name, address.user_password)


def network_refusal(ip: str, allowed: Sequence[str]) -> str | None:
    """Why the daemon must not connect to ``ip`` (None: it may). Public
    addresses may be reached, and those in the ``allowed`` networks (CIDRs)."""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in ipaddress.ip_network(network, strict=False) for network in allowed):
        return None
    if address.is_global and not address.is_multicast:
        return None
    kind = next((name for name, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                                         ("multicast", address.is_multicast), ("private", address.is_private))
                 if flag), "non-public")
    return f"{ip} is a {kind} address, which this service does not deliver to"


def literal_refusal(host: str, allowed: Sequence[str]) -> str | None:
    """What Submit can tell without DNS: why ``host`` (an IP address or
    "localhost") must not be reached; None for other names (judged once
    resolved, when the push starts)."""
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        refusal = network_refusal("127.0.0.1", allowed)
        return None if refusal is None else f"{host} is a loopback address, which this service does not deliver to"
    return network_refusal(host, allowed) if _is_ip(host) else None


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BadDestination(f'serverAddress "{text}" is not [IPv6]:port')
        return host, _port(rest[1:], text) if rest else FTP_PORT
    if text.count(":") > 1:
        return text, FTP_PORT  # a bare IPv6 address
    host, sep, port = text.partition(":")
    return host, _port(port, text) if sep else FTP_PORT


def _port(text: str, whole: str) -> int:
    if not text.isdigit():
        raise BadDestination(f'serverAddress "{whole}" has a bad port')
    return int(text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
