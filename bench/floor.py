"""The floor of a Submit on this machine: how fast oseod's stack alone can go.

    .venv/bin/python bench/floor.py [--duration 5] [--rounds 2]

bench/ordering.py reports Submit as a ratio to the bare Klein echo server
(target 0.5). This bench measures, the same way and in the same run,
bench/floor_server.py: twisted.web with the Submit body parsed by lxml, one
EVALSHA the size of a 10-item Submit's create script sent to a private
redis-server and awaited, and a small answer rendered by lxml; none of
oseod's own work (no SOAP envelope, no login, no order parsed or checked, no
log line). Its ratio to the echo is the best any Submit on this stack can
reach here, and the CPU it takes says how much is left for oseod's own work
at a given ratio:

    own work at ratio r  =  echo CPU per request / r  -  floor CPU per request

The same floor is also served through oseod's own HTTP layer (OseodSite, its
request and channel, the connection budget's wrapper): the difference in CPU
is what that layer costs a request.

Echo and floor runs alternate (``--rounds``), so other work on the machine
weighs on both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    HERE, PythonLoad, Server, Target, Wrk, bench_servers, check_answer, machine_info, start_echo, wait_for,
)
from odata_search import start_redis  # noqa: E402
from ordering import (  # noqa: E402
    SOAP12_CONTENT_TYPE, SUBMIT_USER, TARGETS, CpuMeter, envelope, measure_load, submit_payload,
)


def start_floor(tmp: Path, socket: Path, servers: list[Server], oseod_site: bool) -> tuple[Server, str]:
    name = "floor-oseod-site" if oseod_site else "floor"
    port_file = tmp / f"{name}.url"
    server = Server(f"{name} server", [sys.executable, str(HERE / "floor_server.py"), "--redis-socket", str(socket),
                                       "--port-file", str(port_file), *(["--oseod-site"] if oseod_site else [])],
                    tmp / f"{name}.log", cwd=tmp)
    servers.append(server)
    return server, wait_for("its URL file", server,
                            lambda: port_file.read_text().strip() if port_file.exists() else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--rounds", type=int, default=2, help="echo and floor runs, alternating (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 60.0)
    warmup = min(max(args.warmup, 0.0), 10.0)
    rounds = min(max(args.rounds, 1), 10)
    connections = min(max(args.connections, 1), 256)
    wrk = shutil.which("wrk")
    load: Wrk | PythonLoad = Wrk(wrk, connections) if wrk else PythonLoad(connections)
    body = envelope(SUBMIT_USER, "secret", submit_payload("floor"))
    info = machine_info()
    print(f"machine: nproc {info['nproc']}, {info['system']}, {info['python']}, Twisted {info['twisted']}")
    print(f"load:    {load.description}; {duration:g} s per run after {warmup:g} s of warm-up, {rounds} rounds; "
          f"loadavg {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the start")
    with bench_servers("floor") as (servers, tmp):
        socket = start_redis(tmp, servers)
        echo, echo_url = start_echo(tmp, servers)
        floor, floor_url = start_floor(tmp, socket, servers, oseod_site=False)
        layered, layered_url = start_floor(tmp, socket, servers, oseod_site=True)
        redis = servers[0]
        targets = {
            "echo": (Target("echo POST", f"echo POST /echo (the Submit body, {len(body)} B)", f"{echo_url}/echo",
                            "POST", body, SOAP12_CONTENT_TYPE, expect=b"Submit"),
                     CpuMeter({"echo": echo.process.pid})),
            "floor": (Target("floor POST", "floor: parse, one EVALSHA of a Submit's size, an answer",
                             f"{floor_url}/floor", "POST", body, SOAP12_CONTENT_TYPE, expect=b"SubmitAck"),
                      CpuMeter({"floor": floor.process.pid, "redis": redis.process.pid})),
            "layered": (Target("floor POST", "the same through oseod's HTTP layer (its Site, channel, budget)",
                               f"{layered_url}/oseo", "POST", body, SOAP12_CONTENT_TYPE, expect=b"SubmitAck"),
                        CpuMeter({"layered": layered.process.pid, "redis": redis.process.pid})),
        }
        for target, _ in targets.values():
            check_answer(target)
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        print(f"\n{'run':<70} {'req/s':>8} {'p99 ms':>8}  server CPU ms/req")
        for _ in range(rounds):
            for name, (target, cpu) in targets.items():
                row, _, _ = measure_load(load, target, duration, warmup, tmp, cpu)
                own = row.cpu_ms_per_request[name]
                rows[name].append((row.result.rps, own))
                spent = " + ".join(f"{v:.3f}" for k, v in row.cpu_ms_per_request.items() if not k.endswith("kernel"))
                print(f"{target.label:<70} {row.result.rps:8.0f} {row.result.p99_ms:8.2f}  {spent}", flush=True)
                time.sleep(0.5)
    print(f"\n{'round':<6} {'floor / echo (req/s)':>22} {'echo CPU':>10} {'floor CPU':>10} "
          f"{'own work left at 0.5 (CPU ms/req)':>36} {'oseod HTTP layer (CPU ms/req)':>32}")
    for n, ((echo_rps, echo_cpu), (floor_rps, floor_cpu), (_, layered_cpu)) in enumerate(
            zip(rows["echo"], rows["floor"], rows["layered"]), 1):
        left = echo_cpu / TARGETS["submit"] - floor_cpu
        print(f"{n:<6} {floor_rps / echo_rps:>22.3f} {echo_cpu:>10.3f} {floor_cpu:>10.3f} {left:>36.3f} "
              f"{layered_cpu - floor_cpu:>32.3f}")
    print("\nbench/ordering.py prints a Submit's CPU per request; what it spends above the floor's is oseod's own "
          "work (SOAP, login, order parsed, checked and encoded, logs).")


if __name__ == "__main__":
    main()
