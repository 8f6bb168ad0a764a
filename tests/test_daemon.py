"""Black-box tests of ``twistd -n oseod``, through the files and commands an operator uses."""

from __future__ import annotations

import io
import ftplib
import json
import signal
import stat
import subprocess
from typing import Any
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from oseod.oseo.namespaces import OSEO, OWS
from tests.daemon import BIN, Daemon, children_of, pid_alive
from tests.polling import wait_for
from tests.oseo_schema import assert_valid, requires_schemas

pytestmark = pytest.mark.slow


def oseo_call(daemon: Daemon, user: str, payload: str, *, digest: bool = False) -> Any:
    """POST ``payload`` to the daemon's /oseo as ``user`` (password USER-password),
    in a SOAP 1.2 envelope; the answer must be a 200, schema-valid."""
    from tests.test_http_ordering import envelope, token

    status, _, body = daemon.request("POST", "/oseo", envelope(payload, token(user, f"{user}-password", digest=digest)),
                                     {"Content-Type": "application/soap+xml"})
    assert status == 200, body
    return assert_valid(body)


def _daemon(daemons: list[Daemon], data_dir: Path, *extra: str, wait: bool = True) -> Daemon:
    daemon = Daemon(data_dir, *extra)
    daemons.append(daemon)
    return daemon.start(wait)


@requires_schemas
def test_demo_daemon_end_to_end(tmp_path: Path, daemons: list[Daemon]) -> None:
    data = tmp_path / "data"
    daemon = _daemon(daemons, data)

    endpoints = daemon.endpoints
    assert set(endpoints) == {"http", "ftp"}
    assert urlsplit(endpoints["http"]).hostname == "127.0.0.1" and urlsplit(endpoints["http"]).port
    assert urlsplit(endpoints["ftp"]).scheme == "ftp"
    token = data / "admin.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) >= 32

    status, headers, body = daemon.get("/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok" and health["redis"]["reachable"] is True

    status, headers, body = daemon.get("/oseo?service=OS&request=GetCapabilities")
    assert status == 200 and headers["Content-Type"].startswith("application/xml")
    capabilities = assert_valid(body)
    assert capabilities.tag == f"{{{OSEO}}}Capabilities"
    assert capabilities.findtext(f".//{{{OSEO}}}SupportedCollection/{{{OSEO}}}collectionId") == "urn:oseod:demo"
    get_status = capabilities.find(f".//{{{OSEO}}}GetStatusCapabilities")
    assert get_status is not None
    assert {get_status.get(a) for a in ("orderSearch", "orderRetrieve", "full")} == {"true"}
    operations = {op.get("name"): op for op in capabilities.iter(f"{{{OWS}}}Operation")}
    assert "GetCapabilities" in operations
    hrefs = {e.get("{http://www.w3.org/1999/xlink}href") for e in operations["GetCapabilities"].iter()}
    assert f"{daemon.http}/oseo" in hrefs

    # The WSDL for SOAP toolkits names the same address.
    status, headers, body = daemon.get("/oseo?wsdl")
    assert status == 200 and headers["Content-Type"] == "text/xml; charset=utf-8"
    wsdl = etree.fromstring(body)
    assert {a.get("location") for a in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address",
                                                 "{http://schemas.xmlsoap.org/wsdl/soap/}address")} == {
        f"{daemon.http}/oseo"}

    status, headers, body = daemon.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert "# TYPE oseod_requests_total counter" in text
    assert 'operation="GetCapabilities",outcome="ok"} 1' in text
    assert "oseod_redis_up 1" in text

    added = daemon.ctl("user", "add", "alice", "--password-stdin", "--group", "eo", stdin="alice-password\n")
    assert added.returncode == 0, added.stderr
    listed = daemon.ctl("user", "list")
    assert listed.returncode == 0 and "alice" in listed.stdout and "eo" in listed.stdout

    # The same account logs in to FTP; anonymous does not.
    with daemon.ftp() as client:
        client.login("alice", "alice-password")
        assert client.nlst() == []
    with daemon.ftp() as client:
        with pytest.raises(ftplib.error_perm, match="530"):
            client.login()

    # No password, token or credential in the log.
    assert "alice-password" not in daemon.log()
    assert token.read_text().strip() not in daemon.log()

    # SIGTERM: clean exit, the embedded redis-server gone with it, nothing left behind.
    redis_pid = daemon.redis_pid()
    assert redis_pid is not None and pid_alive(redis_pid)
    assert children_of(daemon.pid) == [redis_pid]
    # twistd ends with the signal that stopped it, after a clean shutdown.
    assert daemon.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert not pid_alive(redis_pid)
    assert not (data / "endpoints.json").exists()
    assert not (data / "redis.sock").exists()

    # After a restart alice is still there.
    daemon = _daemon(daemons, data)
    listed = daemon.ctl("user", "list")
    assert listed.returncode == 0 and "alice" in listed.stdout
    assert daemon.stop() in (0, -signal.SIGTERM)


