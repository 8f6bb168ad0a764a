"""
The chaos test's invariants, checked after the quiet period: on the orders
in Redis (read from the primary the sentinels name), on the worker's result
files, and on the load client's record of every attempt.

``recount`` rebuilds, from the order hashes alone, what the store's scripts
keep beside them (oseod/store/orders/ and lua/order_*.lua: the per-status item counts in each
order, the owner's unfinished-item counter, the items-per-status totals, and
the sorted-set indexes by owner, status, orderReference, type and
collection) and lists every difference.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oseod.model.orders import OrderStatus
from oseod.store import keys
from oseod.store.jobs import GROUP, PRIORITIES

from chaos_load import ITEMS, Attempt

FINAL = {s.value for s in OrderStatus if s.is_final}
MEMBER_WIDTH = 20


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Window:
    """One chaos event, from the moment it struck to the moment it was
    repaired (the process back, the primary rejoined as a replica)."""

    event: str
    started: float
    repaired: float = 0.0
    note: str = ""
    failures: int = 0  # attempts that did not succeed inside it
    outage: float = 0.0  # from the event to the end of its last failed attempt
    by_outcome: dict[str, int] = field(default_factory=dict)
    ready_503: bool | None = None  # a SIGTERM: whether /ready answered 503 while the daemon drained


@dataclass
class Orders:
    """Every order hash in Redis and its items."""

    orders: dict[str, dict[str, str]]
    items: dict[str, dict[str, str]]  # order id -> item id -> status


def read_orders(redis: Any) -> Orders:
    orders: dict[str, dict[str, str]] = {}
    items: dict[str, dict[str, str]] = {}
    prefix = keys.order("")
    for key in redis.scan_iter(match=prefix + "*", count=1000):
        order_id = key[len(prefix):]
        if ":" in order_id or redis.type(key) != "hash":
            continue
        orders[order_id] = redis.hgetall(key)
        # Layout 3 (its spec in chunks) keeps the items in the order hash.
        fields = orders[order_id] if "p/0" in orders[order_id] else redis.hgetall(keys.order_items(order_id))
        items[order_id] = {name[2:]: _status_name(value) for name, value in fields.items() if name.startswith("s/")}
    return Orders(orders, items)


def _status_name(stored: str) -> str:
    """An item's status as stored: [status, ...] (layout 3) or a StatusInfo object (layout 2)."""
    value = json.loads(stored)
    return str(value[0] if isinstance(value, list) else value["status"])


def _member(order_id: str) -> str:
    return order_id.zfill(MEMBER_WIDTH)


def recount(redis: Any, found: Orders) -> list[str]:
    """Every difference between the hashes and what is kept beside them."""
    wrong: list[str] = []
    expected: dict[str, set[str]] = collections.defaultdict(set)  # index key -> members
    active: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    owners = set()
    for order_id, order in found.orders.items():
        member, owner = _member(order_id), order.get("owner", "")
        owners.add(owner)
        statuses = collections.Counter(found.items.get(order_id, {}).values())
        for status in OrderStatus:
            stored = int(order.get(f"n/{status.value}", 0) or 0)
            if stored != statuses[status.value]:
                wrong.append(f"order {order_id}: n/{status.value} = {stored}, its items say {statuses[status.value]}")
        if int(order.get("items_total", -1)) != sum(statuses.values()):
            wrong.append(f"order {order_id}: items_total {order.get('items_total')}, {sum(statuses.values())} items")
        active[owner] += sum(n for s, n in statuses.items() if s not in FINAL)
        if "collections" in order:
            totals.update(statuses)
        for scope in (owner, None):
            expected.setdefault(keys.orders_updated(scope), set())  # not written since issue 16: empty
            expected[keys.orders_in_status(scope, order.get("status", "?"))].add(member)
            if order.get("reference"):
                expected[keys.orders_with_reference(scope, order["reference"])].add(member)
        # absent: PRODUCT_ORDER (oseod.store.orders.layout.DEFAULT_ORDER_TYPE)
        expected[keys.orders_of_type(order.get("order_type") or "PRODUCT_ORDER")].add(member)
        for collection in json.loads(order.get("collections") or "[]"):
            expected[keys.orders_in_collection(collection)].add(member)
    for owner in owners:
        stored = int(redis.get(keys.active_items(owner)) or 0)
        if stored != active[owner]:
            wrong.append(f"{keys.active_items(owner)} = {stored}, the orders say {active[owner]}")
        for status in OrderStatus:  # indexes that should be empty are checked too
            expected.setdefault(keys.orders_in_status(owner, status.value), set())
    for status in OrderStatus:
        expected.setdefault(keys.orders_in_status(None, status.value), set())
    stored_totals = {k: int(v) for k, v in redis.hgetall(keys.items_by_status()).items()}
    for name in set(stored_totals) | set(totals):
        if stored_totals.get(name, 0) != totals[name]:
            wrong.append(f"{keys.items_by_status()} {name} = {stored_totals.get(name, 0)}, "
                         f"the items say {totals[name]}")
    for key, members in sorted(expected.items()):
        stored_members = set(redis.zrange(key, 0, -1))
        if stored_members != members:
            extra, missing = stored_members - members, members - stored_members
            wrong.append(f"{key}: {len(missing)} orders missing, {len(extra)} too many "
                         f"(e.g. {sorted(missing | extra)[:3]})")
    return wrong


