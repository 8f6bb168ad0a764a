"""
Shared pieces of the benchmark scripts (bench/capabilities.py, bench/ordering.py,
bench/engine.py).

Servers as subprocesses in their own sessions (stopped as a group, also on
errors and Ctrl-C), a bare Klein echo server and the oseod daemon started on
free loopback ports, one-request answer checks, the load generators (wrk when
it is on PATH, else bench/loadgen.py), machine information, and the signal
handling that turns SIGTERM/SIGHUP into the same clean-up as Ctrl-C.

Not a package: the scripts run from bench/ and import it as ``harness``.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

HERE = Path(__file__).resolve().parent

START_TIMEOUT = 60.0  # seconds for a server to start listening
STOP_TIMEOUT = 15.0  # seconds for a server to stop after SIGTERM, before SIGKILL


class BenchError(Exception):
    """A failure worth one clear message (and a log tail), not a traceback."""


class ServerExited(BenchError):
    """A server exited while it was awaited (a caller may start it again,
    e.g. on another port)."""


@dataclass(frozen=True)
class Target:
    key: str  # "echo GET", "echo POST", "oseod KVP", "oseod SOAP"
    label: str
    url: str
    method: str = "GET"
    body: bytes = b""
    content_type: str = ""
    expect: bytes = b""  # a fragment the answer must contain
    headers: tuple[tuple[str, str], ...] = ()  # more request headers (wrk only), e.g. ("Connection", "close")


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

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log  # its stdout and stderr
        self._log_file: IO[bytes] = open(log, "ab")
        self.process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            text = ["(not written)"]
        except OSError as e:
            text = [f"(cannot read: {e})"]
        return f"--- last lines of {self.log}\n" + ("\n".join(text[-lines:]) or "(empty)")

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


def wait_for(what: str, server: Server, read: Any) -> Any:
    """Poll read() until it returns a value, the server dies, or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        value = read()
        if value is not None:
            return value
        if not server.alive():
            raise ServerExited(f"{server.name} exited with status {server.process.returncode} "
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

    return server, wait_for("its URL file", server, read)


# The load generator's connections all come from 127.0.0.1: the daemon's
# per-address connection limit ([server] max_connections_per_address, 64) must
# not refuse a --connections above it. Every bench config includes this.
LOAD_LIMITS = "[server]\nmax_connections_per_address = 4096\n"


def start_oseod(twistd: Path, tmp: Path, started: list[Server], *, subdir: str = "",
                twistd_options: Sequence[str] = (), oseod_options: Sequence[str] = (),
                logger: str | None = "oseod.logs.text_stdout") -> tuple[Server, str]:
    """The daemon on TMP/data with an embedded Redis (unless ``oseod_options``
    name a ``--redis``), HTTP and FTP on free loopback ports, its log in
    TMP/oseod.log; with ``subdir``, TMP/SUBDIR/data and TMP/SUBDIR/oseod.log,
    so that several daemons can run side by side. ``twistd_options`` go before
    the ``oseod`` subcommand (e.g. ``--profile``), ``oseod_options`` after it
    (e.g. ``--config FILE``); ``logger``: twistd's ``--logger`` (None: none,
    as the README's plain ``twistd -n oseod``)."""
    home = tmp / subdir
    data = home / "data"
    data.mkdir(parents=True)
    endpoints = data / "endpoints.json"
    # Logged as `make run` and etc/oseod.service do (the deployment's observer
    # on stdout), so the figures include what logging costs there. stderr
    # shares the file: an option error or a crash shows up in it too.
    argv = [str(twistd), "-n", "--pidfile=", *(("--logger", logger) if logger else ()), *twistd_options, "oseod",
            "--data-dir", str(data),
            "--http", "tcp:0:interface=127.0.0.1", "--ftp", "tcp:0:interface=127.0.0.1", *oseod_options]
    server = Server(f"oseod daemon ({subdir})" if subdir else "oseod daemon", argv, home / "oseod.log", cwd=home)
    started.append(server)

    def read() -> str | None:
        try:
            return str(json.loads(endpoints.read_text())["http"])
        except (OSError, ValueError, KeyError):
            return None  # not written yet, or caught half-written

    return server, wait_for(f"{endpoints}", server, read)


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
                              f'wrk.headers["Content-Type"] = {_lua_string(target.content_type)}\n'
                              + "".join(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}\n"
                                        for name, value in target.headers))
            argv += ["-s", str(script)]
        elif target.headers:
            argv += [a for name, value in target.headers for a in ("-H", f"{name}: {value}")]
        out = run_bounded(argv + [target.url], duration).stdout
        return Result(
            key=target.key,
            label=target.label,
            rps=float(_search(r"^Requests/sec:\s+([\d.]+)", out)),
            p50_ms=_wrk_ms(_search(r"^\s+50%\s+(\S+)", out)),
            p99_ms=_wrk_ms(_search(r"^\s+99%\s+(\S+)", out)),
            requests=int(_search(r"^\s+(\d+) requests in", out)),
            errors=_wrk_errors(out),
        )