def test_comes_back_after_sigkill_of_the_whole_service(tmp_path: Path, daemons: list[Daemon]) -> None:
    data = tmp_path / "data"
    daemon = _daemon(daemons, data)
    assert daemon.ctl("user", "add", "bob", "--password-stdin", stdin="bob-password\n").returncode == 0
    aof = data / "redis"
    # appendfsync everysec: wait until bob has reached the disk before pulling the plug.
    wait_for(lambda: any(b"oseod:user:bob" in f.read_bytes() for f in aof.rglob("*.aof")), 10, "AOF fsync")
    redis_pid = daemon.redis_pid()
    daemon.kill_group()
    assert redis_pid is not None
    wait_for(lambda: not pid_alive(redis_pid), 10, "redis-server to die")
    assert (data / "redis.sock").exists()  # stale, left behind

    daemon = _daemon(daemons, data)
    assert "bob" in daemon.ctl("user", "list").stdout
    assert daemon.stop() in (0, -signal.SIGTERM)


def test_leftover_redis_of_a_killed_daemon_is_replaced(tmp_path: Path, daemons: list[Daemon]) -> None:
    """SIGKILL of twistd alone orphans its redis-server; the next start stops it."""
    data = tmp_path / "data"
    daemon = _daemon(daemons, data)
    assert daemon.ctl("user", "add", "carol", "--password-stdin", stdin="carol-password\n").returncode == 0
    orphan = daemon.redis_pid()
    assert orphan is not None
    daemon.stop(signal.SIGKILL)
    assert pid_alive(orphan)

    daemon = _daemon(daemons, data)
    assert not pid_alive(orphan)
    assert daemon.redis_pid() != orphan
    assert "carol" in daemon.ctl("user", "list").stdout
    assert daemon.stop() in (0, -signal.SIGTERM)


def test_one_daemon_per_data_dir(tmp_path: Path, daemons: list[Daemon]) -> None:
    data = tmp_path / "data"
    first = _daemon(daemons, data)
    second = _daemon(daemons, data, wait=False)
    assert second.process is not None and second.process.wait(60) == 1
    assert "another oseod is running" in second.log()
    status, _, _ = first.get("/health")
    assert status == 200


