"""TLS to Redis (``rediss://``), as managed services offer it.

The server's certificate and host name are verified (service-identity, through
Twisted's ``optionsForClientTLS``) against ``[redis] ca_file`` or the
system's CAs; ``[redis] certificate`` and ``private_key`` are shown to a server
that asks for a client certificate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import ssl

from ..trust import trust_root


class RedisTlsError(Exception):
    """A TLS file named in [redis] cannot be used; the message names the key."""


def client_tls_options(host: str, *, ca_file: str = "", certificate: str = "", private_key: str = "") -> Any:
    """The connection creator for a TLS connection to ``host``."""
    try:
        trust = trust_root(ca_file, "redis.ca_file")
    except ValueError as e:
        raise RedisTlsError(str(e)) from None
    client = None
    if certificate or private_key:
        if not (certificate and private_key):
            raise RedisTlsError("redis.certificate and redis.private_key go together")
        pem = _read("redis.certificate", certificate) + b"\n" + _read("redis.private_key", private_key)
        try:
            client = ssl.PrivateCertificate.loadPEM(pem)
        except Exception as e:
            raise RedisTlsError(f"redis.certificate / redis.private_key: {e}") from None
    if client is None:
        return ssl.optionsForClientTLS(host, trustRoot=trust)
    return ssl.optionsForClientTLS(host, trustRoot=trust, clientCertificate=client)


def _read(key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise RedisTlsError(f"{key}: cannot read {path}: {e.strerror}") from None