def queue_left(redis: Any) -> dict[str, int]:
    """What the job queue and the outbox still hold."""
    left = {}
    for priority in PRIORITIES:
        stream = keys.job_stream(priority)
        try:
            left[f"pending {priority}"] = int(redis.xpending(stream, GROUP)["pending"])
        except Exception:  # noqa: BLE001 - no such stream or group: nothing pending
            left[f"pending {priority}"] = 0
    left["delayed jobs"] = int(redis.zcard(keys.delayed_jobs()))
    left["outbox due"] = int(redis.zcard(keys.outbox_due()))
    return left


def unfinished(found: Orders, order_ids: Any) -> list[str]:
    return [o for o in order_ids if found.orders.get(o, {}).get("status") not in FINAL]


def result_files(results: Path, order_id: str) -> int:
    return sum(1 for directory in results.glob(f"*/{order_id}") for _ in directory.rglob("*.dat"))


def attribute(attempts: list[Attempt], windows: list[Window], grace: float) -> list[Attempt]:
    """Count each failed attempt against the chaos window it was in flight
    during (the latest, when windows overlap); returns those outside every
    window."""
    outside = []
    for attempt in attempts:
        if attempt.outcome in ("ok", "fault"):
            continue
        inside = [w for w in windows if w.started <= attempt.ended and attempt.started <= w.repaired + grace]
        if not inside:
            outside.append(attempt)
            continue
        window = max(inside, key=lambda w: w.started)  # windows may overlap: the latest event's
        window.failures += 1
        window.by_outcome[attempt.outcome] = window.by_outcome.get(attempt.outcome, 0) + 1
        window.outage = max(window.outage, attempt.ended - window.started)
    return outside



