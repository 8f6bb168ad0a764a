"""Digest secrets: passwords kept encrypted, so PasswordDigest tokens can be checked.

A WS-Security PasswordDigest is SHA-1(nonce + created + password): the server
needs the password itself, which a salted scrypt hash cannot give back. So
when a password is set (and ``[auth] password_digest`` is on), it is also
stored encrypted with AES-256-GCM under a key that lives only in
``DATA_DIR/secret.key``, never in Redis. A Redis dump alone reveals no
password; Redis plus the key file does, which is the price of PasswordDigest.

Each secret is bound (as GCM associated data) to the account name and to the
scrypt hash stored beside it: a secret copied to another account, or left
behind by a password change that did not replace it, fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_SCHEME = "aesgcm1"
_IV_BYTES = 12


def _associated_data(name: str, password_hash: str) -> bytes:
    return b"oseod digest secret\0" + name.encode("utf-8") + b"\0" + password_hash.encode("utf-8")


class SecretBox:
    """Seals and unseals digest secrets with the server key.

    ``key`` is the key itself or a function that reads it (``DataDir.secret_key``),
    called once, at :meth:`load` or at first use: the daemon builds its objects
    before the data directory exists.
    """

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key_source = key
        self._aead: AESGCM | None = None

    def __repr__(self) -> str:
        return "<SecretBox>"  # never the key

    def load(self) -> None:
        """Read the key now (a start-up step, so a broken key file stops the start)."""
        self._cipher()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            key = self._key_source if isinstance(self._key_source, bytes) else self._key_source()
            if len(key) != KEY_BYTES:
                raise ValueError(f"the digest secret key must be {KEY_BYTES} bytes")
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, name: str, password_hash: str, password: str) -> str:
        """The digest secret to store for ``name`` beside ``password_hash``."""
        iv = os.urandom(_IV_BYTES)
        sealed = self._cipher().encrypt(iv, password.encode("utf-8"), _associated_data(name, password_hash))
        return f"{_SCHEME}${base64.b64encode(iv + sealed).decode('ascii')}"

    def unseal(self, name: str, password_hash: str, secret: str) -> bytes | None:
        """The password (UTF-8 bytes) sealed in ``secret``; None when it cannot be
        opened (another key, another account or hash, a damaged value)."""
        scheme, _, payload = secret.partition("$")
        if scheme != _SCHEME:
            return None
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(data) <= _IV_BYTES:
            return None
        try:
            return self._cipher().decrypt(data[:_IV_BYTES], data[_IV_BYTES:], _associated_data(name, password_hash))
        except InvalidTag:
            return None
