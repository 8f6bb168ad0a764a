"""The roles of a deployment, with real daemons on one Redis: a front
([processing] workers = 0) takes the orders, a worker with no listener at
all makes their items."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest
import redis as redis_py

from oseod.oseo.namespaces import OSEO
from oseod.store import keys
from tests.daemon import Daemon
from tests.oseo_schema import requires_schemas
from tests.polling import wait_for
from tests.redis_process import RedisProcess
from tests.test_daemon import oseo_call

pytestmark = pytest.mark.slow


def consumers(server: RedisProcess) -> set[str]:
    """The names of the daemons that ever claimed a job (consumers of the
    job streams' group)."""
    client = redis_py.Redis(unix_socket_path=str(server.socket), decode_responses=True)
    try:
        names: set[str] = set()
        for stream in client.scan_iter(match=keys.job_stream("*"), _type="stream"):
            for group in client.xinfo_groups(stream):
                names.update(c["name"] for c in client.xinfo_consumers(stream, group["name"]))
        return names
    finally:
        client.close()


@requires_schemas
def test_a_front_takes_orders_and_a_worker_without_listeners_makes_them(
        tmp_path: Path, daemons: list[Daemon], redis_process: RedisProcess) -> None:
    from tests.test_http_ordering import get_status, submit

    shared = f'[server]\nredis = "unix://{redis_process.socket}"\n'
    front_config, worker_config = tmp_path / "front.toml", tmp_path / "worker.toml"
    front_config.write_text(shared + "[processing]\nworkers = 0\n")
    # No listener: result URLs in its e-mails and notifications name the fronts.
    worker_config.write_text(shared + 'public_url = "http://oseo.example.org/oseo"\n')

    front = Daemon(tmp_path / "front", "--config", str(front_config))
    daemons.append(front)
    front.start()
    assert "role: front (client listeners: http, ftp; [processing] workers = 0)" in front.log()
    assert front.ctl("user", "add", "fred", "--password-stdin", stdin="fred-password\n").returncode == 0
    order_id = oseo_call(front, "fred", submit("f1", "f2", reference="roles")).findtext(f"{{{OSEO}}}orderId")
    assert order_id

    def status() -> str | None:
        answer = oseo_call(front, "fred", get_status(order_id))
        return answer.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")  # type: ignore[no-any-return]

    assert status() == "Accepted"  # queued; nobody makes it yet
    assert consumers(redis_process) == set()

    # --http "" --ftp "" (after the test helper's own tcp:0 ones): no listener.
    worker = Daemon(tmp_path / "worker", "--config", str(worker_config), "--http", "", "--ftp", "")
    daemons.append(worker)
    worker.start()  # up once its log says "oseod is running"
    assert json.loads((worker.data_dir / "endpoints.json").read_text()) == {}
    assert "role: worker (client listeners: none; [processing] workers = 8)" in worker.log()
    assert "listening on" not in worker.log()

    wait_for(lambda: status() == "Completed", 30, "the worker to make the order's items")
    # Only the worker ever claimed a job: the front is no consumer of the queue.
    assert consumers(redis_process) == {f"{socket.gethostname()}:{worker.data_dir}"}

    assert worker.stop(signal.SIGTERM) == 0
    assert front.stop(signal.SIGTERM) == 0
    for daemon in (front, worker):
        assert "Traceback" not in daemon.log()


def test_no_http_listener_needs_public_url(tmp_path: Path) -> None:
    from oseod.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"^server\.public_url: is required when server\.http is empty"):
        load_config(None, [("http", ""), ("ftp", "")])
    config = load_config(None, [("http", ""), ("ftp", ""), ("public_url", "https://oseo.example.org/oseo")])
    assert config.server.http == ""
