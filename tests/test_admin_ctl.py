"""``oseoctl`` against a running daemon: the operator's commands end to end,
and the audit log naming the local user who ran them."""

from __future__ import annotations

import ftplib
import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.oseo_schema import requires_schemas
from tests.test_daemon import oseo_call

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    config = tmp_path / "oseod.toml"
    config.write_text('[orders]\nmoderation = "manual"\n')
    running = Daemon(tmp_path / "data", "--config", str(config))
    try:
        yield running.start(True)
    finally:
        running.cleanup()


@requires_schemas
def test_operator_commands(daemon: Daemon) -> None:
    from tests.test_http_ordering import submit

    assert daemon.ctl("user", "add", "dave", "--password-stdin", stdin="dave-password\n").returncode == 0
    orders = [oseo_call(daemon, "dave", submit(f"d{n}", reference=f"ref-{n}")).findtext(f"{{{OSEO}}}orderId")
              for n in range(3)]
    assert all(orders)

    waiting = daemon.ctl("moderation", "--limit", "2")
    assert waiting.returncode == 0, waiting.stderr
    assert [line.split()[0] for line in waiting.stdout.splitlines()[1:]] == orders[:2]
    assert "--after" in waiting.stderr
    listed = json.loads(daemon.ctl("order", "list", "--json", "--oldest-first", "--type", "PRODUCT_ORDER",
                                   "--collection", "urn:oseod:demo", "--user", "dave").stdout)
    assert [o["id"] for o in listed] == orders
    assert [o["id"] for o in json.loads(daemon.ctl("order", "list", "--json", "--reference", "ref-1").stdout)] == [
        orders[1]]
    bad = daemon.ctl("order", "list", "--type", "BULK")
    assert bad.returncode == 1 and "order type must be one of" in bad.stderr

    cancelled = daemon.ctl("order", "cancel", orders[0], "--reason", "sent twice")
    assert cancelled.returncode == 0 and "Cancelled by an operator: sent twice" in cancelled.stdout
    again = daemon.ctl("order", "cancel", orders[0])
    assert again.returncode == 1 and "already Cancelled" in again.stderr
    retry = daemon.ctl("order", "retry", orders[1])
    assert retry.returncode == 1 and "no failed item" in retry.stderr
    shown = json.loads(daemon.ctl("order", "show", orders[0], "--json").stdout)
    readable = daemon.ctl("order", "show", orders[0])
    assert readable.returncode == 0, readable.stderr
    assert re.match(rf"id: +{orders[0]}$", readable.stdout.splitlines()[0])
    assert re.search(r"^created_at: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", readable.stdout, re.M)
    assert re.search(r"^history:\n  - at: +\d{4}-", readable.stdout, re.M)
    assert f"by: {getpass.getuser()}" in re.sub(" +", " ", readable.stdout)
    for spelling in ("cancelled", "CANCELLED", "Cancelled"):
        found = daemon.ctl("order", "list", "--json", "--status", spelling)
        assert found.returncode == 0, found.stderr
        assert [o["id"] for o in json.loads(found.stdout)] == [orders[0]]
    dave = daemon.ctl("user", "show", "dave")
    assert re.search(r"^created_at: +\d{4}-\d\d-\d\dT", dave.stdout, re.M) and "admin:" in dave.stdout
    assert json.loads(daemon.ctl("user", "show", "dave", "--json").stdout)["name"] == "dave"
    assert shown["history"][-1]["by"] == getpass.getuser()

    assert daemon.ctl("user", "set", "dave", "--disable").returncode == 0
    assert "yes" in [line.split()[4] for line in daemon.ctl("user", "list").stdout.splitlines()[1:]]
    with daemon.ftp() as client, pytest.raises(ftplib.error_perm):
        client.login("dave", "dave-password")
    enabled = daemon.ctl("user", "set", "dave", "--enable")
    assert enabled.returncode == 0 and "disabled" not in enabled.stdout
    with daemon.ftp() as client:
        client.login("dave", "dave-password")
    nothing = daemon.ctl("user", "set", "dave")
    assert nothing.returncode == 2

    audit = daemon.ctl("audit", "--json", "--limit", "4")
    entries = json.loads(audit.stdout)
    assert [e["action"] for e in entries] == ["user.enable", "user.disable", "order.cancel", "user.add"]
    assert {e["actor"] for e in entries} == {getpass.getuser()} and {e["via"] for e in entries} == {"api"}
    assert "order.cancel" in daemon.ctl("audit").stdout
    assert daemon.ctl("stats").returncode == 0
    assert daemon.ctl("subscription", "list").returncode == 0


def test_a_record_reads_as_aligned_lines_with_utc_times() -> None:
    from oseod.admin.ctl import _readable

    record = {"id": "7", "owner": "dave", "created_at": 1764072000.25, "admin": False, "email": "",
              "items": [{"id": "a", "status": "Completed", "last_downloaded_at": None},
                        {"id": "bb", "status": "Failed", "last_downloaded_at": 1764075600}],
              "callback_failure": None, "outbox": [], "tags": ["x", "y"], "limits": {"max": 3, "rate": 0.5}}
    assert _readable(record) == [
        "id:                7",
        "owner:             dave",
        "created_at:        2025-11-25T12:00:00Z",
        "admin:             no",
        "email:             -",
        "items:",
        "  - id:                  a",
        "    status:              Completed",
        "    last_downloaded_at:  -",
        "  - id:                  bb",
        "    status:              Failed",
        "    last_downloaded_at:  2025-11-25T13:00:00Z",
        "callback_failure:  -",
        "outbox:            -",
        "tags:",
        "  - x",
        "  - y",
        "limits:",
        "  max:   3",
        "  rate:  0.5",
    ]
