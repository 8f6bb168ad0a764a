"""The console's HTML: one Jinja2 environment (autoescape on, undefined
names an error) over the package's templates, and the small helpers the
templates use."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..admin.actions import Overview
from ..model.orders import Order, OrderStatus, OrderType
from .charts import Bucket, Series, hourly_bars

STATUSES = tuple(s.value for s in OrderStatus)
ORDER_TYPES = tuple(t.value for t in OrderType)


def when(moment: float | None) -> str:
    """A moment in UTC, for a column whose heading says "(UTC)"."""
    if not moment:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))


def utc(moment: float | None) -> str:
    """A moment in UTC, saying so: where no heading does. Every time the
    console shows is UTC, the browser's locale never enters (the live
    overview's "updated" time comes from the server too)."""
    return f"{when(moment)} UTC" if moment else "—"


def size(count: int | None) -> str:
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def badge(status: object) -> Markup:
    """A status as text in a coloured pill (the colour is never alone)."""
    text = str(getattr(status, "value", status))
    known = text if text in STATUSES else "other"
    return Markup('<span class="badge s-{}">{}</span>').format(known, text)


def order_type(order: Order) -> str:
    return order.spec.order_type.value


def collections_of(order: Order) -> str:
    found = sorted({i.spec.collection_id for i in order.items if i.spec.collection_id})
    return ", ".join(found) if found else "—"


def overview_values(overview: Overview) -> dict[str, str]:
    """Every number of the overview, by the ``data-live`` name the page and
    the event stream share."""
    values: dict[str, str] = {}
    for status in STATUSES:
        values[f"orders.{status}"] = str(overview.orders_by_status.get(status, 0))
        values[f"items.{status}"] = str(overview.items_by_status.get(status, 0))
    values["orders.total"] = str(sum(overview.orders_by_status.values()))
    values["items.total"] = str(sum(overview.items_by_status.values()))
    jobs = overview.jobs
    waiting = jobs.get("waiting", {})
    values["jobs.waiting"] = str(sum(int(v) for v in waiting.values()) if isinstance(waiting, Mapping) else waiting)
    if isinstance(waiting, Mapping):
        for priority, count in waiting.items():
            values[f"jobs.waiting.{priority}"] = str(count)
    values["jobs.running"] = str(jobs.get("running", 0))
    values["jobs.delayed"] = str(jobs.get("delayed", 0))
    values["items.per_minute"] = f"{overview.items_per_minute:.1f}"
    values["failures.hour"] = str(overview.hours[-1].failed if overview.hours else 0)
    values["failures.day"] = str(sum(h.failed for h in overview.hours))
    values["downloads.hour"] = str(overview.downloads_last_hour)
    values["downloads.day"] = str(sum(h.downloads for h in overview.hours))
    for channel, count in sorted(overview.outbox_pending.items()):
        values[f"outbox.{channel}"] = str(count)
    values["outbox.pending"] = str(sum(overview.outbox_pending.values()))
    values["outbox.given_up"] = str(overview.outbox_given_up)
    values["leader"] = overview.leader or "none"
    redis = overview.redis
    values["redis.state"] = "up" if redis.up else "DOWN"
    values["redis.latency"] = f"{redis.latency_ms:.1f} ms" if redis.latency_ms is not None else "—"
    values["redis.memory"] = size(redis.used_memory)
    for run in overview.task_runs:
        values[f"task.{run.name}"] = f"{run.outcome}, {utc(run.at)}" if run.at else run.outcome
    return values


def charts(overview: Overview) -> dict[str, Markup]:
    buckets_items = [Bucket(h.start, (h.completed, h.failed)) for h in overview.hours]
    buckets_downloads = [Bucket(h.start, (h.downloads,)) for h in overview.hours]
    return {
        "items": Markup(hourly_bars("Items per hour", (Series("completed", "#1a7f37"), Series("failed", "#cf222e")),
                                    buckets_items)),
        "downloads": Markup(hourly_bars("Downloads per hour", (Series("downloads", "#0969da"),),
                                        buckets_downloads)),
    }


class Pages:
    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("oseod.console", "templates"), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(when=when, utc=utc, size=size, badge=badge, order_type=order_type,
                                collections=collections_of)
        self.env.globals.update(STATUSES=STATUSES, ORDER_TYPES=ORDER_TYPES)

    def render(self, name: str, **context: Any) -> bytes:
        return self.env.get_template(name).render(**context).encode("utf-8")

    def recent_rows(self, overview: Overview) -> str:
        return self.env.get_template("_recent.html").render(orders=overview.recent_orders)

    def live_event(self, overview: Overview, at: float) -> str:
        """One event of the overview's stream; ``at``: when it was computed."""
        return json.dumps({"values": overview_values(overview), "recent": self.recent_rows(overview),
                           "at": utc(at)})
