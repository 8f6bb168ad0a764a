"""The real daemon while its Redis goes away and comes back: clients get a
clear "try again later" at once (SOAP 503 Receiver fault, HTTP 503, FTP 421
and 451), nothing hangs, the engine pauses and resumes by itself, and the
log tells the outage once instead of a traceback per request."""

from __future__ import annotations

import base64
import ftplib
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12
from oseod.store.outage import UNAVAILABLE_TEXT
from tests.daemon import Daemon
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import wait_for
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.slow

PASSWORD = "erin-password"


def _post(daemon: Daemon, payload: str, soap: str = SOAP12) -> tuple[int, dict[str, str], bytes]:
    from tests.test_http_ordering import envelope, token

    content_type = "application/soap+xml" if soap == SOAP12 else "text/xml"
    headers = {"Content-Type": content_type} if soap == SOAP12 else {"Content-Type": content_type, "SOAPAction": '""'}
    return daemon.request("POST", "/oseo", envelope(payload, token("erin", PASSWORD), soap=soap), headers)


def _ok(daemon: Daemon, payload: str) -> etree._Element:
    status, _, body = _post(daemon, payload)
    assert status == 200, body
    return assert_valid(body)


def _assert_unavailable_fault(answer: tuple[int, dict[str, str], bytes], soap: str = SOAP12) -> None:
    status, headers, body = answer
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert_valid(body)
    document = etree.fromstring(body)
    if soap == SOAP12:
        assert document.findtext(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value") == "soap:Receiver"
    else:
        assert document.findtext(".//faultcode").endswith(":Server")
    exception = document.find(f".//{{{OWS}}}Exception")
    assert exception is not None and exception.get("exceptionCode") == "NoApplicableCode"
    assert exception.findtext(f"{{{OWS}}}ExceptionText") == UNAVAILABLE_TEXT


def _add_user(daemon: Daemon) -> bool:
    return daemon.ctl("user", "add", "erin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0


def _started(tmp_path: Path, redis_process: RedisProcess, daemons: list[Daemon]) -> Daemon:
    """A daemon on ``redis_process``, with the user erin."""
    daemon = Daemon(tmp_path / "data", "--redis", f"unix://{redis_process.socket}")
    daemons.append(daemon)
    daemon.start()
    assert _add_user(daemon)
    return daemon


@requires_schemas
def test_clients_are_told_to_come_back_while_redis_is_away(tmp_path: Path, redis_process: RedisProcess,
                                                           daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import envelope, get_status, submit, token

    daemon = _started(tmp_path, redis_process, daemons)
    order_id = _ok(daemon, submit("before")).findtext(f"{{{OSEO}}}orderId")
    assert order_id
    session = daemon.ftp()
    session.login("erin", PASSWORD)

    redis_process.kill()
    # Every operation, and the login before it: a Receiver fault, 503, Retry-After.
    _assert_unavailable_fault(_post(daemon, get_status(order_id)))
    _assert_unavailable_fault(_post(daemon, submit("during")))
    _assert_unavailable_fault(_post(daemon, get_status(order_id), soap=SOAP11), soap=SOAP11)
    basic = {"Authorization": "Basic " + base64.b64encode(f"erin:{PASSWORD}".encode()).decode()}
    status, headers, body = daemon.get(f"/results/{order_id}/before/x.tif", basic)
    assert (status, body) == (503, UNAVAILABLE_TEXT.encode() + b"\n") and int(headers["Retry-After"]) > 0
    status, _, _ = daemon.get("/ready")
    assert status == 503
    # A wrong password for a user whose record this daemon holds is still a
    # 401 (counted in its own view of failures only).
    status, _, body = daemon.request("POST", "/oseo", envelope(get_status(order_id), token("erin", "wrong")),
                                     {"Content-Type": "application/soap+xml"})
    assert status == 401 and assert_valid(body) is not None
    listing = daemon.ctl("user", "list")  # the admin API
    assert listing.returncode != 0 and UNAVAILABLE_TEXT in listing.stderr, listing
    status, headers, body = daemon.request("POST", "/console/login", b"user=frank&password=frank-password",
                                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 503 and UNAVAILABLE_TEXT.encode() in body and int(headers["Retry-After"]) > 0
    status, headers, body = daemon.get("/console/orders", {"Cookie": "oseod_console=" + "a" * 43})
    assert status == 503 and UNAVAILABLE_TEXT.encode() in body and int(headers["Retry-After"]) > 0
    # FTP: a command of a session logged in before, then a new login.
    with pytest.raises(ftplib.error_temp, match="^451 " + UNAVAILABLE_TEXT):
        session.nlst()
    session.close()
    client = daemon.ftp()  # (erin's password, checked a moment ago, is still known without Redis)
    with pytest.raises(ftplib.error_temp, match="^421 " + UNAVAILABLE_TEXT):
        client.login("frank", "frank-password")
    client.close()
    wait_for(lambda: "does not answer: requests get 503" in daemon.log(), 30, "the outage's warning")

    # Back on the same socket (empty: this test's Redis keeps nothing): the
    # daemon serves again without a restart, and processes a new order.
    redis_process.start()
    wait_for(lambda: _add_user(daemon), 30, "the admin API to work again")
    order_id = _ok(daemon, submit("after")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def completed() -> bool:
        answer = _ok(daemon, get_status(order_id))
        return answer.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Completed"

    wait_for(completed, 30, "the order submitted after the outage to complete")
    # The watch's next PING (every WATCH_SECONDS) says Redis is back: the
    # order may complete before it.
    wait_for(lambda: "answers again after" in daemon.log(), 30, "the watch's line that Redis is back")
    log = daemon.log()
    assert "Traceback" not in log and "Unhandled error" not in log, log
    assert log.count("does not answer: requests get 503") == 1, log
    assert log.count("answers again after") == 1, log
    assert "Scheduling retry" not in log and "Discarding dead connection" not in log, log


@requires_schemas
def test_a_frozen_redis_gets_an_answer_within_the_deadline(tmp_path: Path, redis_process: RedisProcess,
                                                           daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import get_status, submit

    daemon = _started(tmp_path, redis_process, daemons)
    order_id = _ok(daemon, submit("one")).findtext(f"{{{OSEO}}}orderId")
    assert order_id
    redis_process.freeze()
    try:
        _assert_unavailable_fault(_post(daemon, get_status(order_id)))
    finally:
        redis_process.thaw()
    wait_for(lambda: _post(daemon, get_status(order_id))[0] == 200, 30, "GetStatus to answer again")
    log = daemon.log()
    assert "Traceback" not in log and "Unhandled error" not in log, log
