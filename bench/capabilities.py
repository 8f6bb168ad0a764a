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
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ordering import CpuMeter
from harness import (
    LOAD_LIMITS,
    BenchError,
    PythonLoad,
    Result,
    Server,
    Target,
    Wrk,
    add_run_arguments,
    check_answer,
    machine_info,
    reported,
    rounded,
    start_echo,
    start_oseod,
    stop_all,
)

SOAP12_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
SOAP12_GET_CAPABILITIES = (
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">'
    b'<soap:Body><GetCapabilities xmlns="http://www.opengis.net/oseo/1.0" service="OS"/>'
    b"</soap:Body></soap:Envelope>"
)
KVP_GET_CAPABILITIES = "/oseo?service=OS&request=GetCapabilities"


# --- report ----------------------------------------------------------------------------


def _ratio(a: Result | None, b: Result | None) -> float | None:
    return a.rps / b.rps if a and b and b.rps else None


def _cpu_ratio(cpu: dict[str, float], a: str, b: str) -> float | None:
    return cpu[b] / cpu[a] if a in cpu and b in cpu and cpu[a] else None


def report(info: dict[str, str], load: str, settings: str, results: list[Result],
           ratios: dict[str, float | None], cpu: dict[str, float]) -> None:
    print()
    print(f"machine: nproc {info['nproc']} ({info['cpus']} CPUs), {info['system']}, {info['python']}, "
          f"Twisted {info['twisted']}, Klein {info['klein']}, oseod {info['oseod']}")
    print(f"load:    {load}; {settings}; client and servers share this machine")
    print()
    print(f"{'target':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU ms/req':>11}")
    for r in results:
        print(f"{r.label:<44} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} "
              f"{cpu.get(r.key, float('nan')):>11.3f}" + (f"  ({r.note})" if r.note else ""))
    print("  CPU: the answering server's (user + system, from /proc), per request")
    print()
    for name, value in ratios.items():
        print(f"{name:<38} {'n/a' if value is None else f'{value:.2f}'}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="oseod GetCapabilities req/s as a ratio to a bare Klein echo server.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per target (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk if on PATH, else bench/loadgen.py")
    add_run_arguments(parser)
    parser.add_argument("--echo-only", action="store_true", help="measure the echo server only")
    parser.add_argument("--logger", default=None,
                        help="twistd --logger for the daemon (default: none, the README's plain `twistd -n oseod`)")
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
    cpu: dict[str, float] = {}
    daemon: Server | None = None
    try:
        with reported():
            echo, echo_url = start_echo(tmp, servers)
            targets = [
                Target("echo GET", "echo GET /echo", f"{echo_url}/echo", expect=b"echo"),
                Target("echo POST", "echo POST /echo (the SOAP body)", f"{echo_url}/echo", "POST",
                       SOAP12_GET_CAPABILITIES, SOAP12_CONTENT_TYPE, expect=b"GetCapabilities"),
            ]
            if not args.echo_only:
                print(f"starting oseod ({args.twistd}) ...", flush=True)
                config = tmp / "oseod.toml"
                config.write_text(LOAD_LIMITS)
                daemon, oseod_url = start_oseod(args.twistd, tmp, servers, oseod_options=["--config", str(config)],
                                             logger=args.logger)
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
                    assert culprit is not None  # (an oseod target only when the daemon runs)
                    raise BenchError(f"{e}\n{culprit.log_tail()}") from None
            if "oseod KVP" in sizes:
                # The fair ceiling for a GetCapabilities: an echo answering as many bytes.
                same = Target("echo GET sized", f"echo GET /echo/{sizes['oseod KVP']} (the KVP answer's size)",
                              f"{echo_url}/echo/{sizes['oseod KVP']}", expect=b"echo")
                sizes[same.key] = check_answer(same)
                targets.insert(1, same)
            for target in targets:
                print(f"{target.label}: {sizes[target.key]} bytes per answer; warm-up {warmup:.0f} s, "
                      f"then {duration:.0f} s of load ...", flush=True)
                if warmup:
                    load.run(target, warmup, tmp)
                server = daemon if target.key.startswith("oseod") else echo
                assert server is not None
                meter = CpuMeter({"server": server.process.pid})
                start = meter.read()
                results.append(load.run(target, duration, tmp))
                spent = CpuMeter.spent(start, meter.read())["server"]
                cpu[target.key] = 1000 * spent / results[-1].requests if results[-1].requests else float("nan")
    finally:
        stop_all(servers)
        shutil.rmtree(tmp, ignore_errors=True)

    by_key = {r.key: r for r in results}
    ratios = {
        "oseod KVP / echo GET": _ratio(by_key.get("oseod KVP"), by_key.get("echo GET")),
        "oseod KVP / echo GET, same bytes": _ratio(by_key.get("oseod KVP"), by_key.get("echo GET sized")),
        "oseod SOAP / echo POST": _ratio(by_key.get("oseod SOAP"), by_key.get("echo POST")),
    }
    settings = (f"{duration:.0f} s per target after {warmup:.0f} s warm-up, 127.0.0.1; daemon logging "
                f"{'--logger ' + args.logger if args.logger else 'as plain twistd -n'}")
    # Steadier than the rates when other work shares the machine: the
    # servers' CPU per request (the echo's over oseod's).
    ratios.update({
        "CPU: echo GET same bytes / oseod KVP": _cpu_ratio(cpu, "oseod KVP", "echo GET sized"),
        "CPU: echo POST / oseod SOAP": _cpu_ratio(cpu, "oseod SOAP", "echo POST"),
    })
    report(info, load.description, settings, results, ratios, cpu)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"capabilities-{stamp}.json"
    record.write_text(json.dumps({"when": stamp, "machine": info, "load": load.description,
                                  "settings": settings, "results": [rounded(asdict(r)) for r in results], "cpu_ms_per_request": rounded(cpu),
                                  "ratios": ratios}, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
