"""A server endpoint that the daemon listens on, and the URL it ended up at."""

from __future__ import annotations

from typing import Any

from twisted.internet import endpoints
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import Logger

_SECURE = {"http": "https", "ftp": "ftps"}


class Listener:
    log = Logger()

    def __init__(self, scheme: str, description: str, factory: Any, reactor: IReactorCore, *,
                 url_scheme: str | None = None) -> None:
        """``scheme`` names the listener; its URL has ``url_scheme`` (the
        same by default)."""
        self.scheme = scheme
        # An ssl: endpoint speaks TLS from the first byte: https, and implicit
        # FTPS (ftps://, as curl names it).
        plain = url_scheme or scheme
        self.url_scheme = _SECURE.get(plain, plain) if description.startswith("ssl:") else plain
        self.description = description
        self._endpoint = endpoints.serverFromString(reactor, description)
        self._factory = factory
        self._port: IListeningPort | None = None

    async def start(self) -> None:
        try:
            self._port = await self._endpoint.listen(self._factory)
        except Exception as e:
            raise RuntimeError(f"cannot listen on {self.description!r}: {e}") from None
        self.log.info("{scheme} listening on {url}", scheme=self.scheme, url=self.url)

    async def stop(self) -> None:
        if self._port is not None:
            port, self._port = self._port, None
            stopped = port.stopListening()
            if stopped is not None:
                await stopped

    @property
    def url(self) -> str:
        """Where a client on this host reaches the listener (``tcp:0`` resolved)."""
        if self._port is None:
            raise RuntimeError(f"{self.scheme} listener is not listening")
        address = self._port.getHost()
        if isinstance(address, (IPv4Address, IPv6Address)):
            host = address.host
            if host in ("0.0.0.0", ""):
                host = "127.0.0.1"
            elif host == "::":
                host = "::1"
            if ":" in host:
                host = f"[{host}]"
            return f"{self.url_scheme}://{host}:{address.port}"
        return f"{self.url_scheme}+unix://{getattr(address, 'name', '')}"
