"""Memory of a real daemon under hostile XML: bodies of the maximum size, sent
by nobody in particular (no credentials), all at once. Each must be refused
with a Sender fault after a bounded amount of parsing, the daemon's resident
memory must stay within bounds, and a user's requests must go on meanwhile."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from oseod.oseo.namespaces import OSEO, OWS, SOAP12
from tests.daemon import Daemon
from tests.oseo_schema import assert_valid, requires_schemas

pytestmark = pytest.mark.slow

CAP = 10 * 1024 * 1024  # [server] max_request_bytes by default
HOSTILE = 16
MAX_GROWTH_MB = 200


def hostile_body(kind: str) -> bytes:
    """A SOAP 1.2 Submit without credentials, just under the body cap."""
    head = f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><Submit xmlns="{OSEO}" service="OS" version="1.0.0">'.encode()
    tail = b"</Submit></s:Body></s:Envelope>"
    room = CAP - len(head) - len(tail) - 64
    if kind == "elements":  # 2.6 million empty elements
        inner = b"<a/>" * (room // 4)
    elif kind == "depth":
        inner = b"<a>" * (room // 7) + b"</a>" * (room // 7)
    elif kind == "attributes":
        inner = b"<a " + b" ".join(b"a%x=''" % n for n in range(room // 11)) + b"/>"
    else:  # one text node
        inner = b"<a>" + b"t" * (room - 7) + b"</a>"
    assert len(head) + len(inner) + len(tail) <= CAP
    return head + inner + tail


def vm(pid: int, field: str) -> int:
    """A /proc/PID/status field in MB (VmRSS: now; VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no {field} for {pid}")


def post(url: str, body: bytes, content_type: str = "application/soap+xml") -> tuple[int, bytes]:
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=120)
    try:
        connection.request("POST", "/oseo", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = Daemon(tmp_path / "data").start()
    try:
        yield started
    finally:
        started.cleanup()


@requires_schemas
def test_hostile_bodies_at_the_cap_keep_memory_bounded_and_users_served(daemon: Daemon) -> None:
    from tests.test_http_ordering import envelope, get_status, submit, token

    assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0

    def as_erin(payload: str) -> tuple[int, bytes]:
        return post(daemon.http, envelope(payload, token("erin", "erin-password")))

    code, answer = as_erin(submit("m1", reference="memory"))
    assert code == 200, answer
    order_id = assert_valid(answer).findtext(f"{{{OSEO}}}orderId")
    assert order_id
    code, answer = as_erin(get_status(order_id))
    assert code == 200, answer

    kinds = ["elements", "attributes", "elements", "depth", "elements", "text"]
    bodies = {kind: hostile_body(kind) for kind in set(kinds)}
    before = vm(daemon.pid, "VmRSS")
    Path(f"/proc/{daemon.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS: the peak from now on

    outstanding = HOSTILE
    lock = threading.Lock()
    served_meanwhile = 0

    def attack(n: int) -> tuple[int, bytes]:
        nonlocal outstanding
        try:
            return post(daemon.http, bodies[kinds[n % len(kinds)]])
        finally:
            with lock:
                outstanding -= 1

    with ThreadPoolExecutor(HOSTILE) as pool:
        answers = [pool.submit(attack, n) for n in range(HOSTILE)]
        # Another user's GetStatus, over and over while the bodies are sent and parsed.
        while outstanding:
            code, answer = as_erin(get_status(order_id))
            assert code == 200, answer
            assert_valid(answer)
            with lock:
                served_meanwhile += bool(outstanding)
        results = [future.result() for future in answers]

    growth = vm(daemon.pid, "VmHWM") - before
    assert served_meanwhile >= 1
    for n, (code, answer) in enumerate(results):
        assert code == 400, (kinds[n % len(kinds)], answer[:300])
        report = assert_valid(answer)
        exception = report.find(f".//{{{OWS}}}Exception")
        assert exception is not None and exception.get("exceptionCode") == "NoApplicableCode"
        assert report.findtext(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value") == "soap:Sender"
        text = exception.findtext(f"{{{OWS}}}ExceptionText") or ""
        assert "\n" not in text and "too big to be an OSEO request" in text, text
    print(f"RSS {before} MB before; peak {before + growth} MB during {HOSTILE} hostile bodies "
          f"({growth} MB more); {served_meanwhile} GetStatus answered meanwhile")
    assert growth < MAX_GROWTH_MB
    code, answer = as_erin(get_status(order_id))
    assert code == 200 and assert_valid(answer) is not None
