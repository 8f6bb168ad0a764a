"""The job runner: one job of the queue, run to its end.

Each item of the job goes through its collection's processor (at most
``[processing] workers`` items at once across jobs), its outcome is stored
through the ordering core (:class:`~oseod.core.production.ItemProgress`),
and only then is the job acknowledged: a crash at any moment leaves it
pending. An item whose delivery is onlineDataDelivery is then pushed to the
client's server (:mod:`oseod.jobs.push`); a failed push is a failed attempt.
A failed item is tried again after ``retry_delay`` seconds, doubled at each
attempt, until ``max_attempts``; then it fails with the last error as its
additionalStatusInfo. An item that was finished before a crash is not
redone: the core refuses to start a final item. Packaging and the next
batch are :mod:`.batches`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..config import Config
from ..core.deliverables import files_in, package_path, result_directory
from ..core.destinations import delivery_address
from ..core.packages import package_name, packaged
from ..core.production import ItemProgress
from ..model.errors import NoSuchOrder
from ..model.jobs import Job
from ..model.orders import DeliveryMethod, Item, Order, OrderType
from ..store.jobs import JobStore
from ..threads import ThreadPools
from .attempts import CollectionStats, Made, cancellation, clip, settle
from .batches import Batches
from .packaging import Packer
from .processors import ItemWork, UnknownProcessor
from .push import IPusher, PushFailed
from .registry import ProcessorRegistry
from .turns import TurnBudget


class JobRunner:
    log = Logger()

    def __init__(self, progress: ItemProgress, jobs: JobStore, config: Config, clock: IReactorTime, *,
                 processors: ProcessorRegistry, batches: Batches, packer: Packer, pushers: Mapping[str, IPusher],
                 results: Path, turns: TurnBudget, threads: ThreadPools) -> None:
        self._progress = progress
        self._jobs = jobs
        self._config = config
        self._clock = clock
        self._threads = threads
        self._processors = processors
        self._batches = batches
        self._packer = packer
        # onlineDataDelivery, by protocol: results pushed to the client's server.
        self._pushers = pushers
        self._results = results
        self._turns = turns
        # [processing] workers bounds the items made at once (a job may hold many).
        self._slots = defer.DeferredSemaphore(max(config.processing.workers, 1))
        self._stopping: set[str] = set()  # jobs whose order was cancelled while they ran
        self.stats: dict[str, CollectionStats] = {}

    def order_cancelled(self, job: Job) -> None:
        """``job``, running, is about to be cancelled because its order was:
        it ends acknowledged (not left pending as when the daemon stops)."""
        self._stopping.add(job.entry_id)

    async def run(self, job: Job) -> None:
        try:
            order = await self._progress.find(job.order_id)
            try:
                if order is not None:
                    await self._run_order(job, order)
                    return
            except NoSuchOrder:
                pass
            # Purged, or taken back (a Submit WAIT found on too few replicas) meanwhile.
            self.log.info("job {entry}: order {order_id} is gone", entry=job.entry_id, order_id=job.order_id)
            await self._jobs.ack(job)
        finally:
            self._stopping.discard(job.entry_id)

    async def _run_order(self, job: Job, order: Order) -> None:
        template = self._batches.expansion_template(order)
        if template is not None and job.batch == 0:
            # The order's one item describes what to expand: it is not made
            # itself; its first batch is made from it.
            started = await self._progress.start_items(order.order_id, [template.item_id], "Expanding into batches")
            if started.get(template.item_id):
                await self._batches.expand(order, template, 0)
            await self._jobs.ack(job)
            return
        wanted = set(job.item_ids)
        items = [item for item in order.items if item.spec.item_id in wanted]
        info = "In production" if job.attempt == 1 else f"In production (attempt {job.attempt})"
        started = await self._progress.start_items(order.order_id, [i.spec.item_id for i in items], info)
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
            completed = await self._batches.package(order, job, completed, batch_done=not retrying)
        for info, item_ids in completed.items():
            await self._progress.complete_items(order.order_id, item_ids, info)
        if retrying:
            delay = self._config.processing.retry_delay * 2 ** (job.attempt - 1)
            await self._progress.start_items(order.order_id, list(failures), clip(
                f"Attempt {job.attempt} failed: {next(iter(failures.values()))}; trying again in {delay:g} s"))
            again = Job(job.order_id, tuple(failures), job.priority, job.attempt + 1, job.batch)
            await self._jobs.retry(job, again, self._clock.seconds() + delay,
                                   then=await self._batches.next_batch(order, job))
            return
        if failures:
            await self._progress.fail_items(order.order_id, failures)
        if order.spec.order_type in (OrderType.SUBSCRIPTION_ORDER, OrderType.MASSIVE_ORDER):
            await self._progress.batch_ready(order.order_id, job.batch)
        await self._jobs.ack(job, then=await self._batches.next_batch(order, job))

    async def _make(self, order: Order, item: Item, attempt: int) -> Made:
        """Run one item through its processor, then push its result when
        its delivery asks for that."""
        # Items start a few per reactor turn (see .turns): a job's items
        # completing together, or a processor that answers at once, would
        # otherwise start the next ones all in the turn they completed in.
        await self._turns.take()
        work = ItemWork(order_id=order.order_id, owner=order.owner, item=item.spec, attempt=attempt,
                        directory=result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
        started = self._clock.seconds()
        try:
            processor = self._processors.processor(item.spec.collection_id or "")
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
        files = await self._threads.on_engine(
            files_in, result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
        return str(await settle(pusher.push(address, files)))

    async def clean(self, order: Order, item: Item) -> None:
        """Remove an item's result (it has expired): its processor's
        clean_item, and its batch's package with packaging."""
        work = ItemWork(order_id=order.order_id, owner=order.owner, item=item.spec, attempt=0,
                        directory=result_directory(self._results, order.owner, order.order_id, item.spec.item_id))
        if order.spec.packaging is not None and packaged(order.spec.packaging):
            name = package_name(order.order_id, item.batch, order.spec.packaging)
            await self._packer.remove(package_path(self._results, order.owner, order.order_id, name))
        try:
            processor = self._processors.processor(item.spec.collection_id or "")
        except UnknownProcessor as e:
            self.log.warn("cannot clean item {item_id} of order {order_id}: {error}", item_id=item.spec.item_id,
                          order_id=order.order_id, error=str(e))
            return
        await settle(processor.clean_item(work))
