"""SIGTERM on a real ``twistd -n oseod``: not ready at once, still serving
for [server] drain_seconds, then the drain's steps, and exit status 0."""

from __future__ import annotations

import ftplib
import http.client
import signal
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.oseo_schema import requires_schemas
from tests.polling import wait_for
from tests.test_daemon import oseo_call

pytestmark = pytest.mark.slow


@requires_schemas
def test_sigterm_drains_then_exits_0(tmp_path: Path, daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import get_status, submit

    config = tmp_path / "drain.toml"
    config.write_text("[server]\ndrain_seconds = 2\n")
    daemon = Daemon(tmp_path / "data", "--config", str(config), drain_seconds=None)
    daemons.append(daemon)
    daemon.start()
    assert daemon.ctl("user", "add", "dora", "--password-stdin", stdin="dora-password\n").returncode == 0
    order_id = oseo_call(daemon, "dora", submit("d1", reference="drain")).findtext(f"{{{OSEO}}}orderId")
    assert order_id
    status, headers, body = daemon.get("/ready")
    assert status == 200 and body == b"ready\n"

    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    # Not ready at once; alive and serving clients for the drain's 2 s.
    status, headers, body = daemon.get("/ready")
    assert status == 503 and body == b"not ready: the daemon is shutting down (draining)\n"
    assert headers["Retry-After"] == "2"
    assert daemon.get("/health")[0] == 200
    answer = oseo_call(daemon, "dora", get_status(order_id))  # a 200, schema-valid
    assert answer.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")

    assert daemon.process.wait(60) == 0
    log = daemon.log()
    steps = ["drain: not ready (/ready answers 503); still serving for 2.0 s", "drain: stopped http listener",
             "drain: stopped requests and transfers in flight", "drain: stopped periodic tasks",
             "drain: stopped order processing", "drain: stopped jobs in hand", "drain: stopped redis",
             "drain: done, oseod stops"]
    positions = [log.find(step) for step in steps]
    assert -1 not in positions, log
    assert positions == sorted(positions), log
    assert "Traceback" not in log


@requires_schemas
def test_a_draining_daemon_hands_its_job_to_another(tmp_path: Path, daemons: list[Daemon], redis: Any) -> None:
    """Two daemons on one Redis: the one making an order's item is stopped;
    the other makes it, without waiting for a lease to run out."""
    from tests.test_http_ordering import get_status, submit

    config = tmp_path / "shared.toml"
    # The shipped example, on the test's Redis, its demo items 2 s long, and
    # a lease long enough that only a hand-back explains a quick takeover.
    example = (Path(__file__).parent.parent / "etc" / "oseod.toml").read_text()
    for old, new in (('redis = ""', f'redis = "unix://{redis.address.path}?db={redis.address.db}"'),
                     ("lease_seconds = 60.0", "lease_seconds = 600.0"), ("delay = 0.0", "delay = 2.0")):
        assert example.count(old) == 1
        example = example.replace(old, new)
    config.write_text(example)
    first = Daemon(tmp_path / "first", "--config", str(config), "--ftp", "")
    daemons.append(first)
    first.start()
    assert first.ctl("user", "add", "hank", "--password-stdin", stdin="hank-password\n").returncode == 0
    order_id = oseo_call(first, "hank", submit("h1", reference="handed")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def status_on(daemon: Daemon) -> str | None:
        answer = oseo_call(daemon, "hank", get_status(order_id))
        return answer.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")  # type: ignore[no-any-return]

    wait_for(lambda: status_on(first) == "InProduction", 30, "the first daemon to start the item")
    second = Daemon(tmp_path / "second", "--config", str(config), "--ftp", "")
    daemons.append(second)
    second.start()
    assert first.stop() == 0
    assert "drain: 1 job(s) handed back to the queue for another daemon" in first.log()
    wait_for(lambda: status_on(second) == "Completed", 30, "the second daemon to make the item")


def test_a_second_sigterm_ends_the_drain_at_once(tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path / "data", drain_seconds=600)
    daemons.append(daemon)
    daemon.start()
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "still serving for 600.0 s" in daemon.log(), 30, "the drain to begin")
    assert daemon.get("/ready")[0] == 503
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0  # not 600 s later
    log = daemon.log()
    assert "drain: SIGTERM again, serving no longer" in log and "drain: done, oseod stops" in log
    assert "Traceback" not in log


def test_draining_clients_are_sent_elsewhere(tmp_path: Path, daemons: list[Daemon]) -> None:
    """While a daemon drains, a kept-alive HTTP connection's next answer
    closes it (Connection: close), a new FTP login gets 421, a logged-in FTP
    session goes on; when the listeners stop, the idle session gets 421."""
    daemon = Daemon(tmp_path / "data", drain_seconds=600)
    daemons.append(daemon)
    daemon.start()
    assert daemon.ctl("user", "add", "kate", "--password-stdin", stdin="kate-password\n").returncode == 0
    where = urlsplit(daemon.http)
    web = socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=30)
    ftp = daemon.ftp()
    try:
        answer = exchange(web, "/health")
        assert answer.status == 200 and answer.getheader("Connection") is None
        ftp.login("kate", "kate-password")

        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "still serving for 600.0 s" in daemon.log(), 30, "the drain to begin")
        answer = exchange(web, "/health")  # on the same connection
        assert answer.status == 200 and answer.getheader("Connection") == "close"
        assert web.recv(1) == b""  # then closed by the daemon

        newcomer = ftplib.FTP()
        with pytest.raises(ftplib.error_temp, match=r"^421 Service not available, closing control connection"):
            newcomer.connect(where.hostname or "127.0.0.1", urlsplit(daemon.endpoints["ftp"]).port or 21, timeout=30)
        newcomer.close()
        assert ftp.voidcmd("NOOP").startswith("200")  # logged in before: served on

        daemon.process.send_signal(signal.SIGTERM)  # ends the serving period: the listeners stop
        with pytest.raises(ftplib.error_temp, match=r"^421 Service not available, closing control connection"):
            ftp.getresp()
        assert daemon.process.wait(60) == 0
        assert "Traceback" not in daemon.log()
    finally:
        web.close()
        ftp.close()


