"""The connection limits against a real daemon (``twistd -n oseod``): one
address (127.0.0.1) holds thousands of idle and trickling HTTP and FTP
connections, opening new ones as the daemon closes them, while a second
address (127.0.0.2, loopback too) logs in over FTP and gets GetStatus
answers. The deadlines are short here (5 s) so that the daemon also cuts
off the connections it let in, and the flood opens new ones. Every call of the second client has a client timeout, so a starved
daemon fails the test; the latencies are printed (run with -s), not
asserted (no timing assertions)."""

from __future__ import annotations

import ftplib
import http.client
import os
import re
import resource
import selectors
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.polling import wait_for
from tests.oseo_schema import assert_valid, requires_schemas

pytestmark = pytest.mark.slow

ATTACKER, CLIENT = "127.0.0.1", "127.0.0.2"
CONNECTIONS = 3000  # the attacker's, a third each: idle HTTP, trickling HTTP, idle FTP
REOPEN_PER_SECOND = 300
CLIENT_TIMEOUT = 5.0  # a call of the second client that takes longer fails the test
PER_ADDRESS = 64
DEADLINE = 5  # request_timeout and ftp_login_timeout
ROUNDS = 12  # of the second client's calls, a second of the flood's churn apart


class Flood(threading.Thread):
    """Holds ``CONNECTIONS`` connections to the daemon from 127.0.0.1: a
    trickling one sends a header byte every second; one the daemon closes
    is opened again (at most ``REOPEN_PER_SECOND``)."""

    def __init__(self, http: tuple[str, int], ftp: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.targets = {"idle": http, "trickle": http, "ftp": ftp}
        self.selector = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self.opened = 0
        self.closed_by_server = 0
        self.refusals: dict[bytes, int] = {}  # by the last line of the daemon's answer
        self.peak_open = 0
        self.error: BaseException | None = None

    def _open(self, kind: str) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(self.targets[kind])
        self.selector.register(s, selectors.EVENT_READ, [kind, b"", False])
        self.opened += 1

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.error = e

    def _run(self) -> None:
        kinds = ["idle", "trickle", "ftp"]
        wanted = 0
        last_trickle = time.monotonic()
        started = last_trickle
        while not self.stopping.is_set():
            now = time.monotonic()
            open_now = len(self.selector.get_map())
            self.peak_open = max(self.peak_open, open_now)
            # Open what is missing, paced.
            budget = int((now - started) * REOPEN_PER_SECOND) + CONNECTIONS - self.opened
            for _ in range(max(0, min(CONNECTIONS - open_now, budget))):
                self._open(kinds[wanted % 3])
                wanted += 1
            if now - last_trickle >= 1.0:
                last_trickle = now
                for key in list(self.selector.get_map().values()):
                    kind, _, started_request = key.data
                    if kind == "trickle":
                        try:
                            key.fileobj.send(b"X-a: b\r\n" if started_request else b"GET / HTTP/1.1\r\n")  # type: ignore[union-attr]
                            key.data[2] = True
                        except OSError:
                            pass  # seen as closed below
            for key, _ in self.selector.select(0.05):
                sock: Any = key.fileobj
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    key.data[1] += data
                    continue
                # What the daemon said last: HTTP's status line, FTP's line after its banner.
                lines = key.data[1].split(b"\r\n")
                first = lines[1] if lines[0].startswith(b"220 ") and len(lines) > 1 and lines[1] else lines[0]
                if first:
                    self.refusals[first] = self.refusals.get(first, 0) + 1
                self.closed_by_server += 1
                self.selector.unregister(sock)
                sock.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


def timed(latencies: dict[str, list[float]], what: str, call: Any) -> Any:
    started = time.monotonic()
    result = call()
    latencies.setdefault(what, []).append(time.monotonic() - started)
    return result


def oseo(address: tuple[str, int], body: bytes) -> Any:
    """POST /oseo from 127.0.0.2 on a new connection; the answer must be a schema-valid 200."""
    connection = http.client.HTTPConnection(*address, timeout=CLIENT_TIMEOUT, source_address=(CLIENT, 0))
    try:
        connection.request("POST", "/oseo", body, {"Content-Type": "application/soap+xml"})
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, data
        return assert_valid(data)
    finally:
        connection.close()


def ftp_session(address: tuple[str, int]) -> str:
    client = ftplib.FTP(timeout=CLIENT_TIMEOUT, source_address=(CLIENT, 0))
    try:
        client.connect(*address)
        client.login("erin", "erin-password")
        names = client.nlst()  # a data connection from 127.0.0.2 too
        assert isinstance(names, list)
        return client.pwd()
    finally:
        client.close()


def daemon_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@requires_schemas
def test_one_address_flooding_does_not_starve_another(tmp_path: Path) -> None:
    from tests.test_http_ordering import envelope, get_status, submit, token

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CONNECTIONS + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNECTIONS * 2), hard))
    config = tmp_path / "short.toml"
    config.write_text(f"[server]\nrequest_timeout = {DEADLINE}\nftp_login_timeout = {DEADLINE}\n")
    daemon = Daemon(tmp_path / "data", "--config", str(config))
    try:
        daemon.start()
        assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0
        where_http, where_ftp = urlsplit(daemon.endpoints["http"]), urlsplit(daemon.endpoints["ftp"])
        http_address = (where_http.hostname or "", where_http.port or 0)
        ftp_address = (where_ftp.hostname or "", where_ftp.port or 0)

        def call(payload: str) -> Any:
            return oseo(http_address, envelope(payload, token("erin", "erin-password")))

        order_id = call(submit("c1", reference="flooded")).findtext(f"{{{OSEO}}}orderId")
        assert order_id
        files_before = daemon_files(daemon.pid)

        flood = Flood(http_address, ftp_address)
        flood.start()
        latencies: dict[str, list[float]] = {}
        try:
            wait_for(lambda: flood.opened >= CONNECTIONS, 60, "the flood to open its connections")
            wait_for(lambda: flood.refusals, 30, "the daemon to refuse the flood's surplus")
            files_during = 0
            for _ in range(ROUNDS):
                # A round a second of the flood's churn apart: it reopens what the
                # daemon refuses or closes, at most REOPEN_PER_SECOND.
                reopened = flood.opened
                wait_for(lambda: flood.opened >= reopened + REOPEN_PER_SECOND, 30,
                         "the flood to reopen what the daemon closed")
                files_during = max(files_during, daemon_files(daemon.pid))
                assert timed(latencies, "ftp login+nlst", lambda: ftp_session(ftp_address)) == "/"
                for _ in range(3):
                    answer = timed(latencies, "GetStatus", lambda: call(get_status(order_id)))
                    assert answer.findtext(f".//{{{OSEO}}}orderId") == order_id
        finally:
            flood.stop()
        assert flood.error is None, flood.error
    finally:
        daemon.cleanup()

    log = daemon.log()
    report = {what: (f"n={len(v)} median={statistics.median(v) * 1000:.0f} ms max={max(v) * 1000:.0f} ms")
              for what, v in latencies.items()}
    print(f"\nflood: {flood.opened} connections opened from {ATTACKER}, peak {flood.peak_open} held at once, "
          f"{flood.closed_by_server} closed by the daemon, first lines {flood.refusals}; "
          f"daemon files {files_before} before, at most {files_during} during; {CLIENT}: {report}")
    # The flood was met by refusals, not by the daemon holding every connection.
    assert flood.peak_open >= CONNECTIONS * 9 // 10
    refused = sum(n for line, n in flood.refusals.items() if line.startswith((b"HTTP/1.1 429", b"421 too many")))
    assert refused > CONNECTIONS // 2
    # The connections let in were cut off at their deadlines.
    assert flood.refusals.get(b"HTTP/1.1 408 Request Timeout", 0) > 0
    assert flood.refusals.get(f"421 Not logged in within {DEADLINE} seconds: closing".encode(), 0) > 0
    assert files_during - files_before < 2 * PER_ADDRESS + 64 + 100
    # One warning per listener and episode, not one per refused connection.
    assert 2 <= log.count("connections: refusing more from it") < 20
    assert "Traceback" not in log


