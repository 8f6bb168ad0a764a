"""The CAs a TLS client of the daemon trusts (LDAP, SMTP, Redis): the
certificates of a PEM file, or the system's when none is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import ssl

_MARKER = b"-----BEGIN CERTIFICATE-----"


def trust_root(ca_file: str, key: str) -> Any:
    """Every certificate in the PEM file ``ca_file`` as a trust root (the
    platform's CAs for ``""``); ValueError naming the config ``key`` when the
    file cannot be read or holds no certificate."""
    if not ca_file:
        return ssl.platformTrust()
    try:
        pem = Path(ca_file).read_bytes()
    except OSError as e:
        raise ValueError(f"{key}: cannot read {ca_file}: {e.strerror}") from None
    blocks = [_MARKER + block for block in pem.split(_MARKER)[1:]]
    if not blocks:
        raise ValueError(f"{key}: no PEM certificate in {ca_file}")
    try:
        return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(block) for block in blocks])
    except Exception as e:
        raise ValueError(f"{key}: {ca_file}: {e}") from None