def test_unreachable_redis_fails_the_start(tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = _daemon(daemons, tmp_path / "data", "--redis", "redis://127.0.0.1:1/0", wait=False)
    assert daemon.process is not None and daemon.process.wait(60) == 1
    log = daemon.log()
    assert "oseod could not start" in log and "redis://127.0.0.1:1/0" in log
    assert "Traceback" not in log
    assert not (tmp_path / "data" / "endpoints.json").exists()


def test_admin_api_and_oseoctl_errors(tmp_path: Path, daemons: list[Daemon]) -> None:
    data = tmp_path / "data"
    not_running = subprocess.run([str(BIN / "oseoctl"), "--data-dir", str(data), "user", "list"],
                                 capture_output=True, text=True, timeout=60)
    assert not_running.returncode == 3 and "not running" in not_running.stderr
    assert "Traceback" not in not_running.stderr

    daemon = _daemon(daemons, data)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YWxpY2U6eA=="}):
        status, _, body = daemon.get("/admin/api/users", headers=headers)
        assert status == 401 and "token" in json.loads(body)["error"]
    assert daemon.ctl("user", "add", "dave", "--password-stdin", stdin="dave-password\n").returncode == 0
    again = daemon.ctl("user", "add", "dave", "--password-stdin", stdin="dave-password\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = daemon.ctl("user", "add", "erin", "--password-stdin", stdin="short\n")
    assert short.returncode == 0 and "warning: the password is shorter than 12" in short.stderr
    empty = daemon.ctl("user", "add", "fred", "--password-stdin", stdin="\n")
    assert empty.returncode == 2 and "empty password" in empty.stderr
    assert daemon.ctl("user", "passwd", "dave", "--password-stdin", stdin="dave-password-2\n").returncode == 0
    assert daemon.ctl("user", "del", "dave").returncode == 0
    gone = daemon.ctl("user", "del", "dave")
    assert gone.returncode == 1 and "no user dave" in gone.stderr
    assert "dave" not in daemon.ctl("user", "list").stdout
    daemon.stop()
    stopped = daemon.ctl("user", "list")
    assert stopped.returncode == 3 and "not running" in stopped.stderr


def test_oversized_and_hostile_requests(tmp_path: Path, daemons: list[Daemon]) -> None:
    data = tmp_path / "data"
    config = tmp_path / "small.toml"
    config.write_text("[server]\nmax_request_bytes = 4096\n")
    daemon = _daemon(daemons, data, "--config", str(config))
    status, _, body = daemon.request("POST", "/oseo", b"<x>" + b" " * 10_000 + b"</x>",
                                     {"Content-Type": "application/soap+xml"})
    assert status == 413 and b"4096" in body
    status, _, body = daemon.request("POST", "/oseo", b"<not xml", {"Content-Type": "application/soap+xml"})
    assert status == 400 and b"Fault" in body and b"Traceback" not in body
    status, _, body = daemon.get("/nowhere")
    assert status == 404 and body == b"not found\n"
    status, _, _ = daemon.get("/health")
    assert status == 200


@requires_schemas
def test_demo_collection_is_orderable_end_to_end(tmp_path: Path, daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import describe, get_status, submit

    data = tmp_path / "data"
    daemon = _daemon(daemons, data)
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
    assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0

    def call(payload: str, digest: bool) -> Any:
        return oseo_call(daemon, "erin", payload, digest=digest)

    ack = call(submit("e1", "e2", reference="daemon"), digest=True)
    order_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def completed() -> bool:
        answer = call(get_status(order_id), digest=False)
        return answer.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Completed"

    wait_for(completed, 30, "the demo order to complete")
    urls = [e.text for e in call(describe(order_id), digest=True).iter(f"{{{OSEO}}}URL")]
    assert len(urls) == 2 and all(u.startswith(daemon.endpoints["ftp"]) for u in urls)
    assert daemon.stop() in (0, -signal.SIGTERM)


@requires_schemas
def test_orders_survive_sigkill_of_the_whole_service_during_processing(tmp_path: Path,
                                                                       daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import get_status, submit

    config = tmp_path / "oseod.toml"
    config.write_text('[[collection]]\nid = "urn:oseod:demo"\nprocessor = "dummy"\n'
                      'processor_options = { size = 64, delay = 0.5 }\n'
                      'order_types = ["PRODUCT_ORDER"]\nonline_data_access = ["ftp", "http"]\n'
                      '[[collection.option]]\nname = "format"\nchoices = ["GeoTIFF", "NetCDF"]\n'
                      '[processing]\nworkers = 4\n')
    data = tmp_path / "data"
    daemon = _daemon(daemons, data, "--config", str(config))
    assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0

    def call(payload: str) -> Any:
        return oseo_call(daemon, "erin", payload)

    def status_of(order_id: str) -> str | None:
        return call(get_status(order_id, "brief")).findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")

    orders = [call(submit(f"k{n}a", f"k{n}b", f"k{n}c", reference=f"kill-{n}")).findtext(f"{{{OSEO}}}orderId")
              for n in range(24)]
    assert all(orders)
    for kill in range(2):  # twice, each time with items in production and others still queued
        wait_for(lambda: any(status_of(o) == "InProduction" for o in orders), 30, "processing to run")
        assert not all(status_of(o) == "Completed" for o in orders)
        daemon.kill_group()
        daemon = _daemon(daemons, data, "--config", str(config))

    wait_for(lambda: all(status_of(o) == "Completed" for o in orders), 120, "every order to complete")
    # Each item's result is there once, whatever ran twice.
    results = sorted(p.relative_to(data / "results") for p in (data / "results").rglob("*") if p.is_file())
    assert len(results) == 72 and not any(p.name.startswith(".") for p in results)
    assert daemon.stop() in (0, -signal.SIGTERM)


def test_an_always_failing_processor_fails_the_order_after_its_attempts(tmp_path: Path,
                                                                        daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import get_status, submit

    config = tmp_path / "oseod.toml"
    config.write_text('[[collection]]\nid = "urn:oseod:demo"\nprocessor = "dummy"\n'
                      'processor_options = { fail_rate = 1.0 }\norder_types = ["PRODUCT_ORDER"]\n'
                      '[[collection.option]]\nname = "format"\nchoices = ["GeoTIFF"]\n'
                      '[processing]\nmax_attempts = 3\nretry_delay = 0.2\n')
    daemon = _daemon(daemons, tmp_path / "data", "--config", str(config))
    assert daemon.ctl("user", "add", "ivan", "--password-stdin", stdin="ivan-password\n").returncode == 0

    def call(payload: str) -> Any:
        return oseo_call(daemon, "ivan", payload)

    order_id = call(submit("f1", reference="doomed")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def failed() -> str | None:
        info = call(get_status(order_id)).find(f".//{{{OSEO}}}orderStatusInfo")
        assert info is not None
        if info.findtext(f"{{{OSEO}}}status") != "Failed":
            return None
        return info.findtext(f"{{{OSEO}}}additionalStatusInfo") or "-"

    assert "failed on purpose" in wait_for(failed, 60, "the order to fail")
    stats = json.loads(daemon.ctl("stats", "--json").stdout)["collections"]["urn:oseod:demo"]
    assert (stats["retried"], stats["failed"], stats["completed"]) == (2, 1, 0)
    assert daemon.stop() in (0, -signal.SIGTERM)


@requires_schemas
def test_manual_moderation_through_oseoctl(tmp_path: Path, daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import get_status, submit

    config = tmp_path / "oseod.toml"
    config.write_text('[orders]\nmoderation = "manual"\n')
    data = tmp_path / "data"
    daemon = _daemon(daemons, data, "--config", str(config))
    assert daemon.ctl("user", "add", "gina", "--password-stdin", stdin="gina-password\n").returncode == 0

    def call(payload: str) -> Any:
        return oseo_call(daemon, "gina", payload)

    def status_of(order_id: str) -> tuple[str | None, str | None]:
        info = call(get_status(order_id)).find(f".//{{{OSEO}}}orderStatusInfo")
        assert info is not None
        return info.findtext(f"{{{OSEO}}}status"), info.findtext(f"{{{OSEO}}}additionalStatusInfo")

    approved, rejected = (call(submit(f"m{n}", reference=f"mod-{n}")).findtext(f"{{{OSEO}}}orderId")
                          for n in range(2))
    assert approved and rejected
    assert status_of(approved)[0] == "Submitted"

    listed = daemon.ctl("order", "list", "--status", "Submitted", "--user", "gina")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "USER", "TYPE", "STATUS"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted([approved, rejected])
    shown = json.loads(daemon.ctl("order", "show", approved, "--json").stdout)
    assert (shown["owner"], shown["status"], [i["status"] for i in shown["items"]]) == (
        "gina", "Submitted", ["Submitted"])

    done = daemon.ctl("order", "approve", approved)
    assert done.returncode == 0 and f"approved order {approved}" in done.stdout
    wait_for(lambda: status_of(approved)[0] == "Completed", 30, "the approved order to complete")
    refused = daemon.ctl("order", "reject", rejected, "--reason", "quota exceeded")
    assert refused.returncode == 0, refused.stderr
    assert status_of(rejected) == ("Cancelled", "Rejected by an operator: quota exceeded")

    again = daemon.ctl("order", "approve", approved)
    assert again.returncode == 1 and "not waiting for approval" in again.stderr
    missing = daemon.ctl("order", "show", "999999")
    assert missing.returncode == 1 and "there is no order" in missing.stderr
    no_reason = daemon.ctl("order", "reject", rejected)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    bad = daemon.ctl("order", "list", "--status", "Sleeping")
    assert bad.returncode == 1 and "status must be one of" in bad.stderr
    assert json.loads(daemon.ctl("order", "list", "--json", "--status", "Cancelled").stdout)[0]["id"] == rejected

    # What the engine did, three ways.
    stats = json.loads(daemon.ctl("stats", "--json").stdout)
    assert stats["collections"]["urn:oseod:demo"]["completed"] == 1
    assert stats["waiting"] == {"FAST_TRACK": 0, "STANDARD": 0} and stats["running"] == 0
    assert "urn:oseod:demo  1" in daemon.ctl("stats").stdout
    metrics = daemon.get("/metrics")[2].decode()
    assert 'oseod_items_completed_total{collection="urn:oseod:demo"} 1' in metrics
    assert 'oseod_jobs_waiting{priority="STANDARD"} 0' in metrics and "# TYPE oseod_jobs_running gauge" in metrics
    assert json.loads(daemon.get("/health")[2])["jobs"]["delayed"] == 0
    assert daemon.stop() in (0, -signal.SIGTERM)


@requires_schemas
def test_a_subscription_through_timeslots_and_cancel(tmp_path: Path, daemons: list[Daemon]) -> None:
    from tests.test_http_ordering import cancel, describe, get_status, submit

    data = tmp_path / "data"
    daemon = _daemon(daemons, data)
    assert daemon.ctl("user", "add", "hugo", "--password-stdin", stdin="hugo-password\n").returncode == 0

    def call(payload: str) -> Any:
        return oseo_call(daemon, "hugo", payload)

    order_id = call(submit("sub", order_type="SUBSCRIPTION_ORDER", reference="weekly")).findtext(f"{{{OSEO}}}orderId")
    assert order_id
    slot = daemon.ctl("subscription", "timeslot", "urn:oseod:demo", "2026-11-25T12:00:00Z")
    assert slot.returncode == 0 and "1 subscription(s) served" in slot.stdout, slot.stderr

    def made() -> bool:
        return len(list(call(describe(order_id)).iter(f"{{{OSEO}}}URL"))) == 1

    wait_for(made, 30, "the timeslot's item to be made")
    items = call(get_status(order_id)).findall(f".//{{{OSEO}}}orderItem")
    assert [i.findtext(f"{{{OSEO}}}itemId") for i in items] == ["sub", "sub@2026-11-25T12:00:00Z"]
    again = daemon.ctl("subscription", "timeslot", "urn:oseod:demo", "2026-11-25T12:00:00Z")
    assert "0 subscription(s) served" in again.stdout
    call(cancel(order_id))
    assert call(get_status(order_id)).findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Cancelled"
    after = daemon.ctl("subscription", "timeslot", "urn:oseod:demo", "2026-11-26T12:00:00Z")
    assert "0 subscription(s) served" in after.stdout
    bad = daemon.ctl("subscription", "timeslot", "urn:nope", "2026-11-26T12:00:00Z")
    assert bad.returncode == 1 and "no collection" in bad.stderr
    assert daemon.stop() in (0, -signal.SIGTERM)


def test_a_collection_whose_processor_cannot_be_built_stops_the_start(tmp_path: Path,
                                                                     daemons: list[Daemon]) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text('[[collection]]\nid = "urn:x:conv"\nprocessor = "command"\n'
                      'processor_options = { argv = ["convert", "{password}"] }\n')
    daemon = _daemon(daemons, tmp_path / "data", "--config", str(config), wait=False)
    assert daemon.process is not None
    assert daemon.process.wait(60) == 1
    log = daemon.log()
    assert ("oseod could not start: order processing: collection urn:x:conv: processor 'command': "
            "processor_options.argv[1]: unknown field {password}") in log
    assert "Traceback" not in log


@requires_schemas
def test_results_download_over_ftp_and_the_order_becomes_downloaded(tmp_path: Path, daemons: list[Daemon]) -> None:
    from urllib.parse import unquote

    from oseod.jobs.dummy import content
    from tests.test_http_ordering import describe, get_status, submit

    config = tmp_path / "oseod.toml"
    config.write_text('[server]\nftp_passive_ports = "61000-61200"\n')
    daemon = _daemon(daemons, tmp_path / "data", "--config", str(config))
    for user in ("jane", "kurt"):
        assert daemon.ctl("user", "add", user, "--password-stdin", stdin=f"{user}-password\n").returncode == 0
    order_id = oseo_call(daemon, "jane", submit("j1", "j2")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def urls() -> list[str]:
        return [u.text or "" for u in oseo_call(daemon, "jane", describe(order_id)).iter(f"{{{OSEO}}}URL")]

    found = wait_for(lambda: len(urls()) == 2 and urls(), 30, "the results")
    with daemon.ftp() as client:
        client.login("kurt", "kurt-password")
        assert client.nlst() == []  # another user's orders are invisible
        with pytest.raises(ftplib.error_perm):
            client.cwd(f"/{order_id}")
    with daemon.ftp() as client:
        client.login("jane", "jane-password")
        data, _ = client.ntransfercmd("NLST")
        with data:
            assert 61000 <= data.getpeername()[1] <= 61200  # the configured passive range (a firewall's)
            listed = data.makefile("rb").read()
        client.voidresp()
        assert listed.split() == [order_id.encode()]
        assert sorted(client.nlst(f"/{order_id}")) == ["j1", "j2"]
        with pytest.raises(ftplib.error_perm):
            client.storbinary(f"STOR /{order_id}/j1/upload.dat", io.BytesIO(b"no"))
        for url in found:
            path = unquote(urlsplit(url).path)
            item = path.split("/")[2]
            resumed: list[bytes] = []  # REST: the rest of an interrupted download
            client.retrbinary(f"RETR {path}", resumed.append, rest=1000)
            assert b"".join(resumed) == content(item, 1024)[1000:]
            chunks: list[bytes] = []
            client.retrbinary(f"RETR {path}", chunks.append)
            assert b"".join(chunks) == content(item, 1024)
        with pytest.raises(ftplib.error_perm):
            client.sendcmd("REST soon")

    def downloaded() -> bool:
        info = oseo_call(daemon, "jane", get_status(order_id)).find(f".//{{{OSEO}}}orderStatusInfo")
        return info is not None and info.findtext(f"{{{OSEO}}}status") == "Downloaded"

    wait_for(downloaded, 30, "the order to be Downloaded")
    shown = json.loads(daemon.ctl("order", "show", order_id, "--json").stdout)
    assert [(i["status"], i["downloads"]) for i in shown["items"]] == [("Downloaded", 2), ("Downloaded", 2)]
    assert all(i["last_downloaded_at"] for i in shown["items"])
    metrics = daemon.get("/metrics")[2].decode()
    assert 'oseod_requests_total{transport="ftp",operation="download",outcome="ok"} 4' in metrics
    # the transfer log: one line per download, the resumed one counting the bytes it sent
    assert f"ftp download complete: jane {order_id}/j1/j1-product.dat 24/1024 bytes to 127.0.0.1" in daemon.log()
    assert f"ftp download complete: jane {order_id}/j1/j1-product.dat 1024/1024 bytes to 127.0.0.1" in daemon.log()
    assert daemon.stop() in (0, -signal.SIGTERM)
