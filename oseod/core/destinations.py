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
DEFAULT_PORTS = {"ftp": FTP_PORT, "ftps": FTP_PORT, "sftp": 22}  # ftps: explicit (AUTH TLS), as ftp
# An SSH host key pin: OpenSSH's SHA256 fingerprint (base64, padding optional).
_HOST_KEY_PIN = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
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
    """A push onlineAddress (ftp, ftps or sftp), parsed."""

    host: str  # a DNS name or an IP address (IPv6 without brackets)
    port: int
    path: str  # "": the directory the server logs the user in to
    user: str | None = None  # None: anonymous (ftp, ftps)
    password: str | None = attrs.field(default=None, repr=False)
    scheme: str = "ftp"  # the protocol: ftp, ftps or sftp
    # sftp: the server's host key as the client pinned it ("SHA256:" and the
    # unpadded base64 of its SHA-256, as ssh-keygen -l shows it); None: the
    # data directory's known_hosts decides.
    host_key: str | None = None

    def __str__(self) -> str:
        """The destination as an URL, for status texts and logs: never with
        the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        path = self.path if self.path.startswith("/") or not self.path else f"/{self.path}"
        return f"{self.scheme}://{user}{host}{port}{path}"


def delivery_address(spec: OrderSpec, protocol: str) -> OnlineAddress | None:
    """The onlineAddress a push over ``protocol`` goes to: the order's first
    one of that protocol."""
    return next((a for a in spec.online_addresses if a.protocol == protocol), None)


def push_destination(address: OnlineAddress) -> FtpDestination:
    """``address`` (protocol ftp, ftps or sftp) as a destination. Its
    serverAddress may be ``host``, ``host:port``, ``[IPv6]:port``, a bare
    IPv6 address, or an URL ``PROTOCOL://host[:port][/path]``; the URL's
    path is used when the address gives no ``path`` (the ``path`` element
    wins). An sftp address may pin the server's host key with a query
    ``?fingerprint=SHA256:...`` (after the URL or the host). BadDestination
    says what is wrong."""
    scheme = address.protocol
    if scheme not in DEFAULT_PORTS:
        raise BadDestination(f'cannot push over "{scheme}"')
    text = address.server_address.strip()
    url_path = ""
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != scheme:
            raise BadDestination(f'serverAddress "{text}" is not an {scheme}:// URL')
        if parts.username is not None or parts.password is not None:
            raise BadDestination("serverAddress must not hold credentials: give userName and userPassword")
        if parts.fragment:
            raise BadDestination(f'serverAddress "{text}" has a fragment, which {scheme} has no use for')
        try:
            host, port = parts.hostname or "", parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise BadDestination(f'serverAddress "{text}" has a bad port') from None
        url_path, query = unquote(parts.path), parts.query
    else:
        text, _, query = text.partition("?")
        host, port = _host_port(text, DEFAULT_PORTS[scheme])
    host_key = _host_key(query, scheme, text) if query else None
    if not host or not (_is_ip(host) or _HOST_NAME.match(host)):
        raise BadDestination(f'serverAddress "{text}" names no host')
    if not 0 < port < 65536:
        raise BadDestination(f'serverAddress "{text}" has a bad port')
    if scheme == "sftp" and not address.user_name:
        raise BadDestination("sftp has no anonymous login: give userName")
    path = address.path if address.path is not None else url_path
    for name, value in (("userName", address.user_name), ("userPassword", address.user_password), ("path", path)):
        if value and _CONTROL.search(value):
            raise BadDestination(f"{name} holds control characters, which {scheme} cannot carry")
    return FtpDestination(host.rstrip(".").lower() if not _is_ip(host) else host, port, path or "",
                          address.user_name, address.user_password, scheme, host_key)


ftp_destination = push_destination  # its name when ftp was the one protocol


def _host_key(query: str, scheme: str, text: str) -> str:
    """The host key pin of an sftp serverAddress's query."""
    name, _, value = query.partition("=")
    value = unquote(value)  # not unquote_plus: base64 has "+"
    if scheme != "sftp" or name != "fingerprint" or "&" in value:
        raise BadDestination(f'serverAddress "{text}" has a query, which {scheme} has no use for'
                             + (" (sftp takes ?fingerprint=SHA256:...)" if scheme == "sftp" else ""))
    if not _HOST_KEY_PIN.match(value):
        raise BadDestination(f'fingerprint "{value}" is not an SSH host key fingerprint "SHA256:" '
                             "and 43 base64 characters (ssh-keygen -lf KEY shows it)")
    return value.rstrip("=")


