"""The daemon's data directory: the files operators and ``oseoctl`` rely on.

    DATA_DIR/oseod.lock       held while a daemon runs on this directory
    DATA_DIR/admin.token      bearer token of the admin API (0600, made once)
    DATA_DIR/endpoints.json   where the daemon listens, written once listening
    DATA_DIR/redis.sock       the embedded redis-server's socket
    DATA_DIR/redis/           the embedded redis-server's files (AOF)
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import IO


class DataDirBusy(Exception):
    pass


class DataDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()
        self._lock: IO[bytes] | None = None

    @property
    def token_file(self) -> Path:
        return self.path / "admin.token"

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

    def write_endpoints(self, endpoints: dict[str, str]) -> None:
        temporary = self.endpoints_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(endpoints, indent=2) + "\n")
        temporary.replace(self.endpoints_file)

    def remove_endpoints(self) -> None:
        self.endpoints_file.unlink(missing_ok=True)