def exchange(connection: socket.socket, path: str) -> http.client.HTTPResponse:
    """GET ``path`` on a kept-alive connection; the answer, read whole."""
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: oseod\r\n\r\n".encode())
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    answer.read()
    return answer


@requires_schemas
def test_an_ftp_transfer_in_flight_finishes_before_the_daemon_stops(tmp_path: Path, daemons: list[Daemon]) -> None:
    from oseod.jobs.dummy import content
    from tests.test_http_ordering import describe, submit

    size = 32 * 1024 * 1024  # far more than the loopback's socket buffers hold
    example = (Path(__file__).parent.parent / "etc" / "oseod.toml").read_text()
    old = "processor_options = { size = 1024,"
    assert example.count(old) == 1
    config = tmp_path / "big.toml"
    config.write_text(example.replace(old, f"processor_options = {{ size = {size},"))
    daemon = Daemon(tmp_path / "data", "--config", str(config))  # --drain-seconds 0: listeners stop at once
    daemons.append(daemon)
    daemon.start()
    assert daemon.ctl("user", "add", "lena", "--password-stdin", stdin="lena-password\n").returncode == 0
    order_id = oseo_call(daemon, "lena", submit("l1")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def ftp_urls() -> list[str]:
        return [u.text or "" for u in oseo_call(daemon, "lena", describe(order_id)).iter(f"{{{OSEO}}}URL")
                if (u.text or "").startswith("ftp://")]

    path = urlsplit(wait_for(lambda: ftp_urls() and ftp_urls()[0], 60, "the result")).path
    client = daemon.ftp()
    try:
        client.login("lena", "lena-password")
        data, _ = client.ntransfercmd(f"RETR {path}")
        with data:
            received = [data.recv(65536)]
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGTERM)
            wait_for(lambda: "drain: finishing 1 request(s) or transfer(s) in flight" in daemon.log(), 30,
                     "the listeners to stop with the transfer going on")
            while chunk := data.recv(1 << 20):
                received.append(chunk)
        assert b"".join(received) == content("l1", size)
        assert client.voidresp().startswith("226")
        # Idle once its transfer is done: told why, and closed.
        with pytest.raises(ftplib.error_temp, match=r"^421 Service not available, closing control connection"):
            client.getresp()
    finally:
        client.close()
    assert daemon.process.wait(60) == 0
    assert "Traceback" not in daemon.log()