def check_all(redis: Any, results: Path, attempts: list[Attempt], acks: list[tuple[str, str]],
              unacknowledged: list[str], windows: list[Window], grace: float,
              t0: float) -> tuple[list[Check], dict[str, Any]]:
    """Every invariant, with its numbers, and figures for information."""
    found = read_orders(redis)
    checks: list[Check] = []
    acked = {order_id for _, order_id in acks}

    missing = sorted(o for o in acked if o not in found.orders)
    short = sorted(o for o in acked if o in found.orders and len(found.items.get(o, {})) != ITEMS)
    acked_at = {a.order_id: a.ended for a in attempts if a.kind == "submit" and a.outcome == "ok"}
    lost_in: collections.Counter[str] = collections.Counter()
    for order_id in missing:
        during = [w for w in windows if w.started - 1.0 <= acked_at.get(order_id, -1.0) <= w.repaired + grace]
        lost_in[max(during, key=lambda w: w.started).event if during else "no window"] += 1
    checks.append(Check("every acknowledged order exists with all its items", not missing and not short,
                        f"{len(acked)} acknowledged, {len(missing)} missing {missing[:3]} (acknowledged during: "
                        f"{dict(lost_in)}), {len(short)} without their {ITEMS} items {short[:3]}"))
    not_final = unfinished(found, sorted(acked - set(missing)))
    checks.append(Check("every acknowledged order reaches a final status", not not_final,
                        f"{len(not_final)} not final, e.g. "
                        f"{[(o, found.orders[o].get('status')) for o in not_final[:5]]}"))

    by_reference: dict[str, list[str]] = collections.defaultdict(list)
    for order_id, order in found.orders.items():
        by_reference[order.get("reference", "")].append(order_id)
    twice = {r: ids for r, ids in by_reference.items() if len(ids) > 1}
    acked_twice = {r for r, ids in collections.Counter(r for r, _ in set(acks)).items() if ids > 1}
    checks.append(Check("no orderReference twice (stored, or acknowledged with two orderIds)",
                        not twice and not acked_twice,
                        f"{len(twice)} references stored more than once {list(twice.items())[:3]}, "
                        f"{len(acked_twice)} acknowledged with two orderIds"))

    completed = [(o, i) for o, its in found.items.items() for i, s in its.items() if s in ("Completed", "Downloaded")]
    not_made = [o for o in acked if o in found.orders and result_files(results, o) != len(found.items.get(o, {}))]
    counted = sum(int(v) for k in redis.scan_iter(match=keys.hour_bucket(0)[:-1] + "*")
                  for f, v in redis.hgetall(k).items() if f == "completed")
    # Items of orders taken back after the worker made them (a Submit answered
    # 503 after a WAIT shortfall): their results are on disk, their
    # completions counted (or not, when the order went first), the order gone.
    gone = sum(1 for directory in results.glob("*/*") if directory.name not in found.orders
               for _ in directory.rglob("*.dat"))
    checks.append(Check("every item made once (one result file, one completion counted)",
                        not not_made and len(completed) <= counted <= len(completed) + gone,
                        f"{len(completed)} items completed + {gone} made for orders since removed, "
                        f"{counted} completions counted, "
                        f"{len(not_made)} acknowledged orders whose result files differ from their items "
                        f"{not_made[:5]}"))

    outcomes = collections.Counter(a.outcome for a in attempts)
    bad = [a for a in attempts if a.outcome in ("500", "unparsable")]
    checks.append(Check("no HTTP 500, every body parses", not bad,
                        f"{outcomes['500']} answers 500, {outcomes['unparsable']} unparsable"
                        + (f", e.g. {bad[0].detail[:200]}" if bad else "")))
    hung = [a for a in attempts if a.outcome == "timeout"]
    checks.append(Check("no hang (every request answered or refused within 10 s)", not hung,
                        f"{len(hung)} requests without an answer within the deadline"))
    outside = attribute(attempts, windows, grace)
    checks.append(Check("503s and lost requests only inside chaos windows", not outside,
                        f"{len(outside)} outside: " + ", ".join(
                            f"{a.kind} {a.outcome} at +{a.started - t0:.1f} s" for a in outside[:5])))
    faults = [a for a in attempts if a.outcome == "fault"]
    checks.append(Check("no SOAP fault other than 503", not faults,
                        f"{len(faults)} faults" + (f", e.g. {faults[0].detail[:200]}" if faults else "")))

    drains = [w.ready_503 for w in windows if w.ready_503 is not None]
    if drains:
        checks.append(Check("/ready answers 503 while a SIGTERMed daemon drains", all(drains),
                            f"{sum(drains)} of {len(drains)} drains"))
    left = queue_left(redis)
    checks.append(Check("the queue (stream PEL, delayed jobs) and the outbox drained", not any(left.values()),
                        ", ".join(f"{k} {v}" for k, v in left.items())))
    wrong = recount(redis, found)
    checks.append(Check("the indexes and counters recount equal to the order hashes", not wrong,
                        f"{len(wrong)} differences" + ("".join(f"\n      {w}" for w in wrong[:8]) if wrong else "")))

    figures = {
        "orders stored": len(found.orders),
        "Submits acknowledged": len(acked),
        "Submits never acknowledged (after 3 tries)": len(unacknowledged),
        "stored but never acknowledged": len(set(found.orders) - acked),
        "attempts by outcome": dict(outcomes),
        "slowest 503 answer (s)": round(max((a.ended - a.started for a in attempts if a.outcome == "503"),
                                            default=0.0), 2),
        "requests": len(attempts),
    }
    return checks, figures
