"""
Status call-backs: how many per second oseod delivers to a client on
loopback, and what statusNotification All adds to the cost of a Submit.

1. Call-backs/s. A call-back receiver (bench/callback_receiver.py, its own
   process: every POST acknowledged with a SubmitResponseAck, every arrival
   timed) and one daemon that processes its orders (default [processing],
   the demo collection's dummy processor, [notifications] allowed_networks
   loopback, [orders] max_active_items_per_user lifted). ORDERS one-item
   orders with statusNotification All and wsa:ReplyTo the receiver are
   submitted as fast as a few keep-alive connections allow (not measured);
   each makes two call-backs, InProduction and Completed. Reported:
   delivered/s from the first arrival to the last (target >= 1,000), the
   same while the engine was processing and after it was done, duplicates
   (distinct wsa:MessageIDs) and the order of arrival per order.
2. The receiver's own ceiling: wrk POSTing the body and Content-Type of a
   real call-back straight at it, keep-alive and with a new connection per
   request (as oseod sends), so the rate above reads against it.
3. Submit cost of All: wrk Submit of a 10-item order (bench/ordering.py's
   body) with statusNotification None and with All (wsa:MessageID and
   wsa:ReplyTo headers) against a front daemon ([processing] workers = 0):
   req/s All / None, target >= 0.8. Nothing changes status after the
   SubmitAck there, so no call-back is due during the load: the ratio is
   the cost of the Submit itself.

Loopback only; every process started here is stopped on exit, Ctrl-C or
error. Run it with ``make bench-callbacks`` (or ``.venv/bin/python
bench/callbacks.py --help``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import submit_payload as small_payload
from harness import (
    HERE,
    BenchError,
    BenchRun,
    PythonLoad,
    Server,
    Target,
    Wrk,
    add_run_arguments,
    check_answer,
    machine_info,
    reported,
    rounded,
    start_oseod,
    stop_all,
    wait_for,
)
from ordering import (
    ITEMS_PER_ORDER,
    SOAP12_CONTENT_TYPE,
    CpuMeter,
    LoadRow,
    RedisStats,
    SequentialClient,
    add_user,
    connect_redis,
    envelope,
    measure_load,
    print_loads,
    submit_once,
    submit_payload,
    verdict,
    wait_for_aof_rewrite,
    write_config,
)

WSA = "http://www.w3.org/2005/08/addressing"
USER = "bench-callbacks"
CALLBACKS_PATH = "/callbacks"  # the call-backs measured
WARMUP_PATH = "/warmup"  # the one order that checks the set-up first
CEILING_PATH = "/ceiling"  # wrk straight at the receiver
SUBMIT_PATH = "/submit-cost"  # the ReplyTo of the Submit load (nothing may arrive there)
STATUSES = ["InProduction", "Completed"]  # each order's call-backs, in this order
STALL_AFTER = 30.0  # seconds without a new call-back after which the wait ends
WAIT_TIMEOUT = 900.0  # at most, for all call-backs
POLL = 0.05
IDLE_GAP = 0.1  # seconds between two arrivals counted as the receiver waiting

TARGET_RATE = 1000.0  # call-backs delivered per second, at least
TARGET_RATIO = 0.8  # Submit All / None req/s, at least


# --- requests --------------------------------------------------------------------------


def with_addressing(body: bytes, message_id: str, reply_to: str) -> bytes:
    """``body`` (ordering.envelope's) with the wsa:MessageID and wsa:ReplyTo an
    asynchronous Submit needs."""
    header = (f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>'
              f'<wsa:ReplyTo xmlns:wsa="{WSA}"><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo>')
    if body.count(b"</soap:Header>") != 1:
        raise BenchError("ordering.envelope changed: cannot add the WS-Addressing headers")
    return body.replace(b"</soap:Header>", header.encode() + b"</soap:Header>")


def notify_all(payload: str) -> str:
    none = "<oseo:statusNotification>None</oseo:statusNotification>"
    if payload.count(none) != 1:
        raise BenchError("the Submit payload changed: cannot ask for statusNotification All")
    return payload.replace(none, "<oseo:statusNotification>All</oseo:statusNotification>")


def write_daemon_config(path: Path, workers: int | None, send: bool = True) -> None:
    """bench/ordering.py's (demo collection, max_active_items_per_user lifted),
    call-backs to loopback allowed; ``send`` False: the daemon queues its
    call-backs and leaves the sending to another daemon."""
    write_config(path, workers)
    with path.open("a") as f:
        f.write('\n[notifications]\nallowed_networks = ["127.0.0.0/8"]\n')
        if not send:
            f.write("send = false\n")


# --- the receiver ----------------------------------------------------------------------


class Receiver:
    def __init__(self, server: Server, url: str) -> None:
        self.server = server
        self.url = url

    def _get(self, path: str) -> tuple[str, bytes]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
                return response.headers.get("Content-Type", ""), response.read()
        except OSError as e:
            raise BenchError(f"the call-back receiver: GET {path} failed: {e}\n{self.server.log_tail()}") from None

    def count(self, path: str) -> dict[str, Any]:
        counts = json.loads(self._get("/count")[1])
        return counts.get(path) or {"messages": 0, "distinct_message_ids": 0, "first": None, "last": None}

    def records(self, path: str) -> list[tuple[float, str, str, str]]:
        """(arrival, wsa:MessageID, orderId, status), in the order of arrival."""
        return [tuple(r) for r in json.loads(self._get(f"/records?path={path}")[1])]  # type: ignore[misc]

    def last(self) -> tuple[str, bytes]:
        return self._get("/last")


def start_receiver(tmp: Path, started: list[Server]) -> Receiver:
    port_file = tmp / "receiver.url"
    server = Server("call-back receiver", [sys.executable, str(HERE / "callback_receiver.py"),
                                           "--port-file", str(port_file)], tmp / "receiver.log", cwd=tmp)
    started.append(server)
    url = wait_for("its URL file", server, lambda: port_file.read_text().strip() if port_file.exists() else None)
    return Receiver(server, url)


# --- the run ---------------------------------------------------------------------------


@dataclass
class Run(BenchRun):
    """What the parts of one run share."""

    servers: list[Server] = field(default_factory=list)
    receiver: Any = None
    password: str = ""
    loads: dict[str, LoadRow] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)  # part 1's figures, for the JSON record
    submit: dict[str, Any] = field(default_factory=dict)  # part 3's
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)  # py-spy summary lines
    redis_clients: list[Any] = field(default_factory=list)

    @property
    def twistd(self) -> Path:
        return Path(self.args.twistd)

    @property
    def oseoctl(self) -> Path:
        return self.twistd.parent / "oseoctl"

    def announce(self, target: Target) -> None:
        print(f"{target.label}: warm-up {self.warmup:.0f} s, then {self.duration:.0f} s of load ...", flush=True)

    def daemon(self, subdir: str, workers: int | None, send: bool = True) -> tuple[Server, str, Any, int]:
        """A daemon on TMP/SUBDIR with its user; (server, /oseo URL, redis-py client, redis-server pid)."""
        config = self.tmp / f"{subdir}.toml"
        write_daemon_config(config, workers, send)
        server, url = start_oseod(self.twistd, self.tmp, self.servers, subdir=subdir,
                                  oseod_options=["--config", str(config)])
        data = self.tmp / subdir / "data"
        add_user(self.oseoctl, data, USER, self.password)
        redis = connect_redis(data / "redis.sock")
        self.redis_clients.append(redis)
        return server, f"{url}/oseo", redis, int((data / "redis" / "redis.pid").read_text())


def fail(e: BenchError, *servers: Server | None) -> BenchError:
    return BenchError("\n".join([str(e), *(s.log_tail() for s in servers if s is not None)]))


# --- part 1: call-backs per second -------------------------------------------------------


def submit_all(endpoint: str, bodies: list[bytes], connections: int) -> list[str]:
    """Every body POSTed, ``connections`` keep-alive connections at once; the
    order ids, in the order of ``bodies``."""
    ids: list[str] = [""] * len(bodies)

    def work(first: int) -> None:
        client = SequentialClient(endpoint)
        try:
            for n in range(first, len(bodies), connections):
                _, status, answer = client.post(bodies[n])
                match = re.search(rb"<(?:\w+:)?orderId>([^<]+)<", answer)
                if status != 200 or b"SubmitAck" not in answer or match is None:
                    raise BenchError(f"Submit answered {status}, expected 200 with a SubmitAck; body starts:\n"
                                     f"{answer[:800]!r}")
                ids[n] = match.group(1).decode()
        except OSError as e:
            raise BenchError(f"Submit failed: {e}") from None
        finally:
            client.close()

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for done in [pool.submit(work, k) for k in range(min(connections, len(bodies)))]:
            done.result()
    return ids


def order_body(run: Run, n: int, path: str) -> bytes:
    return with_addressing(envelope(USER, run.password, notify_all(small_payload(n, 1))),
                           f"urn:uuid:bench-callbacks-{n}", f"{run.receiver.url}{path}")


def wait_for_arrivals(receiver: Receiver, path: str, expected: int, daemon: Server, timeout: float) -> int:
    """Until ``expected`` messages came to ``path``; how many came."""
    deadline = time.monotonic() + timeout
    while True:
        count = receiver.count(path)["messages"]
        if count >= expected or time.monotonic() > deadline:
            return int(count)
        if not daemon.alive():
            raise BenchError(f"the daemon exited with status {daemon.process.returncode}")
        time.sleep(POLL)


def outbox_counters(redis: Any) -> dict[str, int]:
    from oseod.store import keys

    return {k: int(v) for k, v in (redis.hgetall(keys.outbox_counters()) or {}).items()}


def callbacks_part(run: Run) -> None:
    from oseod.model.orders import OrderStatus
    from oseod.store import keys

    orders = run.args.orders
    print("call-backs: starting oseod (processing, call-backs to loopback allowed) ...", flush=True)
    backlog = run.args.backlog
    daemon, endpoint, redis, redis_pid = run.daemon("callbacks", None, send=not backlog)
    receiver: Receiver = run.receiver
    sender: Server | None = None
    try:
        # One order first: the whole path works, and the daemon's first
        # call-back (imports, the first connection) is not in the figures.
        submit_once(endpoint, order_body(run, 0, WARMUP_PATH))
        if backlog:
            pass  # its call-backs wait in the outbox with the others' (sent first, to their own path)
        elif wait_for_arrivals(receiver, WARMUP_PATH, 2, daemon, 30) < 2:
            raise BenchError(f"the first order's two call-backs did not arrive within 30 s "
                             f"(receiver: {receiver.count(WARMUP_PATH)})")
        statuses = [r[3] for r in receiver.records(WARMUP_PATH)]
        if not backlog and statuses != STATUSES:
            raise BenchError(f"the first order's call-backs said {statuses}, expected {STATUSES}")
    except BenchError as e:
        raise fail(e, daemon, receiver.server) from None

    bodies = [order_body(run, n, CALLBACKS_PATH) for n in range(1, orders + 1)]
    expected = len(STATUSES) * orders
    cpu = CpuMeter({"daemon": daemon.process.pid, "redis": redis_pid, "receiver": receiver.server.process.pid})
    stats = RedisStats(redis)
    counters_start = outbox_counters(redis)
    wall_offset = time.time() - time.monotonic()
    print(f"call-backs: submitting {orders} one-item orders with statusNotification All over "
          f"{run.args.submitters} connections ...", flush=True)
    cpu_start, stats_start = cpu.read(), stats.read()
    began = time.monotonic()
    spy: subprocess.Popen[bytes] | None = None
    try:
        ids = submit_all(endpoint, bodies, run.args.submitters)
        submitted = time.monotonic()
        if run.args.py_spy is not None and run.args.py_spy_at == "submitted":
            spy = start_py_spy(run, daemon)
        print(f"call-backs: {orders} orders submitted in {submitted - began:.1f} s; waiting for the "
              f"{expected} call-backs ...", flush=True)
        processed_seen: float | None = None
        cpu_processed: dict[str, float] = {}
        stats_processed: dict[str, int] = {}
        last_count, last_change = -1, time.monotonic()
        while True:
            now = time.monotonic()
            if processed_seen is None and int(redis.get(keys.active_items(USER)) or 0) == 0:
                if backlog:
                    # Every call-back is queued now: a daemon that only sends
                    # (no processing, no Submits) drains the outbox.
                    print("call-backs: every order final, their call-backs queued; starting a daemon "
                          "that sends them ...", flush=True)
                    sender = start_sender(run)
                    cpu = CpuMeter({"daemon": daemon.process.pid, "redis": redis_pid,
                                    "receiver": receiver.server.process.pid, "sender": sender.process.pid})
                    now = time.monotonic()
                processed_seen, cpu_processed, stats_processed = now, cpu.read(), stats.read()
                if run.args.py_spy is not None and run.args.py_spy_at == "processed":
                    spy = start_py_spy(run, sender or daemon)
            count = receiver.count(CALLBACKS_PATH)["messages"]
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected and processed_seen is not None:
                break
            if now - last_change > STALL_AFTER or now - began > WAIT_TIMEOUT:
                run.notes.append(f"call-backs: stopped waiting with {count} of {expected} arrived "
                                 f"({now - last_change:.0f} s without a new one)")
                break
            if not daemon.alive():
                raise BenchError(f"the daemon exited with status {daemon.process.returncode}")
            time.sleep(POLL)
        cpu_end, stats_end, ended = cpu.read(), stats.read(), time.monotonic()
        if processed_seen is None:
            processed_seen, cpu_processed, stats_processed = ended, cpu_end, stats_end
        # The last order change the engine made (Completed of the last order):
        # when the processing was done, on the monotonic clock the receiver uses.
        # (each order is in one status index: the newest of their last entries)
        newest = [row for status in OrderStatus
                  for row in redis.zrange(keys.orders_in_status(USER, status.value), -1, -1, withscores=True)]
        processed = max(float(row[1]) for row in newest) - wall_offset if newest else processed_seen
        records = receiver.records(CALLBACKS_PATH)
        counters = {k: v - counters_start.get(k, 0) for k, v in outbox_counters(redis).items()}
    except BaseException as e:
        if spy is not None:  # not waited for: Ctrl-C or an error ends the run now
            spy.kill()
            spy.wait()
        if isinstance(e, BenchError):
            raise fail(e, daemon, receiver.server) from None
        raise
    if spy is not None:
        finish_py_spy(run, spy)

    figures = analyse(records, ids, began, submitted, processed)
    spent = CpuMeter.spent(cpu_start, cpu_end)
    after_spent = CpuMeter.spent(cpu_processed, cpu_end)
    after_seen = sum(1 for r in records if r[0] > processed_seen)
    figures.update({
        "orders": orders, "submit_connections": run.args.submitters,
        "outbox_counters": counters,
        "cpu_ms_per_callback_whole_run": {k: round(1000 * v / max(1, len(records)), 3) for k, v in spent.items()},
        "callbacks_after_processing_seen": after_seen,
        # Of one core, while only the outbox worked: how much of the time it was busy at all.
        "cpu_share_after_processing": ({k: v / (ended - processed_seen) for k, v in after_spent.items()
                                        if not k.endswith(" kernel")} if ended > processed_seen + 1 else {}),
        "cpu_ms_per_callback_after_processing": ({k: round(1000 * v / after_seen, 3) for k, v in after_spent.items()}
                                                 if after_seen else {}),
        "redis_calls_per_callback_after_processing": (RedisStats.per_request(stats_processed, stats_end, after_seen)
                                                      if after_seen else {}),
        "redis_calls_per_order_whole_run": RedisStats.per_request(stats_start, stats_end, orders),
    })
    run.callbacks = figures
    run.timings["call-backs"] = time.monotonic() - began
    content_type, body = receiver.last()
    if b"SubmitResponse" not in body:
        raise fail(BenchError(f"the receiver's last body is not a SubmitResponse: {body[:300]!r}"),
                   receiver.server)
    run.callbacks["sample_body_bytes"] = len(body)
    run.callbacks["sample_content_type"] = content_type
    print("call-backs: stopping those daemons ...", flush=True)
    if sender is not None:
        sender.stop()
    daemon.stop()


def start_sender(run: Run) -> Server:
    """A daemon on the call-back daemon's Redis that processes nothing and
    only sends the outbox's messages."""
    config = run.tmp / "sender.toml"
    write_daemon_config(config, workers=0)
    if run.args.per_destination:
        with config.open("a") as f:
            f.write(f"per_destination = {run.args.per_destination}\nconcurrency = {4 * run.args.per_destination}\n")
    socket_path = run.tmp / "callbacks" / "data" / "redis.sock"
    server, _ = start_oseod(run.twistd, run.tmp, run.servers, subdir="sender",
                            oseod_options=["--config", str(config), "--redis", f"unix://{socket_path}"])
    return server


def analyse(records: list[tuple[float, str, str, str]], ids: list[str], began: float, submitted: float,
            processed: float) -> dict[str, Any]:
    """The figures of part 1 from the receiver's arrivals (monotonic clock)."""
    times = [r[0] for r in records]
    n = len(times)
    first, last = (times[0], times[-1]) if times else (math.nan, math.nan)
    per_order: dict[str, list[str]] = defaultdict(list)
    for _, _, order_id, status in records:
        per_order[order_id].append(status)
    submitted_ids = set(ids)
    in_order = sum(1 for i in ids if per_order.get(i) == STATUSES)
    reversed_ = sum(1 for i in ids if per_order.get(i) == STATUSES[::-1])
    counts = Counter(len(per_order.get(i, [])) for i in ids)
    distinct = len({r[1] for r in records})
    before = sum(1 for t in times if t <= processed)
    after = n - before

    def rate(count: int, seconds: float) -> float:
        return count / seconds if seconds > 0 else math.nan

    intervals = [b - a for a, b in zip(times, times[1:])]
    idle = [gap for gap in intervals if gap > IDLE_GAP]
    seconds = math.ceil(last - began) if n else 0
    per_second = [0] * max(0, seconds)
    for t in times:
        per_second[min(len(per_second) - 1, int(t - began))] += 1
    return {
        "expected": len(STATUSES) * len(ids), "received": n, "distinct_message_ids": distinct,
        "duplicates": n - distinct,
        "orders_in_order": in_order, "orders_reversed": reversed_,
        "orders_by_callbacks_received": {str(k): v for k, v in sorted(counts.items())},
        "unexpected_orders": len(set(per_order) - submitted_ids),
        "unexpected_statuses": sorted({s for r in records for s in [r[3]] if s not in STATUSES}),
        "submit_s": submitted - began, "submit_orders_per_s": rate(len(ids), submitted - began),
        "processing_done_s": processed - began, "first_arrival_s": first - began, "last_arrival_s": last - began,
        "window_s": last - first,
        "rate": rate(n - 1, last - first),  # the target's figure: first arrival to last
        "rate_while_processing": rate(before - 1, processed - first) if before > 1 else math.nan,
        "callbacks_after_processing": after,
        "rate_after_processing": rate(after, last - processed) if after else math.nan,
        "lag_after_processing_s": max(0.0, last - processed),
        "idle_gaps": len(idle), "idle_gaps_s": sum(idle), "longest_gap_s": max(intervals, default=math.nan),
        "per_second": per_second,
    }


# --- py-spy ------------------------------------------------------------------------------


def start_py_spy(run: Run, daemon: Server) -> subprocess.Popen[bytes]:
    out = run.tmp / "py-spy.txt"
    argv = [str(run.args.py_spy), "record", "-p", str(daemon.process.pid), "-d", str(run.args.py_spy_seconds),
            "-f", "raw", "-o", str(out), "--nonblocking"]
    print(f"call-backs: py-spy on the daemon for {run.args.py_spy_seconds} s ...", flush=True)
    with open(run.tmp / "py-spy.log", "wb") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)


