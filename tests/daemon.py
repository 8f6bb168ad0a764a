"""Run the real daemon as an operator would: ``twistd -n oseod`` in a child process."""

from __future__ import annotations

import ftplib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.polling import wait_for

BIN = Path(sys.executable).parent


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


class Daemon:
    def __init__(self, data_dir: Path, *extra: str, drain_seconds: float | None = 0.0,
                 twistd_options: tuple[str, ...] = ("--logfile=-",)) -> None:
        """``drain_seconds``: --drain-seconds (0 by default, so that each
        SIGTERM of a test stops at once; None: the config's drain);
        ``twistd_options``: twistd's own, before ``oseod`` (besides ``-n
        --pidfile=``)."""
        self.data_dir = data_dir
        self.twistd_options = twistd_options
        if drain_seconds is not None and "--drain-seconds" not in extra:
            extra = (*extra, "--drain-seconds", str(drain_seconds))
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-daemon.log"

    def start(self, wait: bool = True) -> Daemon:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", *self.twistd_options, "oseod", "--data-dir", str(self.data_dir),
             "--http", "tcp:0:interface=127.0.0.1", "--ftp", "tcp:0:interface=127.0.0.1", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent, start_new_session=True,
        )  # fmt: skip
        log.close()
        if wait:
            wait_for(self._ready, 60, f"daemon to write endpoints.json (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}: {self.log()}")
        if not (self.data_dir / "endpoints.json").exists():
            return False
        if not self.endpoints:  # no listener at all (a worker): its log says when it runs
            return "oseod is running" in self.log()
        try:
            return self.get("/health")[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def endpoints(self) -> dict[str, str]:
        return json.loads((self.data_dir / "endpoints.json").read_text())  # type: ignore[no-any-return]

    @property
    def http(self) -> str:
        """The HTTP listener, else the operators' one (a worker with [server] admin)."""
        endpoints = self.endpoints
        return endpoints.get("http") or endpoints["admin"]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def redis_pid(self) -> int | None:
        try:
            return int((self.data_dir / "redis" / "redis.pid").read_text())
        except (OSError, ValueError):
            return None

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.http + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def ftp(self) -> ftplib.FTP:
        """An ftplib client connected to the daemon's FTP listener (the caller logs in and closes it)."""
        where = urlsplit(self.endpoints["ftp"])
        client = ftplib.FTP()
        client.connect(where.hostname or "127.0.0.1", where.port or 21, timeout=30)
        return client

    def ctl(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "oseoctl"), "--data-dir", str(self.data_dir), *args], input=stdin,
                              capture_output=True, text=True, timeout=60)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill_group(self) -> None:
        """SIGKILL the daemon and everything it started, like systemd's KillMode=control-group."""
        assert self.process is not None
        victims = [self.process.pid, *children_of(self.process.pid)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(30)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        redis = self.redis_pid()
        if redis is not None and pid_alive(redis):
            os.kill(redis, signal.SIGKILL)
