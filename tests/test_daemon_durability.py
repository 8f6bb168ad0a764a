"""A real daemon with [redis] min_replicas = 1 over a primary and its
replica: what it acknowledges is on the replica, and a Submit retried with
its wsa:MessageID answers the first orderId (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oseod.oseo.namespaces import OSEO, WSA
from oseod.store import keys
from tests.daemon import Daemon
from tests.oseo_schema import assert_valid, requires_schemas
from tests.replicated import Replicated, replicated

pytestmark = [pytest.mark.slow, requires_schemas]


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    yield from replicated(tmp_path_factory.mktemp("pair"))


def test_a_daemon_acknowledges_what_the_replica_has(tmp_path: Path, daemons: list[Daemon],
                                                     pair: Replicated) -> None:
    from tests.test_http_ordering import envelope, submit, token

    config = tmp_path / "oseod.toml"
    config.write_text(f'[server]\nredis = "redis://127.0.0.1:{pair.primary.port}/0"\n'
                      "[redis]\nmin_replicas = 1\nwait_timeout = 5.0\n")
    daemon = Daemon(tmp_path / "data", "--config", str(config))
    daemons.append(daemon)
    daemon.start()
    before = pair.wait_count()
    assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0
    assert pair.wait_count() > before  # a user change is acknowledged only once replicated

    def submitted(message_id: str) -> str:
        header = token("erin", "erin-password") + f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>'
        status, _, body = daemon.request("POST", "/oseo", envelope(submit("e1", reference="durable"), header),
                                         {"Content-Type": "application/soap+xml"})
        assert status == 200, body
        order_id = assert_valid(body).findtext(f"{{{OSEO}}}orderId")
        assert order_id
        return order_id

    before = pair.wait_count()
    first = submitted("urn:uuid:daemon-1")
    assert pair.wait_count() > before
    assert pair.replica.command("HGET", keys.order(first), "owner", password=None).strip() == "erin"
    assert submitted("urn:uuid:daemon-1") == first
    assert submitted("urn:uuid:daemon-2") != first
