"""
Items per second through oseod's processing engine, and what each costs.

One daemon (``twistd -n oseod``, throwaway data dir, embedded Redis, loopback
ports), the demo collection under manual moderation with its dummy processor
(no delay, 1 KiB results). ORDERS orders of ITEMS items are submitted and
wait in Submitted; then all are approved at once (admin API), and the clock
runs from the first approval until the last item is final. Reported: items/s
(target >= 2,000), and per item the daemon's and Redis's CPU and the Redis
commands (script-internal ones included; EVALSHA counts the scripts).

Run it with ``make bench-engine`` (or ``.venv/bin/python bench/engine.py --help``).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from pathlib import Path

from harness import BenchError, add_run_arguments, bench_servers, machine_info, rounded, save_record, start_oseod
from ordering import Backlog, CpuMeter, RedisStats, add_user, connect_redis, envelope, post

COLLECTION = "urn:oseod:demo"
USER = "bench-engine"
TARGET = 2000.0


def submit_payload(n: int, items: int) -> str:
    body = "".join(
        f"<oseo:orderItem><oseo:itemId>i{k}</oseo:itemId><oseo:productId><oseo:identifier>{COLLECTION}:p{n}-{k}"
        f"</oseo:identifier><oseo:collectionId>{COLLECTION}</oseo:collectionId></oseo:productId></oseo:orderItem>"
        for k in range(items))
    return (f'<oseo:Submit service="OS" version="1.0.0"><oseo:orderSpecification>'
            f"<oseo:orderType>PRODUCT_ORDER</oseo:orderType>{body}</oseo:orderSpecification>"
            f"<oseo:statusNotification>None</oseo:statusNotification></oseo:Submit>")


def admin_post(url: str, token: str, path: str) -> None:
    request = urllib.request.Request(f"{url}/admin/api{path}", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status != 200:
            raise BenchError(f"POST {path} answered {response.status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--items", type=int, default=200, help="items per order (at most 200)")
    parser.add_argument("--workers", type=int, default=8, help="[processing] workers")
    add_run_arguments(parser)
    args = parser.parse_args()
    total = args.orders * args.items
    with bench_servers("engine") as (servers, tmp):
        config = tmp / "oseod.toml"
        config.write_text(f'[orders]\nmoderation = "manual"\nmax_active_items_per_user = {total + 1}\n'
                          f"[processing]\nworkers = {args.workers}\n")
        daemon, url = start_oseod(args.twistd, tmp, servers, oseod_options=["--config", str(config)])
        data = tmp / "data"
        add_user(Path(sys.executable).parent / "oseoctl", data, USER, "bench-password\n")
        redis = connect_redis(data / "redis.sock")
        token = (data / "admin.token").read_text().strip()
        print(f"submitting {args.orders} orders of {args.items} items ...", flush=True)
        ids = []
        for n in range(args.orders):
            status, answer = post(f"{url}/oseo", envelope(USER, "bench-password", submit_payload(n, args.items)))
            found = answer.split(b"orderId>")
            if status != 200 or len(found) < 2:
                raise BenchError(f"Submit answered {status}: {answer[:500]!r}")
            ids.append(found[1].split(b"<")[0].decode())
        redis_pid = int((data / "redis" / "redis.pid").read_text())
        cpu, stats = CpuMeter({"daemon": daemon.process.pid, "redis": redis_pid}), RedisStats(redis)
        before_cpu, before_stats = cpu.read(), stats.read()
        print(f"approving them; {total} items to make ...", flush=True)
        started = time.monotonic()
        for order_id in ids:
            admin_post(url, token, f"/orders/{order_id}/approve")
        drained = Backlog(redis, USER).drain(timeout=600)
        elapsed = time.monotonic() - started
        if drained.stuck_items:
            raise BenchError(f"{drained.stuck_items} items never finished")
        spent = CpuMeter.spent(before_cpu, cpu.read())
        commands = {k: v - before_stats.get(k, 0) for k, v in stats.read().items()}
        commands = {k: v for k, v in commands.items() if v > 0 and k not in ("info", "get")}
        rate = total / elapsed
        per_item = {k: round(v / total, 2) for k, v in sorted(commands.items(), key=lambda kv: -kv[1])}
        print(f"\nmachine: {machine_info()}")
        print(f"{total} items ({args.orders} orders x {args.items}), workers {args.workers}: "
              f"{elapsed:.2f} s, {rate:.0f} items/s (target >= {TARGET:.0f}: "
              f"{'PASS' if rate >= TARGET else 'MISS'})")
        print("CPU per item: " + ", ".join(f"{k} {1000 * v / total:.3f} ms" for k, v in spent.items()))
        print("Redis commands per item (script-internal included): "
              + ", ".join(f"{k} {v}" for k, v in per_item.items()))
        save_record(args.results_dir, "engine", rounded({
            "items": total, "seconds": elapsed, "items_per_second": rate,
            "cpu_ms_per_item": {k: 1000 * v / total for k, v in spent.items()},
            "redis_commands_per_item": per_item, "machine": machine_info(), "workers": args.workers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
