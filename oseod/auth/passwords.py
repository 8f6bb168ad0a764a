"""Password hashing with scrypt (stdlib), in a self-describing encoding.

``scrypt$N$r$p$<salt b64>$<hash b64>``: the parameters travel with each hash
so they can be raised later without invalidating stored accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# 2**14 costs ~16 MiB and tens of milliseconds: slow for a guesser, and the
# checker's cache makes it a once-per-client cost.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * 1024 * 1024)


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password.encode("utf-8"), salt, N, R, P, HASH_BYTES)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: bytes, encoded: str) -> bool:
    """True when ``password`` (UTF-8 bytes) matches ``encoded``; False for any
    malformed hash rather than an exception, so a damaged record locks the
    account instead of crashing a login."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
