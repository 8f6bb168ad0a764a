"""A name resolver under the test's control, as a client's DNS might be."""

from __future__ import annotations

from typing import Any

from twisted.internet import interfaces
from twisted.internet.address import IPv4Address, IPv6Address
from zope.interface import implementer


@implementer(interfaces.IHostnameResolver)
class FixedResolver:
    """Resolves every name to ``address`` (IPv4 or IPv6)."""

    def __init__(self, address: str) -> None:
        self._address = address

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0, addressTypes: Any = None,
                        transportSemantics: str = "TCP") -> Any:
        kind = IPv6Address if ":" in self._address else IPv4Address
        receiver.resolutionBegan(None)
        receiver.addressResolved(kind("TCP", self._address, portNumber))
        receiver.resolutionComplete()
