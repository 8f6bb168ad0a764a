"""The SFTP server's host key: ed25519, made at first start in the data dir
(mode 0600, never readable by others, not even for an instant)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.conch.ssh.keys import Key

from ..store.sshkeys import fingerprint

FILE_NAME = "ssh_host_ed25519_key"


class BadHostKey(Exception):
    pass


def host_key(data_dir: Path) -> Key:
    """The host key in ``data_dir``, made there when there is none yet; its
    public half beside it (``.pub``) for operators to publish."""
    path = data_dir / FILE_NAME
    if not path.exists():
        key = Key(Ed25519PrivateKey.generate())
        temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key.toString("openssh"))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another start made one first: use it
        finally:
            temporary.unlink(missing_ok=True)
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BadHostKey(f"{path} is accessible to other users (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
        try:
            key = Key.fromString(f.read())
        except Exception as e:  # conch raises BadKeyError, ValueError...
            raise BadHostKey(f"{path} is not an OpenSSH private key: {e}") from None
    if key.isPublic() or key.sshType() != b"ssh-ed25519":
        raise BadHostKey(f"{path} must hold an ed25519 private key")
    public = path.with_name(FILE_NAME + ".pub")
    line = key.public().toString("openssh") + b"\n"
    if not public.exists() or public.read_bytes() != line:
        public.write_bytes(line)
    return key


def host_key_fingerprint(key: Key) -> str:
    return fingerprint(key.public())
