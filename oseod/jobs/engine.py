"""The engine: this daemon's workers on the durable job queue.

It claims jobs (:mod:`oseod.store.jobs`) up to ``[processing] workers`` at
a time, runs each item of a job through its collection's processor, stores
the outcome through the ordering core, and only then acknowledges the job.
An item whose delivery is onlineDataDelivery is then pushed to the client's
server (:mod:`oseod.jobs.push`); a failed push is a failed attempt. With
packaging, the items offered for download wait, made, until every item of
their batch is final; then the batch's package is built
(:mod:`oseod.jobs.packaging`) and only then are they completed, together,
so that whoever sees them Completed finds their package. A failed
item is tried again after ``retry_delay`` seconds, doubled at each attempt,
until ``max_attempts``; then it fails with the last error as its
additionalStatusInfo.

Durability: a job is acknowledged after its outcome is stored, so a crash at
any moment leaves it pending. At start the engine first takes back its own
pending jobs (a restart after a crash); another daemon takes over those of a
consumer that has not renewed them for ``lease_seconds``. An item that was
finished before the crash is not redone: the core refuses to start a final
item.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..config import CollectionConfig, Config
from ..core.deliverables import Deliverables, package_path, path_name, result_directory
from ..core.destinations import delivery_address
from ..core.ordering import IDispatcher, OrderingService, batch_job
from ..core.packages import package_name, packaged
from ..core.validation import resolve_collection
from ..model.orders import DeliveryMethod, Item, ItemSpec, Order, OrderStatus, OrderType, Priority, StatusInfo
from ..metrics import Sample
from ..store.jobs import PRIORITIES, Job, JobStore
from ..store.orders import NoSuchOrder
from ..store.outage import Backoff, is_unavailable
from ..threads import ThreadPools
from .archive import ArchiveProcessor
from .attempts import CollectionStats, Made, ProcessorError, cancellation, clip, settle
from .command import CommandProcessor
from .dummy import DummyProcessor
from .fetch import HttpProcessor
from .packaging import Member, Packer
from .processors import (
    IItemProcessor,
    IMassiveExpansion,
    IOrderChecks,
    ItemWork,
    ProcessorFactory,
    UnknownProcessor,
    build_processor,
    load_processor,
)
from .push import IPusher, PushFailed
from .pushers import default_pushers

BUILTINS: Mapping[str, ProcessorFactory] = {"dummy": DummyProcessor, "command": CommandProcessor,
                                            "archive": ArchiveProcessor, "http": HttpProcessor}
POLL_SECONDS = 1.0  # jobs queued by other daemons are seen this late at most
PROMOTE_SECONDS = 1.0  # retries start this late at most
WAITING_FOR_PACKAGE = "Made; waiting for the other items of its batch, to be packaged with them"


@implementer(IDispatcher)
class Engine:
    log = Logger()

    def __init__(self, ordering: OrderingService, jobs: JobStore, config: Config, reactor: Any, clock: Any, *,
                 results: Path, consumer: str, threads: ThreadPools, lease_seconds: float | None = None,
                 builtins: Mapping[str, ProcessorFactory] = BUILTINS,
                 pushers: Mapping[str, IPusher] | None = None) -> None:
        self._ordering = ordering
        self._jobs = jobs
        self._config = config
        self._reactor = reactor
        self._clock = clock
        self._threads = threads
        self._results = results
        self.consumer = consumer
        self._lease = config.processing.lease_seconds if lease_seconds is None else lease_seconds
        self._builtins = builtins
        self._processors: dict[str, IItemProcessor] = {}
        # onlineDataDelivery, by protocol: results pushed to the client's server.
        self._pushers = default_pushers(config, reactor, clock, threads) if pushers is None else pushers
        self._deliverables = Deliverables(ordering, results, threads)
        self._packer = Packer(threads)
        # [processing] workers bounds the items made at once (a job may hold
        # many); with none, this engine claims nothing (a front daemon).
        self._slots = defer.DeferredSemaphore(max(config.processing.workers, 1))
        self._running: dict[str, tuple[Job, defer.Deferred[None]]] = {}
        self._loops: list[task.LoopingCall] = []
        self._polling: defer.Deferred[None] | None = None
        self._upkeep: set[defer.Deferred[None]] = set()
        self._stopping: set[str] = set()  # jobs whose order was cancelled while they ran
        self.stats: dict[str, CollectionStats] = {}
        self._again = False
        self._started = False
        self._backoff = Backoff(clock)

    # ------------------------------------------------------------ life

    async def start(self) -> None:
        # Every collection's processor is built now: a misnamed or
        # misconfigured one stops the start, naming it, instead of failing
        # the first order's every attempt.
        for collection in self._config.collections:
            try:
                self._processor(collection.id)
            except Exception as e:
                raise ProcessorError(f"collection {collection.id}: processor {collection.processor!r}: {e}") from None
        await self._jobs.setup()
        self._started = True
        if self._config.processing.workers:
            await self._recover()  # our own jobs still pending from before a crash come first
        for seconds, step in ((POLL_SECONDS, self._poll_timer), (PROMOTE_SECONDS, self._promote),
                              (max(self._lease / 3, 0.01), self._renew), (max(self._lease / 2, 0.01), self._reclaim)):
            loop = task.LoopingCall(self._tracked, step)
            loop.clock = self._clock
            loop.start(seconds, now=False).addErrback(
                lambda f: self.log.failure("a processing timer failed", f))
            self._loops.append(loop)
        self.wake()

    async def stop(self) -> None:
        """Stop taking jobs. Jobs running now are left to finish or, at a
        restart, to be taken back: nothing is acknowledged that is not done.

        Returns once the timers' Redis calls in flight have settled: Redis
        stops after the engine, and a claim cut off by that would be logged
        as a failure (a daemon that failed to start would bury its cause
        under them)."""
        self._started = False
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        for _job, running in list(self._running.values()):
            running.cancel()
        waiting = list(self._upkeep) + ([self._polling] if self._polling is not None else [])
        if waiting:
            await defer.DeferredList(waiting, consumeErrors=True)

    @property
    def running(self) -> int:
        """Jobs this engine works on now."""
        return len(self._running)

    async def health(self) -> dict[str, Any]:
        """Its state for /health."""
        depth = await self._jobs.depth()
        return {"waiting": {p: depth[p] for p in PRIORITIES}, "delayed": depth["delayed"], "running": self.running}

    async def report(self) -> dict[str, Any]:
        """Its state and work so far, for operators (oseoctl stats)."""
        return {**await self.health(),
                "collections": {c: attrs.asdict(stats) for c, stats in sorted(self.stats.items())}}

    async def samples(self) -> list[Sample]:
        """Its state for /metrics: the queue (all daemons) and its own work."""
        depth = await self._jobs.depth()
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

    async def drain(self) -> None:
        """Wait until every job this engine claimed is done, and what its
        timers started (tests)."""
        while self._running or self._polling is not None or self._upkeep:
            waiting = [d for _, d in self._running.values()] + list(self._upkeep)
            if self._polling is not None:
                waiting.append(self._polling)
            await defer.DeferredList(waiting)

    def _tracked(self, step: Callable[[], Coroutine[Any, Any, None]]) -> defer.Deferred[None]:
        """Run a timer's step; drain() waits for it too. A failure (Redis
        away for a moment) is logged and the timer goes on: a LoopingCall
        whose step fails stops for good."""
        if self._backoff.paused:
            return defer.succeed(None)  # Redis was away a moment ago: not every tick asks it again
        running: defer.Deferred[None] = defer.ensureDeferred(step())
        self._upkeep.add(running)

        def done(result: object) -> None:
            self._upkeep.discard(running)
            if isinstance(result, Failure) and not self._redis_away(result):
                self.log.failure("processing timer {step} failed; it runs again at its next tick", result,
                                 step=getattr(step, "__name__", "?"))

        running.addBoth(done)
        return running

    async def _poll_timer(self) -> None:
        self.wake()

    # ------------------------------------------------------------ IDispatcher

    def accepted(self, order: Order) -> None:
        self.wake()

    def cancelled(self, order_id: str) -> None:
        for job, running in list(self._running.values()):
            if job.order_id == order_id:
                self._stopping.add(job.entry_id)
                running.cancel()

    # ------------------------------------------------------------ claiming

    def wake(self) -> None:
        """Look for jobs now (a Submit here queued one, a worker is free)."""
        if not self._started or not self._config.processing.workers:
            return
        if self._polling is not None:
            self._again = True
            return
        if self._backoff.paused:
            return  # the poll timer wakes it once the pause is over
        self._polling = defer.ensureDeferred(self._poll())
        self._polling.addErrback(
            lambda f: None if self._redis_away(f) else self.log.failure("claiming jobs failed", f))

        def done(_: object) -> None:
            self._polling = None
            if self._again:
                self._again = False
                self.wake()

        self._polling.addBoth(done)

    def _redis_away(self, failure: Failure) -> bool:
        """Whether Redis being away failed a timer or a claim: then claims and
        timers pause (longer at each failure in a row, a few seconds at most)
        until Redis answers a claim or a promotion; the RedisWatch logs it."""
        if not is_unavailable(failure.value):
            return False
        self._backoff.failed()
        return True

    async def _poll(self) -> None:
        free = self._config.processing.workers - len(self._running)
        if free <= 0:
            return
        claimed = await self._jobs.claim(self.consumer, free)
        self._backoff.succeeded()  # Redis answers
        for job in claimed:
            if not self._started:
                break  # stopped meanwhile: claimed jobs stay pending, taken back at the next start
            self._start(job)

    async def _recover(self) -> None:
        for job in await self._jobs.pending_of(self.consumer):
            if job.entry_id not in self._running:
                self.log.info("taking back job {entry} (order {order_id}) after a restart", entry=job.entry_id,
                              order_id=job.order_id)
                self._start(job)

    async def _reclaim(self) -> None:
        if self._config.processing.workers - len(self._running) <= 0:
            return
        for job in await self._jobs.reclaim(self.consumer, self._lease):
            if job.entry_id not in self._running:
                self.log.info("took over job {entry} (order {order_id}): its worker stopped renewing it",
                              entry=job.entry_id, order_id=job.order_id)
                self._start(job)

    async def _renew(self) -> None:
        if self._running:
            await self._jobs.renew(self.consumer, [job for job, _ in self._running.values()])

    async def _promote(self) -> None:
        promoted = await self._jobs.promote(self._clock.seconds())
        self._backoff.succeeded()  # Redis answers
        if promoted:
            self.wake()

    def _start(self, job: Job) -> None:
        running = defer.ensureDeferred(self._run(job))
        self._running[job.entry_id] = (job, running)

        def finished(result: object) -> None:
            self._running.pop(job.entry_id, None)
            self._stopping.discard(job.entry_id)
            if isinstance(result, Failure) and is_unavailable(result.value):
                self.log.warn("job {entry} (order {order_id}) stopped, Redis is away: it stays queued ({error})",
                              entry=job.entry_id, order_id=job.order_id, error=str(result.value))
            elif isinstance(result, Failure) and not (result.value is not None and cancellation(result.value)):
                self.log.failure("job {entry} (order {order_id}) failed; it stays queued", result,
                                 entry=job.entry_id, order_id=job.order_id)
            self.wake()

        running.addBoth(finished)

    # ------------------------------------------------------------ working

    async def _run(self, job: Job) -> None:
        order = await self._ordering.find(job.order_id)
        try:
            if order is not None:
                await self._run_order(job, order)
                return
        except NoSuchOrder:
            pass
        # Purged, or taken back (a Submit WAIT found on too few replicas) meanwhile.
        self.log.info("job {entry}: order {order_id} is gone", entry=job.entry_id, order_id=job.order_id)
        await self._jobs.ack(job)

    async def _run_order(self, job: Job, order: Order) -> None:
        template = self._expansion_template(order)
        if template is not None and job.batch == 0:
            # The order's one item describes what to expand: it is not made
            # itself; its first batch is made from it.
            started = await self._ordering.start_items(order.order_id, [template.item_id], "Expanding into batches")
            if started.get(template.item_id):
                await self._expand(order, template, 0)
            await self._jobs.ack(job)
            return
        wanted = set(job.item_ids)
        items = [item for item in order.items if item.spec.item_id in wanted]
        info = "In production" if job.attempt == 1 else f"In production (attempt {job.attempt})"
        started = await self._ordering.start_items(order.order_id, [i.spec.item_id for i in items], info)
        items = [item for item in items if started.get(item.spec.item_id)]  # not the final ones (cancelled, done)
        try:
            outcomes = await defer.gatherResults([self._slots.run(self._make, order, item, job.attempt)
                                                  for item in items], consumeErrors=True)
        except (defer.CancelledError, defer.FirstError) as e:
            if not cancellation(e) or job.entry_id not in self._stopping:
                raise  # the daemon stops: the job stays queued for the restart
            self._stopping.discard(job.entry_id)
            self.log.info("stopped job {entry}: order {order_id} was cancelled", entry=job.entry_id,
                          order_id=job.order_id)
            await self._jobs.ack(job)
            return
        failures = {item.spec.item_id: made.failure for item, made in zip(items, outcomes) if made.failure is not None}
        final = bool(failures) and job.attempt >= self._config.processing.max_attempts
        for item in items:
            stats = self.stats.setdefault(item.spec.collection_id or "", CollectionStats())
            if item.spec.item_id not in failures:
                stats.completed += 1
            elif final:
                stats.failed += 1
            else:
                stats.retried += 1
        completed: dict[str, list[str]] = {}  # by what to say of them (pushed ones say where to)
        for item, made in zip(items, outcomes):
            if made.failure is None:
                completed.setdefault(made.info, []).append(item.spec.item_id)
        retrying = bool(failures) and job.attempt < self._config.processing.max_attempts
        if packaged(order.spec.packaging):
            completed = await self._package(order, job, completed, batch_done=not retrying)
        for info, item_ids in completed.items():
            await self._ordering.complete_items(order.order_id, item_ids, info)
        if retrying:
            delay = self._config.processing.retry_delay * 2 ** (job.attempt - 1)
            await self._ordering.start_items(order.order_id, list(failures), clip(
                f"Attempt {job.attempt} failed: {next(iter(failures.values()))}; trying again in {delay:g} s"))
            again = Job(job.order_id, tuple(failures), job.priority, job.attempt + 1, job.batch)
            await self._jobs.retry(job, again, self._clock.seconds() + delay, then=await self._next_batch(order, job))
            return
        if failures:
            await self._ordering.fail_items(order.order_id, failures)
        if order.spec.order_type in (OrderType.SUBSCRIPTION_ORDER, OrderType.MASSIVE_ORDER):
            await self._ordering.batch_ready(order.order_id, job.batch)
        await self._jobs.ack(job, then=await self._next_batch(order, job))

    async def _package(self, order: Order, job: Job, completed: Mapping[str, list[str]],
                       batch_done: bool) -> dict[str, list[str]]:
        """Packaging: of the items just made (``completed``, by what to say
        of them), those that are not offered for download (pushed) are
        completed now; the others wait InProduction while failed items of
        their batch are tried again. Once the batch is done (no retry), its
        package is built from them and the items made before that waited,
        and they all complete with it. What to complete now."""
        by_id = {item.spec.item_id: item for item in order.items}
        offered = {i for ids in completed.values() for i in ids if self._ordering.access_protocol(order, by_id[i])}
        now = {info: kept for info, ids in completed.items() if (kept := [i for i in ids if i not in offered])}
        if not batch_done:
            if offered:
                await self._ordering.start_items(order.order_id, [i for i in by_id if i in offered],
                                                 WAITING_FOR_PACKAGE)
            return now
        # Made by earlier attempts, waiting: the batch's unfinished items
        # outside this job (a batch has one job at a time; a retry holds the
        # items that failed, and every other item is final or waiting).
        in_job = set(job.item_ids)
        packed = [item for item in order.items if item.spec.item_id in offered or (
            item.batch == job.batch and item.spec.item_id not in in_job
            and item.status.status is OrderStatus.InProduction)]
        if packed:
            name = await self._pack(order, job.batch, packed)
            now[f"Completed; in package {name}"] = [item.spec.item_id for item in packed]
        return now

    async def _pack(self, order: Order, batch: int, items: Sequence[Item]) -> str:
        """Build the package of ``items``, batch ``batch`` of the order; its name."""
        packaging = order.spec.packaging
        assert packaging is not None
        name = package_name(order.order_id, batch, packaging)
        package = await self._packer.pack(
            package_path(self._results, order.owner, order.order_id, name), packaging,
            [Member(path_name(item.spec.item_id),
                    result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
             for item in items])
        self.log.info("batch {batch} of order {order_id} packaged: {name}, {items} items, {files} files, {size} bytes",
                      batch=batch, order_id=order.order_id, name=name, items=len(items), files=package.files,
                      size=package.size)
        return name

    async def _next_batch(self, order: Order, job: Job) -> Job | None:
        """The order's next batch, once the first attempt at this one is over
        (retries of its failed items do not hold the next batch back). An
        expanded massive order's is made now (and queued with its items)."""
        if job.attempt != 1 or not job.chained:
            return None
        template = self._expansion_template(order)
        if template is not None:
            await self._expand(order, template, job.batch)
            return None
        return batch_job(order.order_id, order.spec, order.items, job.batch + 1)

    def _expansion_template(self, order: Order) -> ItemSpec | None:
        """A massive order's one item, when its processor expands it."""
        if order.spec.order_type is not OrderType.MASSIVE_ORDER or len(order.spec.items) != 1:
            return None
        template = order.spec.items[0]
        try:
            processor = self._processor(template.collection_id or "")
        except Exception:
            return None
        return template if IMassiveExpansion.providedBy(processor) else None

    async def _expand(self, order: Order, template: ItemSpec, index: int) -> None:
        """Batch ``index + 1`` of the order, from expansion ``index``; or, once
        the expansion is over, the template item completed."""
        expansion = IMassiveExpansion(self._processor(template.collection_id or ""))
        size = self._config.orders.max_items_per_order
        identifiers = list(await settle(expansion.batch_identifiers(template, index, size)))[:size]
        if not identifiers:
            made = len(order.items) - 1
            text = f"Expanded into {made} items in {index} batches"
            first = next(item for item in order.items if item.spec.item_id == template.item_id)
            if packaged(order.spec.packaging) and self._ordering.access_protocol(order, first):
                # Completed, it is offered like any item: in a package (of no file).
                text += f"; in package {await self._pack(order, first.batch, [first])}"
            await self._ordering.complete_items(order.order_id, [template.item_id], text)
            return
        now = self._clock.seconds()
        info = StatusInfo(OrderStatus.Accepted, f"Batch {index + 1}: waiting for processing", changed_at=now)
        items = [Item(spec=attrs.evolve(template, item_id=f"{template.item_id}-{index * size + n + 1}",
                                        product_id=identifier, fragments=()),
                      status=info, batch=index + 1)
                 for n, identifier in enumerate(identifiers)]
        job = Job(order.order_id, tuple(i.spec.item_id for i in items), (order.spec.priority or Priority.STANDARD).value,
                  batch=index + 1)
        await self._ordering.add_batch(order.order_id, items, job, marker=f"expand-{index}")
        self.wake()

    async def _make(self, order: Order, item: Item, attempt: int) -> Made:
        """Run one item through its processor, then push its result when
        its delivery asks for that."""
        work = ItemWork(order_id=order.order_id, owner=order.owner, item=item.spec, attempt=attempt,
                        directory=result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
        started = self._clock.seconds()
        try:
            processor = self._processor(item.spec.collection_id or "")
            await settle(processor.prepare_item(work))
            await settle(processor.deliver_item(work))
            info = await self._push(order, item)
        except defer.CancelledError:
            raise
        except Exception as e:
            self.log.info("item {item_id} of order {order_id}, attempt {attempt}: {error}", item_id=item.spec.item_id,
                          order_id=order.order_id, attempt=attempt, error=str(e) or type(e).__name__)
            return Made(failure=str(e) or type(e).__name__)
        finally:
            self.stats.setdefault(item.spec.collection_id or "", CollectionStats()).seconds += (
                self._clock.seconds() - started)
        return Made() if info is None else Made(info=info)

    async def _push(self, order: Order, item: Item) -> str | None:
        """onlineDataDelivery: the item's result files sent to the client's
        server (the order's first onlineAddress of the protocol); what to say
        of it. None for any other delivery: the result stays here, to be
        downloaded. A pushed result stays on disk until it expires, but is
        not offered for download (the client asked for it elsewhere)."""
        delivery = item.spec.delivery or order.spec.delivery
        if delivery is None or delivery.method is not DeliveryMethod.ONLINE_DATA_DELIVERY:
            return None
        protocol = delivery.protocol or ""
        pusher = self._pushers.get(protocol)
        address = delivery_address(order.spec, protocol)
        if pusher is None or address is None:  # Submit refuses these: a configuration changed since
            raise PushFailed(f"cannot push over {protocol!r}: " + ("no onlineAddress of that protocol"
                                                                   if pusher is not None else "not offered"))
        files = await self._deliverables.listing(order.owner, order.order_id, item.spec.item_id)
        return str(await settle(pusher.push(address, files)))

    # ------------------------------------------------------------ Submit hooks

    def attach_checks(self) -> None:
        """Let the processors claim identifiers and refuse items at Submit
        (those that provide IOrderChecks), before the configured rules."""
        checker, collections = self._ordering.checker, self._config.collections
        checker.resolve = lambda identifier: (self.collection_of(identifier)
                                              or resolve_collection(identifier, collections))
        checker.check_item = self.check_item

    def collection_of(self, identifier: str) -> str | None:
        """The first collection whose processor claims ``identifier`` (IOrderChecks)."""
        for collection in self._config.collections:
            processor = self._processors.get(collection.id)
            if IOrderChecks.providedBy(processor):
                found = processor.collection_of(identifier)
                if found is not None:
                    return str(found)
        return None

    def check_item(self, collection: CollectionConfig, item: ItemSpec) -> str | None:
        """The collection's processor's objection to ``item`` (IOrderChecks)."""
        processor = self._processors.get(collection.id)
        if IOrderChecks.providedBy(processor):
            refusal = processor.check_item(item)
            return None if refusal is None else str(refusal)
        return None

    async def clean(self, order: Order, item: Item) -> None:
        """Remove an item's result (it has expired): its processor's
        clean_item, and its batch's package with packaging."""
        work = ItemWork(order_id=order.order_id, owner=order.owner, item=item.spec, attempt=0,
                        directory=result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
        if order.spec.packaging is not None and packaged(order.spec.packaging):
            name = package_name(order.order_id, item.batch, order.spec.packaging)
            await self._packer.remove(package_path(self._results, order.owner, order.order_id, name))
        try:
            processor = self._processor(item.spec.collection_id or "")
        except UnknownProcessor as e:
            self.log.warn("cannot clean item {item_id} of order {order_id}: {error}", item_id=item.spec.item_id,
                          order_id=order.order_id, error=str(e))
            return
        await settle(processor.clean_item(work))

    def _processor(self, collection_id: str) -> IItemProcessor:
        processor = self._processors.get(collection_id)
        if processor is None:
            collection: CollectionConfig | None = self._config.collection(collection_id)
            if collection is None:
                raise UnknownProcessor(f"collection {collection_id!r} is no longer configured")
            factory = load_processor(collection.processor, self._builtins)
            processor = self._processors[collection_id] = build_processor(
                factory, collection.processor_options, self._reactor, self._clock, self._threads)
        return processor