def test_past_the_budget_new_connections_are_refused_and_logged_once(tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[server]\nmax_connections = 100\n")
    daemon = Daemon(tmp_path / "data", "--config", str(config))
    held: list[socket.socket] = []
    try:
        daemon.start()
        where_http, where_ftp = urlsplit(daemon.endpoints["http"]), urlsplit(daemon.endpoints["ftp"])
        # 100 connections from three addresses, none over its own limit, fill the budget.
        for i in range(100):
            target = (where_http.hostname, where_http.port) if i % 2 else (where_ftp.hostname, where_ftp.port)
            s = socket.create_connection(target, timeout=CLIENT_TIMEOUT, source_address=(f"127.0.0.{3 + i % 3}", 0))
            held.append(s)
        for s in held[::2]:  # FTP's banners: each was let in
            assert s.recv(100).startswith(b"220 ")

        def refused(target: Any, source: str) -> bytes:
            with socket.create_connection(target, timeout=CLIENT_TIMEOUT, source_address=(source, 0)) as s:
                answer = b""
                while chunk := s.recv(1000):
                    answer += chunk
                return answer

        for n in range(20):
            answer = refused((where_ftp.hostname, where_ftp.port), "127.0.0.6")
            assert answer == b"421 server busy: too many connections, try again later\r\n"
        answer = refused((where_http.hostname, where_http.port), CLIENT)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert answer.endswith(b"\r\n\r\nserver busy: too many connections, try again later\n")
        for s in held[:20]:
            s.close()
        held = held[20:]
        status, _, _ = wait_for_health(daemon)
        assert status == 200
    finally:
        for s in held:
            s.close()
        daemon.cleanup()
    log = daemon.log()
    assert log.count("All 100 connections are in use") == 1
    again = re.findall(r"Connections below 100 again: (\d+) refused meanwhile", log)
    assert len(again) == 1 and int(again[0]) >= 21  # (and /health's while the closes were on their way)


def wait_for_health(daemon: Daemon) -> tuple[int, dict[str, str], bytes]:
    """GET /health, once the daemon has seen connections close (a 503 from the budget meanwhile)."""
    answers: list[tuple[int, dict[str, str], bytes]] = []

    def healthy() -> bool:
        try:
            answers.append(daemon.get("/health"))
        except OSError:
            return False
        return answers[-1][0] == 200

    wait_for(healthy, 30, "the daemon to have room again")
    return answers[-1]
