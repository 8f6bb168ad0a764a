"""
A small closed-loop HTTP/1.1 load generator, used by bench/capabilities.py when
wrk is not installed.

Each of --connections keep-alive connections sends one request, waits for the
whole response, and sends the next, until --duration seconds have passed or
--max-requests responses have arrived (both are hard bounds). Only loopback
targets are accepted. Prints one JSON object:

    {"requests": N, "errors": N, "non_2xx": N, "seconds": S, "rps": R,
     "p50_ms": ..., "p99_ms": ..., "max_ms": ..., "client_cpu": F}

client_cpu is the generator's CPU time over wall time: near 1.0 means the
generator itself was the bottleneck (one core of Python), so the rate is a floor,
not the server's ceiling; wrk does not have that problem.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import resource
import sys
import time
from urllib.parse import urlsplit

MAX_DURATION = 120.0
MAX_CONNECTIONS = 256


class Stats:
    def __init__(self, max_requests: int, deadline: float) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.non_2xx = 0
        self.max_requests = max_requests
        self.deadline = deadline

    def more(self) -> bool:
        return len(self.latencies) < self.max_requests and time.perf_counter() < self.deadline


def _parse_response(buffer: bytearray) -> tuple[int, int] | None:
    """(status, length of the whole response) if buffer holds a complete one."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).split(b"\r\n")
    status = int(head[0].split(b" ", 2)[1])
    length = None
    chunked = False
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    body = end + 4
    if not chunked:
        total = body + (length or 0)
        return (status, total) if len(buffer) >= total else None
    position = body
    while True:  # chunk-size CRLF data CRLF ... 0 CRLF CRLF (no trailers expected)
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2 + size + 2
        if len(buffer) < position:
            return None
        if size == 0:
            return status, position


class Client(asyncio.Protocol):
    def __init__(self, request: bytes, stats: Stats, finished: asyncio.Future[None]) -> None:
        self.request = request
        self.stats = stats
        self.finished = finished
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = _parse_response(self.buffer)
        if parsed is None:
            return
        status, length = parsed
        self.stats.latencies.append(time.perf_counter() - self.sent_at)
        if not 200 <= status < 300:
            self.stats.non_2xx += 1
        del self.buffer[:length]
        assert self.transport is not None
        if self.stats.more():
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.buffer or (exc is not None):
            self.stats.errors += 1
        if not self.finished.done():
            self.finished.set_result(None)


async def _connection(host: str, port: int, request: bytes, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    while stats.more():  # reconnect if the server closes the connection
        finished: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(lambda: Client(request, stats, finished), host, port)
        except OSError:
            stats.errors += 1
            await asyncio.sleep(0.05)
            continue
        await finished


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


async def run(url: str, method: str, body: bytes, content_type: str, connections: int,
              duration: float, max_requests: int) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"loadgen: refusing non-loopback target {host}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive",
            "User-Agent: oseod-bench-loadgen"]
    if body or method == "POST":
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    stats = Stats(max_requests, started + duration)
    await asyncio.gather(*(_connection(host, port, request, stats) for _ in range(connections)))
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    latencies = sorted(stats.latencies)
    return {
        "requests": len(latencies),
        "errors": stats.errors,
        "non_2xx": stats.non_2xx,
        "seconds": round(seconds, 3),
        "rps": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "client_cpu": round(cpu / seconds, 3) if seconds else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP/1.1 load on a loopback URL.")
    parser.add_argument("url")
    parser.add_argument("--method", default="GET", choices=["GET", "POST"])
    parser.add_argument("--body-file", help="request body (POST)")
    parser.add_argument("--content-type", default="application/octet-stream")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (at most 120)")
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    args = parser.parse_args()
    body = open(args.body_file, "rb").read() if args.body_file else b""
    connections = max(1, min(args.connections, MAX_CONNECTIONS))
    duration = max(0.1, min(args.duration, MAX_DURATION))
    result = asyncio.run(run(args.url, args.method, body, args.content_type, connections, duration,
                             max(1, args.max_requests)))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
