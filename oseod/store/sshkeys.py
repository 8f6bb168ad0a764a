"""The SSH public keys of each user (SFTP logins by key), in Redis: one hash
per user, the key's ``SHA256:`` fingerprint to its OpenSSH line."""

from __future__ import annotations

from typing import Any

from twisted.conch.ssh.keys import BadKeyError, FingerprintFormats, Key

from ..model.sshkeys import BadPublicKey, PublicKey, TooManyKeys
from . import keys

# Key types a user may register: what the hardened SFTP server accepts.
ACCEPTED_TYPES = frozenset({"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                            "ssh-rsa"})
MIN_RSA_BITS = 2048
MAX_KEYS_PER_USER = 100
MAX_LINE = 16 * 1024


def fingerprint(key: Key) -> str:
    """``SHA256:`` and the unpadded base64 digest, as OpenSSH shows it."""
    return "SHA256:" + key.fingerprint(FingerprintFormats.SHA256_BASE64).rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """One OpenSSH public key line (``id_ed25519.pub``); BadPublicKey when it
    is none, holds a private key, or is a type or size the server refuses."""
    line = text.strip()
    if not line or len(line) > MAX_LINE or "\n" in line:
        raise BadPublicKey("give one OpenSSH public key line (the content of a .pub file)")
    fields = line.split(None, 2)
    if len(fields) < 2:
        raise BadPublicKey("not an OpenSSH public key line: expected TYPE BASE64 [COMMENT]")
    try:
        key = Key.fromString(" ".join(fields[:2]).encode("ascii"), type="public_openssh")
    except (BadKeyError, ValueError, UnicodeError, IndexError) as e:
        raise BadPublicKey(f"not an OpenSSH public key: {e}") from None
    if not key.isPublic():
        raise BadPublicKey("that is a private key: give the .pub file")
    kind = key.sshType().decode("ascii")
    if kind not in ACCEPTED_TYPES:
        raise BadPublicKey(f"key type {kind} is not accepted (use ssh-ed25519)")
    if kind == "ssh-rsa" and key.size() < MIN_RSA_BITS:
        raise BadPublicKey(f"RSA keys need at least {MIN_RSA_BITS} bits")
    comment = fields[2].strip() if len(fields) > 2 else ""
    return PublicKey(fingerprint(key), kind, comment, " ".join([fields[0], fields[1], comment]).strip())


class SshKeyStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def add(self, user: str, key: PublicKey) -> bool:
        """Register ``key`` for ``user``; False when it was already there."""
        if len(await self._redis.conn.hkeys(keys.ssh_keys(user))) >= MAX_KEYS_PER_USER:
            raise TooManyKeys(f"{user} has {MAX_KEYS_PER_USER} keys already")
        return bool(await self._redis.conn.hsetnx(keys.ssh_keys(user), key.fingerprint, key.line))

    async def list(self, user: str) -> list[PublicKey]:
        found = await self._redis.conn.hgetall(keys.ssh_keys(user)) or {}
        listed = []
        for line in found.values():
            try:
                listed.append(parse_public_key(str(line)))
            except BadPublicKey:
                continue  # a key made unacceptable since: never offered for a login
        return sorted(listed, key=lambda k: (k.comment, k.fingerprint))

    async def find(self, user: str, fingerprint: str) -> PublicKey | None:
        line = await self._redis.conn.hget(keys.ssh_keys(user), fingerprint)
        if not line:
            return None
        try:
            return parse_public_key(str(line))
        except BadPublicKey:
            return None

    async def delete(self, user: str, fingerprint: str) -> bool:
        return bool(await self._redis.conn.hdel(keys.ssh_keys(user), fingerprint))

    async def delete_all(self, user: str) -> None:
        await self._redis.conn.delete(keys.ssh_keys(user))
