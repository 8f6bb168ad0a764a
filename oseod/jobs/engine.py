"""The engine: this daemon's workers on the durable job queue, composed of
their parts by concern.

- :mod:`.registry`: each collection's processor, also asked at Submit and
  GetQuotation (the daemon builds it first and hands it to the engine);
- :mod:`.worker`: the hold on the queue: claims up to ``[processing]
  workers`` jobs, renews their lease, takes back its own after a restart and
  those of a consumer that stopped renewing, promotes retries;
- :mod:`.runner`: one job run to its end: its items through their
  processor, retries, pushes, the outcome stored and only then the job
  acknowledged; and the clean-up of an expired result;
- :mod:`.batches`: packaging, the next batch, massive-order expansion;
- :mod:`.turns`: the share of a reactor turn the engine may take, so that
  requests never wait long behind its bursts.

Durability: a job is acknowledged after its outcome is stored, so a crash at
any moment leaves it pending. At start the engine first takes back its own
pending jobs (a restart after a crash); another daemon takes over those of a
consumer that has not renewed them for ``lease_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..config import Config
from ..core.orderstate import IDispatcher
from ..core.production import ItemProgress
from ..metrics import Sample
from ..model.orders import Item, Order
from ..reactors import IDaemonReactor
from ..store.jobs import PRIORITIES, JobStore
from ..threads import ThreadPools
from .attempts import CollectionStats
from .batches import WAITING_FOR_PACKAGE, Batches
from .packaging import Packer
from .processors import ProcessorFactory
from .push import IPusher
from .pushers import default_pushers
from .registry import BUILTINS, ProcessorRegistry
from .runner import JobRunner
from .turns import TurnBudget
from .worker import POLL_SECONDS, PROMOTE_SECONDS, QueueWorker

__all__ = ["BUILTINS", "Engine", "POLL_SECONDS", "PROMOTE_SECONDS", "WAITING_FOR_PACKAGE"]


@implementer(IDispatcher)
class Engine:
    def __init__(self, progress: ItemProgress, jobs: JobStore, config: Config, reactor: IDaemonReactor,
                 clock: IReactorTime, *, results: Path, consumer: str, threads: ThreadPools, lease_seconds: float | None = None,
                 processors: ProcessorRegistry | None = None,
                 builtins: Mapping[str, ProcessorFactory] = BUILTINS,
                 pushers: Mapping[str, IPusher] | None = None) -> None:
        """``progress``: where the items' outcomes go; ``processors``: the
        daemon's registry (else one of ``builtins`` and the configuration);
        ``results``: where processors put the items' results; ``consumer``:
        this daemon's name on the queue."""
        self.jobs = jobs  # the queue (shared by every daemon)
        self.results = results
        self.processors = (ProcessorRegistry(config, reactor, clock, threads=threads,
                                                                builtins=builtins) if processors is None
                           else processors)
        # The reactor's turns, not the clock's: a test's Clock drives the
        # timers, while the work still runs on the reactor.
        turns = TurnBudget(reactor)
        packer = Packer(threads)
        batches = Batches(progress, config, clock, processors=self.processors, packer=packer, results=results,
                          wake=self.wake)
        self.runner = JobRunner(progress, jobs, config, clock, processors=self.processors, batches=batches,
                                packer=packer, results=results, turns=turns, threads=threads,
                                pushers=default_pushers(config, reactor, clock, threads) if pushers is None else pushers)
        self.worker = QueueWorker(jobs, clock, self.runner.run, consumer=consumer,
                                  workers=config.processing.workers, turns=turns,
                                  lease_seconds=config.processing.lease_seconds if lease_seconds is None
                                  else lease_seconds)

    @property
    def consumer(self) -> str:
        """This daemon's name on the job queue."""
        return self.worker.consumer

    @property
    def stats(self) -> dict[str, CollectionStats]:
        """What it did per collection since it started."""
        return self.runner.stats

    @property
    def started(self) -> bool:
        return self.worker.started

    # ------------------------------------------------------------ life

    async def start(self) -> None:
        # Every collection's processor is built first: a misnamed or
        # misconfigured one stops the start, naming it.
        self.processors.start()
        await self.jobs.setup()
        await self.worker.start()

    async def stop(self) -> None:
        """Stop taking jobs. Jobs running now are left to finish or, at a
        restart, to be taken back: nothing is acknowledged that is not done.

        Returns once the timers' Redis calls in flight have settled: Redis
        stops after the engine, and a claim cut off by that would be logged
        as a failure (a daemon that failed to start would bury its cause
        under them)."""
        await self.worker.stop()

    @property
    def running(self) -> int:
        """Jobs this engine works on now."""
        return self.worker.running

    async def drain(self) -> None:
        """Wait until every job this engine claimed is done, and what its
        timers started (tests)."""
        await self.worker.drain()

    def wake(self) -> None:
        """Look for jobs now (a Submit here queued one, a worker is free)."""
        self.worker.wake()

    async def clean(self, order: Order, item: Item) -> None:
        """Remove an item's result (it has expired)."""
        await self.runner.clean(order, item)

    # ------------------------------------------------------------ IDispatcher

    def accepted(self, order: Order) -> None:
        self.wake()

    def cancelled(self, order_id: str) -> None:
        for job in self.worker.jobs_of(order_id):
            self.runner.order_cancelled(job)
            self.worker.cancel(job)

    # ------------------------------------------------------------ for operators

    async def health(self) -> dict[str, Any]:
        """Its state for /health."""
        depth = await self.jobs.depth()
        return {"waiting": {p: depth[p] for p in PRIORITIES}, "delayed": depth["delayed"], "running": self.running}

    async def report(self) -> dict[str, Any]:
        """Its state and work so far, for operators (oseoctl stats)."""
        return {**await self.health(),
                "collections": {c: attrs.asdict(stats) for c, stats in sorted(self.stats.items())}}

    async def samples(self) -> list[Sample]:
        """Its state for /metrics: the queue (all daemons) and its own work."""
        depth = await self.jobs.depth()
        found = [Sample("oseod_jobs_waiting", "Jobs in the queue, waiting or being worked on, by priority.",
                        float(depth[p]), (("priority", p),)) for p in PRIORITIES]
        found.append(Sample("oseod_jobs_delayed", "Jobs waiting for a retry.", float(depth["delayed"])))
        found.append(Sample("oseod_jobs_running", "Jobs this daemon works on now.", float(self.running)))
        for collection, stats in sorted(self.stats.items()):
            label = (("collection", collection),)
            found += [
                Sample("oseod_items_completed_total", "Items made by this daemon.", stats.completed, label,
                       "counter"),
                Sample("oseod_items_failed_total", "Items failed for good (attempts used up).", stats.failed,
                       label, "counter"),
                Sample("oseod_item_retries_total", "Failed attempts that will be tried again.", stats.retried,
                       label, "counter"),
                Sample("oseod_item_processing_seconds_total", "Time spent making items.", stats.seconds, label,
                       "counter"),
            ]
        return found
