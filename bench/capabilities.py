"""
GetCapabilities throughput of oseod, as a ratio to a bare Klein echo server.

Absolute request rates on a shared 2-core VM say little; the ratio to the bare
stack measured in the same run says what oseod's own work costs. This script:

1. starts bench/echo_server.py and the oseod daemon (``twistd -n oseod`` with a
   throwaway data dir, an embedded Redis, HTTP and FTP on free loopback ports) as
   subprocesses;
2. checks each target answers correctly once;
3. loads each target from a second process on loopback: wrk if it is on PATH
   (``-t1 -c16 --latency``, a Lua script for POST bodies), else bench/loadgen.py
   (keep-alive HTTP/1.1, bounded in time and count); each target gets a short
   warm-up first, which is not counted;
4. prints req/s, p50/p99 latency and the ratios oseod KVP / echo GET and
   oseod SOAP / echo POST, with machine info, and saves them as JSON under
   bench/results/.

About a minute with the defaults (4 targets x (2 s warm-up + 10 s)). Everything
listens on 127.0.0.1 only; every process started here is stopped on exit,
Ctrl-C or error. Run it with ``make bench`` (or ``.venv/bin/python
bench/capabilities.py --help``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

HERE = Path(__file__).resolve().parent

SOAP12_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
SOAP12_GET_CAPABILITIES = (
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">'
    b'<soap:Body><GetCapabilities xmlns="http://www.opengis.net/oseo/1.0" service="OS"/>'
    b"</soap:Body></soap:Envelope>"
)
KVP_GET_CAPABILITIES = "/oseo?service=OS&request=GetCapabilities"

START_TIMEOUT = 60.0  # seconds for a server to start listening
STOP_TIMEOUT = 15.0  # seconds for a server to stop after SIGTERM, before SIGKILL


class BenchError(Exception):
    """A failure worth one clear message (and a log tail), not a traceback."""


@dataclass(frozen=True)
class Target:
    key: str  # "echo GET", "echo POST", "oseod KVP", "oseod SOAP"
    label: str
    url: str
    method: str = "GET"
    body: bytes = b""
    content_type: str = ""
    expect: bytes = b""  # a fragment the answer must contain


@dataclass
class Result:
    key: str
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # connection errors and non-2xx answers
    note: str = ""


# --- processes ------------------------------------------------------------------------


class Server:
    """A server subprocess in its own session, so that it and its children (the
    daemon's embedded redis-server) can be stopped as a group, and so that a Ctrl-C
    in the terminal reaches this script first, which then stops them in order."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path,
                 other_logs: tuple[Path, ...] = ()) -> None:
        self.name = name
        self.log = log  # its stdout and stderr
        self.logs = (*other_logs, log)
        self._log_file: IO[bytes] = open(log, "ab")
        self.process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        tails = []
        for log in self.logs:
            try:
                text = log.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                text = ["(not written)"]
            except OSError as e:
                text = [f"(cannot read: {e})"]
            tails.append(f"--- last lines of {log}\n" + ("\n".join(text[-lines:]) or "(empty)"))
        return "\n".join(tails)

    def stop(self) -> None:
        group = self.process.pid  # session leader: its pid is the process group id
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"bench: {self.name} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it",
                      file=sys.stderr)
        # Whatever is left of the group (the server itself if it hung, a child it
        # failed to stop) gets a short grace period, then SIGKILL.
        deadline = time.monotonic() + 3
        while _group_exists(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_exists(group):
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it went away in the meantime
        if self.alive():
            self.process.wait(5)
        self._log_file.close()


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for(what: str, server: Server, read: Any) -> Any:
    """Poll read() until it returns a value, the server dies, or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        value = read()
        if value is not None:
            return value
        if not server.alive():
            raise BenchError(f"{server.name} exited with status {server.process.returncode} "
                             f"before {what}.\n{server.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name}: no {what} after {START_TIMEOUT:.0f} s.\n{server.log_tail()}")
        time.sleep(0.05)


def start_echo(tmp: Path, started: list[Server]) -> tuple[Server, str]:
    port_file = tmp / "echo.url"
    server = Server("echo server", [sys.executable, str(HERE / "echo_server.py"),
                                    "--port-file", str(port_file)], tmp / "echo.log", cwd=tmp)
    started.append(server)  # before waiting: a server that never gets ready is still stopped

    def read() -> str | None:
        return port_file.read_text().strip() if port_file.exists() else None

    return server, _wait_for("its URL file", server, read)


def start_oseod(twistd: Path, tmp: Path, started: list[Server]) -> tuple[Server, str]:
    data = tmp / "data"
    data.mkdir()
    endpoints = data / "endpoints.json"
    argv = [str(twistd), "-n", "--pidfile=", f"--logfile={tmp / 'oseod.log'}", "oseod",
            "--data-dir", str(data),
            "--http", "tcp:0:interface=127.0.0.1", "--ftp", "tcp:0:interface=127.0.0.1"]
    # stdout/stderr get their own file: twistd writes oseod.log through its own
    # handle, and two writers on one file would overwrite each other. An option
    # error or a crash before the log opens shows up in oseod.out.
    server = Server("oseod daemon", argv, tmp / "oseod.out", cwd=tmp, other_logs=(tmp / "oseod.log",))
    started.append(server)

    def read() -> str | None:
        try:
            return str(json.loads(endpoints.read_text())["http"])
        except (OSError, ValueError, KeyError):
            return None  # not written yet, or caught half-written

    return server, _wait_for(f"{endpoints}", server, read)


# --- load ------------------------------------------------------------------------------


def check_answer(target: Target) -> int:
    """One request before the load: a fast error page is not a benchmark result."""
    request = urllib.request.Request(target.url, method=target.method, data=target.body or None)
    if target.content_type:
        request.add_header("Content-Type", target.content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except OSError as e:
        raise BenchError(f"{target.label}: {target.method} {target.url} failed: {e}") from None
    if status != 200 or target.expect not in body:
        raise BenchError(f"{target.label}: {target.method} {target.url} answered {status}, "
                         f"expected 200 with {target.expect!r}; body starts:\n{body[:600]!r}")
    return len(body)


class Wrk:
    def __init__(self, path: str, connections: int) -> None:
        self.path = path
        self.connections = connections
        # `wrk -v` prints e.g. "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." (and exits 1).
        version = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
        match = re.match(r"wrk \S+", (version.stdout + version.stderr).strip())
        self.description = (f"{match.group(0) if match else 'wrk'}, 1 thread, {connections} "
                            f"keep-alive connections")

    def run(self, target: Target, duration: float, tmp: Path) -> Result:
        argv = [self.path, "-t1", f"-c{self.connections}", f"-d{max(1, round(duration))}s", "--latency"]
        if target.method != "GET":
            script = tmp / "wrk-post.lua"
            body = target.body.decode()
            if "]==]" in body:
                raise BenchError("request body cannot be quoted for Lua")
            script.write_text(f'wrk.method = "{target.method}"\n'
                              f"wrk.body = [==[{body}]==]\n"
                              f'wrk.headers["Content-Type"] = "{target.content_type}"\n')
            argv += ["-s", str(script)]
        out = _run_bounded(argv + [target.url], duration).stdout
        return Result(
            key=target.key,
            label=target.label,
            rps=float(_search(r"^Requests/sec:\s+([\d.]+)", out)),
            p50_ms=_wrk_ms(_search(r"^\s+50%\s+(\S+)", out)),
            p99_ms=_wrk_ms(_search(r"^\s+99%\s+(\S+)", out)),
            requests=int(_search(r"^\s+(\d+) requests in", out)),
            errors=_wrk_errors(out),
        )


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    if match is None:
        raise BenchError(f"cannot read {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def _wrk_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _wrk_errors(out: str) -> int:
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match:
        errors += int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if match:
        errors += sum(int(n) for n in match.groups())
    return errors


class PythonLoad:
    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.description = (f"bench/loadgen.py (Python {platform.python_version()}, asyncio), "
                            f"{connections} keep-alive connections; install wrk for exact ceilings")

    def run(self, target: Target, duration: float, tmp: Path) -> Result:
        argv = [sys.executable, str(HERE / "loadgen.py"), target.url, "--method", target.method,
                "--connections", str(self.connections), "--duration", str(duration)]
        if target.body:
            body_file = tmp / "body.bin"
            body_file.write_bytes(target.body)
            argv += ["--body-file", str(body_file), "--content-type", target.content_type]
        out = json.loads(_run_bounded(argv, duration).stdout)
        note = ""
        if out["client_cpu"] > 0.9:
            note = f"load generator CPU-bound ({out['client_cpu']:.0%} of a core): a floor"
        return Result(key=target.key, label=target.label, rps=out["rps"], p50_ms=out["p50_ms"], p99_ms=out["p99_ms"],
                      requests=out["requests"], errors=out["errors"] + out["non_2xx"], note=note)


def _run_bounded(argv: list[str], duration: float) -> subprocess.CompletedProcess[str]:
    # subprocess.run kills the child if this times out or is interrupted.
    try:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                timeout=duration + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator did not finish within {duration + 30:.0f} s: {argv}") from None
    if result.returncode != 0:
        raise BenchError(f"load generator failed ({result.returncode}): {argv}\n{result.stderr}")
    return result


# --- report ----------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpus": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "twisted": version("twisted"),
        "klein": version("klein"),
        "oseod": version("oseod"),
    }


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}


def _ratio(a: Result | None, b: Result | None) -> float | None:
    return a.rps / b.rps if a and b and b.rps else None


def report(info: dict[str, str], load: str, settings: str, results: list[Result],
           ratios: dict[str, float | None]) -> None:
    print()
    print(f"machine: nproc {info['nproc']} ({info['cpus']} CPUs), {info['system']}, {info['python']}, "
          f"Twisted {info['twisted']}, Klein {info['klein']}, oseod {info['oseod']}")
    print(f"load:    {load}; {settings}; client and servers share this machine")
    print()
    print(f"{'target':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(f"{r.label:<44} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}"
              + (f"  ({r.note})" if r.note else ""))
    print()
    for name, value in ratios.items():
        print(f"{name:<28} {'n/a' if value is None else f'{value:.2f}'}")


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C does, so the cleanup below runs."""
    def interrupt(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="oseod GetCapabilities req/s as a ratio to a bare Klein echo server.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per target (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk if on PATH, else bench/loadgen.py")
    parser.add_argument("--twistd", type=Path, default=Path(sys.executable).parent / "twistd",
                        help="twistd of the venv oseod is installed in (default: next to this python)")
    parser.add_argument("--echo-only", action="store_true", help="measure the echo server only")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results",
                        help="where the JSON record goes (default: bench/results)")
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 60.0)
    warmup = min(max(args.warmup, 0.0), 10.0)
    connections = min(max(args.connections, 1), 256)

    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and not wrk:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")
    load: Wrk | PythonLoad = (Wrk(wrk, connections) if wrk and args.loadgen != "python"
                              else PythonLoad(connections))
    if not args.echo_only and not args.twistd.exists():
        parser.error(f"{args.twistd} not found: run `make bench`, or pass --twistd or --echo-only")

    info = machine_info()
    tmp = Path(tempfile.mkdtemp(prefix="oseod-bench-"))
    servers: list[Server] = []
    results: list[Result] = []
    try:
        with _signals_raise():
            echo, echo_url = start_echo(tmp, servers)
            targets = [
                Target("echo GET", "echo GET /echo", f"{echo_url}/echo", expect=b"echo"),
                Target("echo POST", "echo POST /echo (the SOAP body)", f"{echo_url}/echo", "POST",
                       SOAP12_GET_CAPABILITIES, SOAP12_CONTENT_TYPE, expect=b"GetCapabilities"),
            ]
            if not args.echo_only:
                print(f"starting oseod ({args.twistd}) ...", flush=True)
                daemon, oseod_url = start_oseod(args.twistd, tmp, servers)
                targets += [
                    Target("oseod KVP", "oseod GET KVP GetCapabilities",
                           f"{oseod_url}{KVP_GET_CAPABILITIES}", expect=b"Capabilities"),
                    Target("oseod SOAP", "oseod POST SOAP 1.2 GetCapabilities", f"{oseod_url}/oseo", "POST",
                           SOAP12_GET_CAPABILITIES, SOAP12_CONTENT_TYPE, expect=b"Capabilities"),
                ]
            # Check every answer before spending a minute on load: fail fast, and
            # with the daemon's log when it is the one answering wrong.
            sizes = {}
            for target in targets:
                try:
                    sizes[target.key] = check_answer(target)
                except BenchError as e:
                    culprit = daemon if target.key.startswith("oseod") else echo
                    raise BenchError(f"{e}\n{culprit.log_tail()}") from None
            for target in targets:
                print(f"{target.label}: {sizes[target.key]} bytes per answer; warm-up {warmup:.0f} s, "
                      f"then {duration:.0f} s of load ...", flush=True)
                if warmup:
                    load.run(target, warmup, tmp)
                results.append(load.run(target, duration, tmp))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not leave servers behind: ignore it while stopping.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for server in reversed(servers):
            server.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        shutil.rmtree(tmp, ignore_errors=True)

    by_key = {r.key: r for r in results}
    ratios = {
        "oseod KVP / echo GET": _ratio(by_key.get("oseod KVP"), by_key.get("echo GET")),
        "oseod SOAP / echo POST": _ratio(by_key.get("oseod SOAP"), by_key.get("echo POST")),
    }
    settings = f"{duration:.0f} s per target after {warmup:.0f} s warm-up, 127.0.0.1"
    report(info, load.description, settings, results, ratios)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"capabilities-{stamp}.json"
    record.write_text(json.dumps({"when": stamp, "machine": info, "load": load.description,
                                  "settings": settings, "results": [_rounded(asdict(r)) for r in results],
                                  "ratios": ratios}, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