def network_refusal(ip: str, allowed: Sequence[str]) -> str | None:
    """Why the daemon must not connect to ``ip`` (None: it may). Public
    addresses may be reached, and those in the ``allowed`` networks (CIDRs).
    An IPv6 address that carries an IPv4 one (see :func:`embedded_ipv4`) is
    judged by the IPv4 address inside: ``::127.0.0.1`` and
    ``64:ff9b::7f00:1`` reach 127.0.0.1 as surely as ``127.0.0.1`` does."""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    if _allowed(address, allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inside = embedded_ipv4(address)
        for v4 in inside:
            if not _allowed(v4, allowed) and (kind := _restricted(v4)) is not None:
                return f"{ip} is a {kind} address ({v4} inside), which this service does not deliver to"
        if inside and address.teredo is None:
            return None  # a translation of a public IPv4 address: as public as it is
    kind = _restricted(address)
    return None if kind is None else f"{ip} is a {kind} address, which this service does not deliver to"


# RFC 6052: a NAT64 prefix of each length and where the IPv4 address sits
# after it (bits 64-71, the "u" octet, are always 0 and skipped).
_WELL_KNOWN_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the operator picks a longer prefix in it
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291's deprecated IPv4-compatible addresses


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses that a connection to ``address`` may end up at,
    through the translation or tunnelling its form names: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64
    (``64:ff9b::/96``; in the local-use ``64:ff9b:1::/48`` at every prefix
    length RFC 6052 allows, since the operator's choice is unknown), 6to4
    (``2002::/16``) and Teredo (``2001::/32``: server and client). Empty
    for a plain IPv6 address."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _COMPATIBLE:
        # :: and ::1 are IPv6's own unspecified and loopback addresses.
        return [] if int(address) <= 1 else [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _WELL_KNOWN_NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _LOCAL_NAT64:
        return [_rfc6052(address, length) for length in (48, 56, 64, 96)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _rfc6052(address: ipaddress.IPv6Address, length: int) -> ipaddress.IPv4Address:
    """The IPv4 address in ``address`` under a NAT64 prefix of ``length`` bits."""
    value = int(address)
    if length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    bits = ((value >> 64) << 56) | (value & ((1 << 56) - 1))  # 120 bits: the u octet taken out
    return ipaddress.IPv4Address((bits >> (120 - length - 32)) & 0xFFFFFFFF)


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: Sequence[str]) -> bool:
    return any(address in ipaddress.ip_network(network, strict=False) for network in allowed)


def _restricted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address ``address`` is; None when it is public."""
    if address.is_global and not address.is_multicast:
        return None
    return next((name for name, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                                         ("multicast", address.is_multicast), ("private", address.is_private))
                 if flag), "non-public")


def literal_refusal(host: str, allowed: Sequence[str]) -> str | None:
    """What Submit can tell without DNS: why ``host`` (an IP address or
    "localhost") must not be reached; None for other names (judged once
    resolved, when the push starts)."""
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        refusal = network_refusal("127.0.0.1", allowed)
        return None if refusal is None else f"{host} is a loopback address, which this service does not deliver to"
    return network_refusal(host, allowed) if _is_ip(host) else None


def _host_port(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BadDestination(f'serverAddress "{text}" is not [IPv6]:port')
        return host, _port(rest[1:], text) if rest else default
    if text.count(":") > 1:
        return text, default  # a bare IPv6 address
    host, sep, port = text.partition(":")
    return host, _port(port, text) if sep else default


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