def _lua_string(text: str) -> str:
    """A Lua string literal of ``text`` (a Content-Type may hold quotes: action="...")."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


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
        if target.headers:
            raise BenchError(f"{target.label}: bench/loadgen.py sends no extra headers; install wrk")
        argv = [sys.executable, str(HERE / "loadgen.py"), target.url, "--method", target.method,
                "--connections", str(self.connections), "--duration", str(duration)]
        if target.body:
            body_file = tmp / "body.bin"
            body_file.write_bytes(target.body)
            argv += ["--body-file", str(body_file), "--content-type", target.content_type]
        out = json.loads(run_bounded(argv, duration).stdout)
        note = ""
        if out["client_cpu"] > 0.9:
            note = f"load generator CPU-bound ({out['client_cpu']:.0%} of a core): a floor"
        return Result(key=target.key, label=target.label, rps=out["rps"], p50_ms=out["p50_ms"], p99_ms=out["p99_ms"],
                      requests=out["requests"], errors=out["errors"] + out["non_2xx"], note=note)


def run_bounded(argv: list[str], duration: float) -> subprocess.CompletedProcess[str]:
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


def rounded(record: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every bench that starts oseod has: which twistd, and where its JSON record goes."""
    parser.add_argument("--twistd", type=Path, default=Path(sys.executable).parent / "twistd",
                        help="twistd of the venv oseod is installed in (default: next to this python)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results",
                        help="where the JSON record goes (default: bench/results)")


def save_record(results_dir: Path, kind: str, record: dict[str, Any]) -> Path:
    """Write a run's JSON record as RESULTS_DIR/KIND-<UTC time>.json and say where."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nsaved {out}")
    return out


@dataclass
class BenchRun:
    """What every part of one run of a bench shares; each bench adds its own."""

    args: argparse.Namespace
    load: Wrk | PythonLoad
    tmp: Path
    info: dict[str, str]
    loadavg: tuple[float, ...]
    duration: float
    warmup: float
    started_at: float = field(default_factory=time.monotonic)


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C does, so the cleanup below runs."""
    def interrupt(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def reported() -> Iterator[None]:
    """The body of a bench's main: SIGTERM/SIGHUP end it as Ctrl-C does; a
    BenchError or an interruption is said in one line and ends the process
    (status 2, or 130), after the caller's cleanup (its ``finally``) ran::

        try:
            with reported():
                ...
        finally:
            stop_all(servers)
    """
    try:
        with signals_raise():
            yield
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("bench: interrupted; stopping servers", file=sys.stderr)
        raise SystemExit(130) from None


@contextmanager
def bench_servers(name: str) -> Iterator[tuple[list[Server], Path]]:
    """The servers a run starts and its scratch directory. A BenchError is
    said in one line with the servers' log tails and ends the process
    (status 1), Ctrl-C too (130); the servers are stopped and the directory
    removed however the run ends."""
    tmp = Path(tempfile.mkdtemp(prefix=f"oseod-bench-{name}-"))
    servers: list[Server] = []
    try:
        with signals_raise():
            yield servers, tmp
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        for server in servers:
            print(server.log_tail(), file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        stop_all(servers)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_all(servers: list[Server]) -> None:
    """Stop every server, the last started first. A second Ctrl-C must not
    leave servers behind: SIGINT is ignored while they stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for server in reversed(servers):
            server.stop()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
