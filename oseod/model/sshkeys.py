"""A user's SSH public key (SFTP logins by key), as registered and shown,
and why one is refused (oseod.store.sshkeys parses and keeps them)."""

from __future__ import annotations

import attrs


class BadPublicKey(ValueError):
    """Not an OpenSSH public key line the server would accept."""


class TooManyKeys(Exception):
    pass


@attrs.frozen
class PublicKey:
    fingerprint: str  # "SHA256:..." as ssh-keygen -l shows it
    type: str
    comment: str
    line: str  # the OpenSSH line, "TYPE BASE64 [COMMENT]"
