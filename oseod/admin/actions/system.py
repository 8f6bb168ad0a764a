"""What operators see of the system: the overview (orders, items, jobs,
outbox, leader, periodic tasks, Redis health, the last 24 hours) and the
running configuration, secrets masked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ...config import Config
from ...model.orders import Order
from ...model.tasks import TaskRunRecord
from ...store.connection import Redis
from ...store.leader import LeaderLock, TaskRuns
from ...store.orders import OrderStore
from ...store.outbox import OutboxStore
from ...store.stats import StatsStore
from ..masking import masked_config

RECENT_ORDERS = 10


@attrs.frozen
class HourBucket:
    start: float  # Unix time of the hour's start
    completed: int
    failed: int
    downloads: int


@attrs.frozen
class TaskRun:
    name: str
    at: float | None  # the last run's start, None: never
    seconds: float | None
    outcome: str  # "ok", "failed", "never"


@attrs.frozen
class RedisHealth:
    up: bool
    latency_ms: float | None
    used_memory: int | None
    version: str
    address: str


@attrs.frozen
class Overview:
    orders_by_status: Mapping[str, int]
    items_by_status: Mapping[str, int]
    jobs: Mapping[str, Any]  # the engine's report: waiting by priority, delayed, running
    items_per_minute: float  # completed over the last 10 minutes, per minute
    downloads_last_hour: int
    outbox_pending: Mapping[str, int]  # per channel
    outbox_given_up: int
    leader: str | None
    task_runs: tuple[TaskRun, ...]
    redis: RedisHealth
    hours: tuple[HourBucket, ...]  # the last 24, oldest first, the current one last
    recent_orders: tuple[Order, ...]  # the last updated, newest first


class JobReport(Protocol):
    """The processing engine, as operators see it."""

    async def report(self) -> dict[str, Any]: ...


class SystemActions:
    log = Logger()

    def __init__(self, *, config: Config, clock: IReactorTime, orders: OrderStore, stats: StatsStore, outbox: OutboxStore,
                 leader: LeaderLock, task_runs: TaskRuns, task_names: Sequence[str], processing: JobReport,
                 redis: Redis) -> None:
        self._config = config
        self._clock = clock
        self._orders = orders
        self._stats = stats
        self._outbox = outbox
        self._leader = leader
        self._task_runs = task_runs
        self._task_names = tuple(task_names)
        self._processing = processing
        self._redis = redis

    async def overview(self) -> Overview:
        redis = await self._redis_health()
        if not redis.up:
            return Overview(orders_by_status={}, items_by_status={}, jobs={}, items_per_minute=0.0,
                            downloads_last_hour=0, outbox_pending={}, outbox_given_up=0, leader=None, task_runs=(),
                            redis=redis, hours=(), recent_orders=())
        now = self._clock.seconds()
        minutes = await self._stats.minutes(now, 60)
        counters = await self._outbox.counters()
        runs = await self._task_runs.last()
        recent = await self._orders.find(limit=RECENT_ORDERS, budget=RECENT_ORDERS)
        return Overview(
            orders_by_status=await self._stats.orders_by_status(),
            items_by_status=await self._stats.items_by_status(),
            jobs=await self._processing.report(),
            items_per_minute=sum(m.completed for m in minutes[-10:]) / 10.0,
            downloads_last_hour=sum(m.downloads for m in minutes),
            outbox_pending=await self._outbox.pending(),
            outbox_given_up=sum(n for k, n in counters.items() if k.endswith(":failed")),
            leader=await self._leader.current(),
            task_runs=tuple(_task_run(name, runs.get(name)) for name in self._task_names),
            redis=redis,
            hours=tuple(HourBucket(b.start, b.completed, b.failed, b.downloads)
                        for b in await self._stats.hours(now, 24)),
            recent_orders=tuple(await self._orders.get_many(recent.order_ids)),
        )

    async def job_report(self) -> Mapping[str, Any]:
        """The job queue and what this daemon's engine made (``oseoctl stats``)."""
        return await self._processing.report()

    async def _redis_health(self) -> RedisHealth:
        address = self._redis.address.describe()
        started = self._clock.seconds()
        try:
            await self._redis.round_trip()
            latency = (self._clock.seconds() - started) * 1000.0
            info = await self._redis.info()
        except Exception as e:
            self.log.warn("Redis health check failed: {error}", error=str(e) or repr(e))
            return RedisHealth(False, None, None, "", address)
        used = info.get("used_memory", "")
        return RedisHealth(True, latency, int(used) if used.isdigit() else None, info.get("redis_version", ""),
                           address)

    def configuration(self) -> Mapping[str, Any]:
        """The running configuration, section by section, secrets masked."""
        shown = attrs.asdict(self._config, recurse=True)
        masked = masked_config(shown)
        assert isinstance(masked, dict)
        return masked


def _task_run(name: str, run: TaskRunRecord | None) -> TaskRun:
    if run is None:
        return TaskRun(name, None, None, "never")
    return TaskRun(name, run.at, run.seconds, "ok" if run.ok else "failed")

