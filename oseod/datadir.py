"""The daemon's data directory: the files operators and ``oseoctl`` rely on.

    DATA_DIR/oseod.lock       held while a daemon runs on this directory
    DATA_DIR/admin.token      bearer token of the admin API (0600, made once)
    DATA_DIR/secret.key       key of the PasswordDigest secrets (0600, made once;
                              back it up with Redis: without it those secrets are lost)
    DATA_DIR/endpoints.json   where the daemon listens, written once listening:
                              {"http": URL, "ftp": URL, "admin": URL} (ftp and
                              admin only when they have listeners of their own)
    DATA_DIR/redis.sock       the embedded redis-server's socket
    DATA_DIR/redis/           the embedded redis-server's files (AOF)
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import secrets
import stat
from pathlib import Path
from typing import IO


SECRET_KEY_BYTES = 32


class DataDirBusy(Exception):
    pass


class BadSecretKey(Exception):
    """DATA_DIR/secret.key is unusable; the message says why, never what it holds."""


class DataDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()
        self._lock: IO[bytes] | None = None

    @property
    def token_file(self) -> Path:
        return self.path / "admin.token"

    @property
    def secret_key_file(self) -> Path:
        return self.path / "secret.key"

    @property
    def endpoints_file(self) -> Path:
        return self.path / "endpoints.json"

    def prepare(self) -> None:
        """Create the directory (private to the daemon's user) and take the
        lock, so two daemons never share one embedded Redis. The kernel drops
        the lock with the process, whatever kills it."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(self.path / "oseod.lock", "ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DataDirBusy(f"another oseod is running with data dir {self.path}") from None
        self._lock = lock
        # Left by a daemon that was killed: it points at a port nobody serves.
        self.remove_endpoints()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def admin_token(self) -> str:
        """The admin API token, created on first use with mode 0600."""
        try:
            return self.token_file.read_text().strip()
        except FileNotFoundError:
            pass
        token = secrets.token_urlsafe(32)
        # O_EXCL + 0600 at creation: the token is never readable by others,
        # not even for the instant between create and chmod.
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    def secret_key(self) -> bytes:
        """The key that encrypts the PasswordDigest secrets: 32 random bytes
        (base64 in the file), created on first use with mode 0600."""
        path = self.secret_key_file
        if not path.exists():
            key = secrets.token_bytes(SECRET_KEY_BYTES)
            # Written in full to a private temporary file, then linked into
            # place: link() fails if the name exists, so a crash never leaves a
            # half-written key and a concurrent creator never overwrites one.
            temporary = path.with_name(f".secret.key.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(base64.b64encode(key).decode("ascii") + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(temporary, path)
                    return key
                except FileExistsError:
                    pass  # somebody else made it first: use theirs
            finally:
                temporary.unlink(missing_ok=True)
        return self._read_secret_key(path)

    @staticmethod
    def _read_secret_key(path: Path) -> bytes:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise BadSecretKey(f"{path} is accessible to other users (mode {stat.S_IMODE(mode):04o}): "
                                   "chmod 600 it")
            text = f.read()
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != SECRET_KEY_BYTES:
            raise BadSecretKey(f"{path} is damaged: it must hold {SECRET_KEY_BYTES} bytes in base64 "
                               "(restore it from a backup; deleting it loses every PasswordDigest secret)")
        return key

    def write_endpoints(self, endpoints: dict[str, str]) -> None:
        temporary = self.endpoints_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(endpoints, indent=2) + "\n")
        temporary.replace(self.endpoints_file)

    def remove_endpoints(self) -> None:
        self.endpoints_file.unlink(missing_ok=True)
