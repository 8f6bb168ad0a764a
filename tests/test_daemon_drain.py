"""SIGTERM on a real ``twistd -n oseod``: not ready at once, still serving
for [server] drain_seconds, then the drain's steps, and exit status 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.oseo_schema import requires_schemas
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
