"""OData ``$filter`` search at 10^5 stored orders of one user ÷ at 10^2 (target ≤ 1.2).

    .venv/bin/python bench/odata_search.py [--big 100000] [--requests 300]

One private redis-server (no persistence, a unix socket in a scratch
directory) holds two users: "small" with 10^2 archived orders, "big" with
10^5 (``--big``), each archive completed over the past year by the project's
own code (bench/ordering.py's BulkLoader: OrderingService.submit and the
store's status changes, sent to Redis in pipelines), then the same
RECENT orders each, placed through OrderingService.submit a moment ago
(queued, half of them FAST_TRACK: Priority 90). Each query below is answered
in this process as /odata/v1 answers it: parse_list_query, then list_orders
(list_page over OrderingService.find_orders/count_orders/get) on the real OrderStore
(txredisapi), every order read and rendered as a row and checked. The
rendering is the views' (oseod.odata.entities.production_order) when that
module is there, else the few fields filtered on.

The two users' requests alternate (same Redis, same process, same moment),
so that other work on the machine weighs on both alike. Per
query: the median time of a request for each user, and their ratio; the
verdict takes the worst ratio. Every answer is checked (rows, count).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from harness import BenchError, Server, bench_servers, machine_info, save_record
from ordering import BulkLoader, connect_redis, orders_stored, write_config

SMALL, BIG = 100, 100_000
RECENT = 10  # queued orders each user placed a moment ago: what the searches find
ARCHIVE_DAYS = 366
TARGET = 1.2
RESULTS = Path(__file__).resolve().parent / "results"


def start_redis(tmp: Path, servers: list[Server]) -> Path:
    from oseod.store.embedded import find_redis_server

    directory = tmp / "redis"
    directory.mkdir()
    socket = directory / "redis.sock"
    servers.append(Server("redis-server", [find_redis_server(), "--port", "0", "--unixsocket", str(socket),
                                           "--unixsocketperm", "700", "--dir", str(directory), "--save", "",
                                           "--appendonly", "no"], directory / "redis.log", directory))
    deadline = time.monotonic() + 20
    while not socket.exists():
        if not servers[-1].alive() or time.monotonic() > deadline:
            raise BenchError("redis-server did not start")
        time.sleep(0.05)
    connect_redis(socket).ping()
    return socket


def fill(socket: Path, config_path: Path, owner: str, count: int) -> None:
    redis = connect_redis(socket)
    now = time.time()
    started = time.monotonic()

    def progress(done: int) -> None:
        print(f"  {owner}: {done} of {count} orders stored ({time.monotonic() - started:.0f} s)", flush=True)

    BulkLoader(redis, config_path, owner).load(count, now - ARCHIVE_DAYS * 86400, now - 86400,
                                                 progress if count >= 10_000 else None)
    stored = orders_stored(redis, owner)
    if stored != count:
        raise BenchError(f"{owner} has {stored} orders stored, not {count}")


def renderer() -> tuple[str, Any]:
    try:
        from oseod.odata import entities  # type: ignore[attr-defined]

        return "oseod.odata.entities.production_order", lambda order: entities.production_order(order, keep_days=30)
    except (ImportError, AttributeError):
        from oseod.odata.ids import order_uuid
        from oseod.odata.values import JOB_STATUS_OF, iso_time, odata_priority

        def render(order: Any) -> dict[str, Any]:
            return {"Id": order_uuid(order.order_id), "Name": order.spec.reference,
                    "Status": JOB_STATUS_OF[order.status.status], "SubmissionDate": iso_time(order.created_at),
                    "Priority": odata_priority(order.spec.priority)}

        return "the bench's own (Id, Name, Status, SubmissionDate, Priority)", render


async def run(socket: Path, config_path: Path, big: int, requests: int) -> dict[str, Any]:
    from twisted.internet import reactor

    from oseod.auth.account import Account
    from oseod.config import load_config
    from oseod.core.ordering import OrderingService
    from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderType, Priority
    from oseod.odata import edm
    from oseod.odata.ids import order_uuid
    from oseod.odata.query import parse_list_query
    from oseod.odata.search import list_orders
    from oseod.odata.values import iso_time
    from oseod.store.connection import Redis, RedisAddress
    from oseod.store.orders import OrderStore

    config = load_config(str(config_path), [])
    redis = Redis(RedisAddress(path=str(socket)))
    await redis.connect()
    store = OrderStore(redis)
    service = OrderingService(store, config, reactor)  # no dispatcher: the recent orders stay queued
    render_name, render = renderer()
    recent_since = time.time()
    first: dict[str, str] = {}
    for owner in ("small", "big"):
        for n in range(RECENT):
            spec = OrderSpec(OrderType.PRODUCT_ORDER, reference=f"recent-{n}",
                             priority=Priority.FAST_TRACK if n % 2 else None,
                             items=(ItemSpec("1", product_id=f"urn:oseod:demo:recent-{n}",
                                             collection_id="urn:oseod:demo"),))
            order = await service.submit(Account(owner), spec, Notification())
            first.setdefault(owner, order.order_id)
    budget = config.odata.search_budget

    def queries(owner: str) -> list[tuple[str, dict[str, str], int, int | None]]:
        """(label, options, rows expected, count expected (None: not asked))."""
        archive = SMALL if owner == "small" else big
        return [
            ("(no filter) ($count, $top=10)", {"$count": "true", "$top": "10"}, 10, archive + RECENT),
            ("Status eq 'queued' ($count, $top=10)",
             {"$filter": "Status eq 'queued'", "$count": "true", "$top": "10"}, RECENT, RECENT),
            ("Status eq 'queued' and Priority gt 50",
             {"$filter": "Status eq 'queued' and Priority gt 50", "$top": "10"}, RECENT // 2, None),
            ("SubmissionDate ge <recent> ($count)",
             {"$filter": f"SubmissionDate ge {iso_time(recent_since - 1)}", "$count": "true"}, RECENT, RECENT),
            ("Status in ('queued','in_progress') and contains(Name,'recent')",
             {"$filter": "Status in ('queued','in_progress') and contains(Name,'recent')"}, RECENT, None),
            ("Id eq <uuid> ($count, $top=1000: the LTA poll)",
             {"$filter": f"Id eq {order_uuid(first[owner])}", "$count": "true", "$top": "1000"}, 1, 1),
            ("Status eq 'completed' ($count, $top=10)",
             {"$filter": "Status eq 'completed'", "$count": "true", "$top": "10"}, 10, archive),
            # the "latest orders" page: read newest first, only as far as the page needs
            ("$orderby=SubmissionDate desc, $top=10", {"$orderby": "SubmissionDate desc", "$top": "10"}, 10, None),
        ]

    async def once(owner: str, options: dict[str, str]) -> tuple[float, Any]:
        started = time.perf_counter()
        query = parse_list_query(options, edm.PRODUCTION_ORDER, page_size=config.odata.page_size)
        page = await list_orders(service, Account(owner), query, render=render, budget=budget)
        return time.perf_counter() - started, page

    rows = []
    for n, (label, *_) in enumerate(queries("small")):
        times: dict[str, list[float]] = {"small": [], "big": []}
        for owner in ("small", "big"):  # warm-up, and the answers checked
            _, owner_options, expected_rows, expected_count = queries(owner)[n]
            for _ in range(20):
                _, page = await once(owner, owner_options)
            if len(page.rows) != expected_rows or page.count != expected_count:
                raise BenchError(f"{label} for {owner}: {len(page.rows)} rows, count {page.count}; "
                                 f"expected {expected_rows}, {expected_count}")
        options = {owner: queries(owner)[n][1] for owner in ("small", "big")}
        for k in range(requests):
            # One request each in turn, the first of the pair alternating: a
            # burst of other work on the machine weighs on both alike.
            for owner in (("small", "big") if k % 2 else ("big", "small")):
                spent, _ = await once(owner, options[owner])
                times[owner].append(spent)
        small_ms = statistics.median(times["small"]) * 1000
        big_ms = statistics.median(times["big"]) * 1000
        rows.append({"query": label, "small_ms": small_ms, "big_ms": big_ms, "ratio": big_ms / small_ms})
    await redis.close()
    return {"render": render_name, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=BIG, help="orders of the big user (default 10^5)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per user and query")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/odata_search-*.json")
    args = parser.parse_args()
    with bench_servers("odata-search") as (servers, tmp):
        config_path = tmp / "oseod.toml"
        write_config(config_path)
        socket = start_redis(tmp, servers)
        started = time.monotonic()
        print(f"filling Redis: {SMALL} and {args.big} archived orders ...", flush=True)
        fill(socket, config_path, "small", SMALL)
        fill(socket, config_path, "big", args.big)
        print(f"filled in {time.monotonic() - started:.0f} s", flush=True)

        from twisted.internet import defer, task

        result: dict[str, Any] = {}

        async def measure(reactor: Any) -> None:
            result.update(await run(socket, config_path, args.big, args.requests))

        try:
            task.react(lambda reactor: defer.ensureDeferred(measure(reactor)))
        except SystemExit as e:
            if e.code:
                raise BenchError(f"the measurement failed (exit {e.code}): see above") from None
        rows = result["rows"]
        print(f"\nOData $filter search, median ms per request (rows rendered by {result['render']}):")
        print(f"{'query':<66} {'10^2':>8} {f'{args.big:.0e}'.replace('e+0', 'e'):>8} {'ratio':>6}")
        for row in rows:
            print(f"{row['query']:<66} {row['small_ms']:8.2f} {row['big_ms']:8.2f} {row['ratio']:6.2f}")
        worst = max(rows, key=lambda r: r["ratio"])
        verdict = "ok" if worst["ratio"] <= TARGET else "OVER"
        print(f"\nratio (10^5 ÷ 10^2), worst query: {worst['ratio']:.2f} (target ≤ {TARGET}): {verdict}"
              f"  [{worst['query']}]")
        record = {"kind": "odata_search", "small": SMALL, "big": args.big, "recent": RECENT,
                  "requests": args.requests, "render": result["render"], "rows": rows,
                  "worst_ratio": worst["ratio"], "target": TARGET, "machine": machine_info(),
                  "loadavg": os.getloadavg()}
        if not args.no_save:
            save_record(RESULTS, "odata_search", record)


if __name__ == "__main__":
    main()
