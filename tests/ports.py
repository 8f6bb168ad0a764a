"""Loopback ports for servers the tests run as child processes.

A server that binds port 0 and says which port it got is the honest way
(the tests' own Twisted listeners do that: ``listenTCP(0)``, then
``getHost().port``). Some cannot: redis-server's ``port 0`` means "no TCP
at all", and slapd reads ``ldap://127.0.0.1:0/`` as its default port 389.
For those, probing for a free port and handing it over later is a race
(anything may take the port in between); instead :func:`start_listening`
gives the server ports below the kernel's ephemeral range (where no client
socket is handed one meanwhile), and starts it again on others when it did
not get them: it counts as started only once the kernel shows the
server's own process listening on every one of its ports (so another
process that holds the port is never mistaken for it).
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.polling import wait_for


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def candidate_ports(count: int) -> list[int]:
    """``count`` distinct ports below the ephemeral range (maybe taken)."""
    return random.sample(range(10_000, _ephemeral_low()), count)


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds (none when it is gone)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass  # gone meanwhile, or not ours to read
    return inodes


def listening_ports(pid: int) -> set[int]:
    """The TCP ports (IPv4 and IPv6) process ``pid`` listens on now, from /proc."""
    inodes = socket_inodes(pid)
    if not inodes:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, one of its sockets
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def start_listening(start: Callable[[list[int]], subprocess.Popen[bytes]], count: int, what: str,
                    attempts: int = 20, timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Start a server with ``start(ports)`` (``count`` ports) until it
    listens on all of them; the process and its ports. A process that exits
    (most likely, a port was taken) is tried again on other ports."""
    for _ in range(attempts):
        ports = candidate_ports(count)
        process = start(ports)

        def up(process: subprocess.Popen[bytes] = process, ports: list[int] = ports) -> str:
            if process.poll() is not None:
                return "exited"
            return "up" if set(ports) <= listening_ports(process.pid) else ""

        if wait_for(up, timeout, f"{what} on ports {ports}") == "up":
            return process, ports
    raise AssertionError(f"could not start {what}: {attempts} attempts, each on ports taken or refused")