def finish_py_spy(run: Run, spy: subprocess.Popen[bytes]) -> None:
    try:
        spy.wait(run.args.py_spy_seconds + 30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    out = run.tmp / "py-spy.txt"
    if not out.exists():
        log = (run.tmp / "py-spy.log").read_text(errors="replace")[-600:]
        run.notes.append(f"py-spy wrote no profile: {log.strip()}")
        return
    run.args.results_dir.mkdir(parents=True, exist_ok=True)
    kept = run.args.results_dir / f"callbacks-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.py-spy.txt"
    shutil.copyfile(out, kept)
    run.profile = summarise_py_spy(out) + [f"(raw stacks: {kept})"]


# Frames every stack of the reactor thread goes through: left out of the inclusive list.
_PLUMBING = ("(twistd)", "twisted/scripts/", "twisted/application/", "twisted/internet/base.py",
             "twisted/internet/epollreactor.py", "twisted/internet/posixbase.py", "twisted/python/log.py",
             "twisted/python/context.py", "twisted/internet/defer.py")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def summarise_py_spy(path: Path, top: int = 25) -> list[str]:
    """Self and inclusive samples per function from py-spy's raw (collapsed) stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            name = f"{match['function']} ({_short(match['file'])})" if match else frame
            frames.append(name)
        if frames:
            own[frames[-1]] += count
        for name in set(frames):
            if not any(part in name for part in _PLUMBING):
                inclusive[name] += count
    if not total:
        return ["py-spy: no samples"]
    lines = [f"py-spy: {total} samples of the daemon (idle excluded)", f"  top {top} by own time:"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in own.most_common(top)]
    lines.append(f"  top {top} by inclusive time (reactor and Deferred plumbing left out):")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    return lines


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# --- part 2: the receiver's ceiling ------------------------------------------------------


def ceiling_part(run: Run) -> None:
    receiver: Receiver = run.receiver
    content_type, body = receiver.last()
    label = f"{len(body)} B SubmitResponse"
    common = dict(method="POST", body=body, content_type=content_type, expect=b"SubmitResponseAck")
    targets = [Target("receiver keep-alive", f"receiver, wrk straight at it, keep-alive ({label})",
                      f"{receiver.url}{CEILING_PATH}", **common)]  # type: ignore[arg-type]
    if isinstance(run.load, Wrk):
        targets.append(Target("receiver new connections",
                              f"receiver, wrk, Connection: close (a connection per call-back, as oseod)",
                              f"{receiver.url}{CEILING_PATH}", headers=(("Connection", "close"),),
                              **common))  # type: ignore[arg-type]
    else:
        run.notes.append("receiver ceiling with a connection per request: needs wrk, not measured")
    cpu = CpuMeter({"receiver": receiver.server.process.pid})
    for target in targets:
        try:
            check_answer(target)
        except BenchError as e:
            raise fail(e, receiver.server) from None
        run.announce(target)
        row, _, _ = measure_load(run.load, target, run.duration, run.warmup, run.tmp, cpu)
        run.loads[target.key] = row
    counted = receiver.count(CEILING_PATH)
    run.notes.append(f"receiver ceiling: it counted {counted['messages']} POSTs at {CEILING_PATH} "
                     f"({counted['distinct_message_ids']} distinct MessageIDs: the same body every time)")


# --- part 3: the Submit cost of statusNotification All -----------------------------------


def submit_part(run: Run) -> None:
    from oseod.store import keys

    print("submit: starting the front daemon ([processing] workers = 0) ...", flush=True)
    daemon, endpoint, redis, redis_pid = run.daemon("front", 0)
    receiver: Receiver = run.receiver
    none_body = envelope(USER, run.password, submit_payload("bench"))
    all_body = with_addressing(envelope(USER, run.password, notify_all(submit_payload("bench"))),
                               "urn:uuid:bench-submit", f"{receiver.url}{SUBMIT_PATH}")
    targets = {
        "None": Target("Submit None", f"oseod Submit, {ITEMS_PER_ORDER} items, statusNotification None "
                                      f"({len(none_body)} B)", endpoint, "POST", none_body, SOAP12_CONTENT_TYPE,
                       expect=b"SubmitAck"),
        "All": Target("Submit All", f"oseod Submit, {ITEMS_PER_ORDER} items, statusNotification All + "
                                    f"wsa:MessageID, wsa:ReplyTo ({len(all_body)} B)", endpoint, "POST", all_body,
                      SOAP12_CONTENT_TYPE, expect=b"SubmitAck"),
    }
    try:
        for target in targets.values():
            check_answer(target)
        # An All order as stored: its call-backs would go to the receiver.
        order_id = submit_once(endpoint, all_body)
        stored = redis.hgetall(keys.order(order_id))  # the notification whole, or in chunks nt/0, nt/1, ...
        notification = json.loads(stored.get("notification") or "".join(
            stored[f"nt/{n}"] for n in range(len(stored)) if f"nt/{n}" in stored) or "{}")
        if f"{receiver.url}{SUBMIT_PATH}" not in json.dumps(notification):
            raise BenchError(f"order {order_id} (statusNotification All) was stored with the notification "
                             f"{notification}, without the receiver's address")
    except BenchError as e:
        raise fail(e, daemon) from None
    cpu = CpuMeter({"daemon": daemon.process.pid, "redis": redis_pid})
    stats = RedisStats(redis)
    sequence = [("None", "All") if r % 2 == 0 else ("All", "None") for r in range(run.args.rounds)]
    rows: dict[str, list[LoadRow]] = {"None": [], "All": []}

    def settle() -> None:  # no append-only-file rewrite (after the load before) in the measured run
        wait_for_aof_rewrite(redis)

    for r, pair in enumerate(sequence, 1):
        for mode in pair:
            target = targets[mode]
            run.announce(target)
            row, _, _ = measure_load(run.load, target, run.duration, run.warmup, run.tmp, cpu, stats,
                                     before_measure=settle)
            row.result.label = f"{row.result.label}, round {r}"
            row.result.key = f"{target.key} {r}"
            rows[mode].append(row)
            run.loads[row.result.key] = row
            if not daemon.alive():
                raise fail(BenchError(f"the front daemon exited with status {daemon.process.returncode}"), daemon)
    time.sleep(2.5)  # the outbox looks every second: whatever became due has been taken by now
    arrived = receiver.count(SUBMIT_PATH)["messages"]
    due = int(redis.zcard(keys.outbox_due()))
    run.notes.append(f"Submit: front daemon, so no order changes status after its SubmitAck and no call-back is "
                     f"due during the load (the ratio is the Submit's own cost): {arrived} call-backs arrived "
                     f"at the All orders' ReplyTo, {due} outbox queues due")
    if arrived or due:
        run.notes.append("Submit: call-backs were due during the Submit load: the All rows include sending them")

    def mean(mode: str, pick: Any) -> float:
        return sum(pick(row) for row in rows[mode]) / len(rows[mode])

    def cpu_total(row: LoadRow) -> float:
        return sum(v for k, v in row.cpu_ms_per_request.items() if not k.endswith(" kernel"))

    run.submit = {
        "rounds": run.args.rounds, "order": [list(p) for p in sequence],
        "rps_none": mean("None", lambda row: row.result.rps), "rps_all": mean("All", lambda row: row.result.rps),
        "cpu_ms_per_request_none": mean("None", cpu_total), "cpu_ms_per_request_all": mean("All", cpu_total),
        "callbacks_arrived": arrived, "outbox_queues_due": due,
    }
    daemon.stop()


# --- report ------------------------------------------------------------------------------


def ratios_of(run: Run) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    if run.callbacks:
        ratios["callbacks"] = run.callbacks["rate"]
        for key in ("receiver new connections", "receiver keep-alive"):
            if key in run.loads:
                ratios[f"call-backs/s / {key} req/s"] = run.callbacks["rate"] / run.loads[key].result.rps
    if run.submit:
        ratios["submit"] = run.submit["rps_all"] / run.submit["rps_none"]
        ratios["Submit CPU per request None / All"] = (run.submit["cpu_ms_per_request_none"] /
                                                       run.submit["cpu_ms_per_request_all"])
    return ratios


def verdicts_of(ratios: dict[str, float | None]) -> dict[str, str]:
    found = {}
    if "callbacks" in ratios:
        found["callbacks"] = verdict(ratios["callbacks"], TARGET_RATE, True)
    if "submit" in ratios:
        found["submit"] = verdict(ratios["submit"], TARGET_RATIO, True)
    return found


def _cpu(row: dict[str, float]) -> str:
    return " + ".join(f"{v:.2f} (k {row.get(f'{k} kernel', math.nan):.2f})" for k, v in row.items()
                      if not k.endswith(" kernel"))


def _calls(calls: dict[str, float], top: int = 8) -> str:
    return ", ".join(f"{name} {n:g}" for name, n in list(calls.items())[:top]) or "none"


def report(run: Run, ratios: dict[str, float | None]) -> None:
    info = run.info
    print()
    print(f"machine: nproc {info['nproc']} ({info['cpus']} CPUs), {info['system']}, {info['python']}, "
          f"Twisted {info['twisted']}, Klein {info['klein']}, oseod {info['oseod']}")
    print(f"load:    {run.load.description}; {run.duration:.0f} s per row after {run.warmup:.0f} s warm-up, "
          f"127.0.0.1; client and servers share this machine")
    print(f"loadavg: {' '.join(f'{x:.2f}' for x in run.loadavg)} at the start")
    c = run.callbacks
    if c:
        print()
        print(f"call-backs: {c['orders']} one-item orders, statusNotification All, wsa:ReplyTo the receiver; one "
              f"daemon that processes them (default [processing], the demo collection's dummy processor)")
        print(f"  Submits (not measured): {c['orders']} in {c['submit_s']:.1f} s over {c['submit_connections']} "
              f"connections ({c['submit_orders_per_s']:.0f} orders/s); every order final "
              f"{c['processing_done_s']:.1f} s after the first Submit")
        print(f"  received {c['received']} of {c['expected']} call-backs; distinct wsa:MessageIDs "
              f"{c['distinct_message_ids']}, duplicates {c['duplicates']}; orders with InProduction then Completed "
              f"{c['orders_in_order']} of {c['orders']}, reversed {c['orders_reversed']}, call-backs per order "
              f"{c['orders_by_callbacks_received']}; outbox counters {c['outbox_counters'] or 'none'}")
        print(f"  arrivals: first {c['first_arrival_s']:.2f} s, last {c['last_arrival_s']:.2f} s after the first "
              f"Submit; window {c['window_s']:.2f} s")
        print(f"  {'delivered/s, first to last arrival':<50} {c['rate']:>8.0f}")
        if math.isnan(c["rate_while_processing"]):
            print(f"  {'delivered/s while the engine processed':<50} {'n/a':>8}  (fewer than two call-backs "
                  f"arrived before the last order was final)")
        else:
            print(f"  {'delivered/s while the engine processed':<50} {c['rate_while_processing']:>8.0f}")
        if c["callbacks_after_processing"]:
            print(f"  {'delivered/s after the processing was done':<50} {c['rate_after_processing']:>8.0f}  "
                  f"({c['callbacks_after_processing']} call-backs still to go when the last order was final; the "
                  f"last arrived {c['lag_after_processing_s']:.1f} s later)")
        else:
            print("  no call-back arrived after the processing was done: the outbox kept up with the engine")
        print(f"  gaps of more than {1000 * IDLE_GAP:.0f} ms between two arrivals: {c['idle_gaps']}, "
              f"{c['idle_gaps_s']:.1f} s of the {c['window_s']:.1f} s window; the longest {c['longest_gap_s']:.2f} s")
        print(f"  call-backs per second since the first Submit: {' '.join(str(n) for n in c['per_second'])}")
        print(f"  CPU ms per call-back, whole run (Submit and processing included), daemon + redis + receiver: "
              f"{_cpu(c['cpu_ms_per_callback_whole_run'])}")
        if c["cpu_ms_per_callback_after_processing"]:
            print(f"  CPU ms per call-back after the processing (the outbox alone), daemon + redis + receiver: "
                  f"{_cpu(c['cpu_ms_per_callback_after_processing'])}")
            if c["cpu_share_after_processing"]:
                print("  CPU used after the processing, share of one core: " + ", ".join(
                    f"{k} {100 * v:.0f}%" for k, v in c["cpu_share_after_processing"].items()))
            print(f"  Redis commands per call-back after the processing: "
                  f"{_calls(c['redis_calls_per_callback_after_processing'])}")
        print(f"  Redis commands per order, whole run: {_calls(c['redis_calls_per_order_whole_run'])}")
    if run.loads:
        print_loads(run.loads, "the receiver's; for oseod, the front daemon's + its redis-server's")
    print()
    print(f"{'figure':<50} {'value':>8}  target")
    verdicts = verdicts_of(ratios)
    if "callbacks" in ratios:
        print(f"{'call-backs delivered/s (first to last arrival)':<50} {ratios['callbacks']:>8.0f}  "
              f">= {TARGET_RATE:.0f}  {verdicts['callbacks']}")
    if "submit" in ratios:
        s = run.submit
        label = f"Submit All / None (req/s, mean of {s['rounds']} rounds)"
        print(f"{label:<50} {ratios['submit']:>8.3f}  >= {TARGET_RATIO}  {verdicts['submit']}")
    for name, value in ratios.items():
        if name not in ("callbacks", "submit"):
            print(f"{name:<50} {'n/a' if value is None else f'{value:.3f}':>8}  (for information)")
    for note in run.notes:
        print(f"note: {note}")
    for line in run.profile:
        print(line)


# --- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Status call-backs delivered per second to a loopback receiver, and the Submit cost of "
                    "statusNotification All (ratio to None).")
    parser.add_argument("--orders", type=int, default=2000, help="one-item orders for the call-back rate "
                                                                 "(100 to 100000; two call-backs each)")
    parser.add_argument("--backlog", action=argparse.BooleanOptionalAction, default=True,
                        help="(default) the daemon that processes the orders queues their call-backs and a "
                             "second daemon, started once every order is final, sends them: the outbox's own "
                             "rate; --no-backlog: one daemon processes and sends at once (the rate is then "
                             "the engine's)")
    parser.add_argument("--per-destination", type=int, default=0,
                        help="the sending daemon's [notifications] per_destination (concurrency: 4 times it); "
                             "0: the defaults")
    parser.add_argument("--submitters", type=int, default=8, help="connections submitting them (1 to 64)")
    parser.add_argument("--rounds", type=int, default=2, help="Submit None/All pairs, alternating (1 to 10)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per row (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each (max 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (max 256)")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk if on PATH, else bench/loadgen.py")
    parser.add_argument("--only", action="append", choices=["callbacks", "submit"],
                        help="callbacks: the rate and the receiver's ceiling; submit: the All / None ratio "
                             "(repeatable; default both)")
    parser.add_argument("--py-spy", type=Path, metavar="PATH",
                        help="py-spy executable: record the daemon while it sends the call-backs, print where its "
                             "time goes (distorts that run's rate a little)")
    parser.add_argument("--py-spy-at", choices=["submitted", "processed"], default="processed",
                        help="start recording once the Submits are done, or once every order is final (default)")
    parser.add_argument("--py-spy-seconds", type=int, default=6)
    add_run_arguments(parser)
    args = parser.parse_args()
    args.orders = min(max(args.orders, 100), 100_000)
    args.submitters = min(max(args.submitters, 1), 64)
    args.rounds = min(max(args.rounds, 1), 10)
    parts = set(args.only or ["callbacks", "submit"])

    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and not wrk:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")
    connections = min(max(args.connections, 1), 256)
    load: Wrk | PythonLoad = (Wrk(wrk, connections) if wrk and args.loadgen != "python"
                              else PythonLoad(connections))
    for tool in (args.twistd, args.twistd.parent / "oseoctl"):
        if not tool.exists():
            parser.error(f"{tool} not found: run `make bench-callbacks`, or pass --twistd")
    if args.py_spy is not None and not args.py_spy.exists():
        parser.error(f"{args.py_spy} not found")

    run = Run(args, load, Path(tempfile.mkdtemp(prefix="oseod-bench-callbacks-")), machine_info(), os.getloadavg(),
              duration=min(max(args.duration, 1.0), 60.0), warmup=min(max(args.warmup, 0.0), 10.0))
    run.password = hashlib.sha256(os.urandom(16)).hexdigest()[:24]
    try:
        with reported():
            run.receiver = start_receiver(run.tmp, run.servers)
            if "callbacks" in parts:
                callbacks_part(run)
                ceiling_part(run)
            if "submit" in parts:
                submit_part(run)
    finally:
        for redis in run.redis_clients:
            redis.close()
        stop_all(run.servers)
        internal_errors = _count_internal_errors(run.tmp)
        shutil.rmtree(run.tmp, ignore_errors=True)
    run.timings["total"] = time.monotonic() - run.started_at
    if internal_errors:
        run.notes.append(f"the daemons logged {internal_errors} internal errors (requests in flight when wrk "
                         f"closes its connections end in CancelledError, logged as critical)")

    ratios = ratios_of(run)
    report(run, ratios)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"callbacks-{stamp}.json"
    record.write_text(json.dumps({
        "when": stamp, "machine": run.info, "loadavg_at_start": run.loadavg, "load": load.description,
        "settings": {"duration_s": run.duration, "warmup_s": run.warmup, "orders": args.orders,
                     "submitters": args.submitters, "rounds": args.rounds, "py_spy": args.py_spy is not None},
        "callbacks": rounded(run.callbacks),
        "loads": {k: {**rounded(asdict(v.result)), "cpu_ms_per_request": rounded(v.cpu_ms_per_request),
                      "redis_calls_per_request": v.redis_calls_per_request, "body_bytes": v.body_bytes}
                  for k, v in run.loads.items()},
        "submit": rounded(run.submit),
        "ratios": rounded(ratios), "targets": {"callbacks": TARGET_RATE, "submit": TARGET_RATIO},
        "verdicts": verdicts_of(ratios), "notes": run.notes, "profile": run.profile,
        "timings_s": rounded(run.timings), "internal_errors_logged": internal_errors,
    }, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


def _count_internal_errors(tmp: Path) -> int:
    count = 0
    for log in tmp.glob("*/oseod.log"):
        try:
            count += log.read_text(errors="replace").count("internal error in ")
        except OSError:
            pass
    return count


if __name__ == "__main__":
    sys.exit(main())
