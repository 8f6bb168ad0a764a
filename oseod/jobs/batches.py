"""An order's batches, as the job runner finishes them: packaging (the items
offered for download wait, made, until every item of their batch is final;
then the batch's package is built (:mod:`oseod.jobs.packaging`) and they
complete with it, so that whoever sees them Completed finds their package),
the next batch's job, and the expansion of a massive order given as one
item into batches (:class:`~.processors.IMassiveExpansion`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..config import Config
from ..core.deliverables import package_path, path_name, result_directory
from ..core.orderstate import batch_job
from ..core.packages import package_name, packaged
from ..core.production import ItemProgress
from ..model.orders import Item, ItemSpec, Order, OrderStatus, OrderType, Priority, StatusInfo
from ..model.jobs import Job
from .attempts import settle
from .packaging import Member, Packer
from .registry import ProcessorRegistry

WAITING_FOR_PACKAGE = "Made; waiting for the other items of its batch, to be packaged with them"


class Batches:
    log = Logger()

    def __init__(self, progress: ItemProgress, config: Config, clock: IReactorTime, *,
                 processors: ProcessorRegistry, packer: Packer, results: Path, wake: Callable[[], None]) -> None:
        """``wake``: look for jobs now (a batch was just queued)."""
        self._progress = progress
        self._config = config
        self._clock = clock
        self._processors = processors
        self._packer = packer
        self._results = results
        self._wake = wake

    async def package(self, order: Order, job: Job, completed: Mapping[str, list[str]],
                      batch_done: bool) -> dict[str, list[str]]:
        """Packaging: of the items just made (``completed``, by what to say
        of them), those that are not offered for download (pushed) are
        completed now; the others wait InProduction while failed items of
        their batch are tried again. Once the batch is done (no retry), its
        package is built from them and the items made before that waited,
        and they all complete with it. What to complete now."""
        by_id = {item.spec.item_id: item for item in order.items}
        offered = {i for ids in completed.values() for i in ids if self._progress.access_protocol(order, by_id[i])}
        now = {info: kept for info, ids in completed.items() if (kept := [i for i in ids if i not in offered])}
        if not batch_done:
            if offered:
                await self._progress.start_items(order.order_id, [i for i in by_id if i in offered],
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

    async def next_batch(self, order: Order, job: Job) -> Job | None:
        """The order's next batch, once the first attempt at this one is over
        (retries of its failed items do not hold the next batch back). An
        expanded massive order's is made now (and queued with its items)."""
        if job.attempt != 1 or not job.chained:
            return None
        template = self.expansion_template(order)
        if template is not None:
            await self.expand(order, template, job.batch)
            return None
        return batch_job(order.order_id, order.spec, order.items, job.batch + 1)

    def expansion_template(self, order: Order) -> ItemSpec | None:
        """A massive order's one item, when its processor expands it."""
        if order.spec.order_type is not OrderType.MASSIVE_ORDER or len(order.spec.items) != 1:
            return None
        template = order.spec.items[0]
        return template if self._processors.expansion(template.collection_id or "") is not None else None

    async def expand(self, order: Order, template: ItemSpec, index: int) -> None:
        """Batch ``index + 1`` of the order, from expansion ``index``; or, once
        the expansion is over, the template item completed."""
        expansion = self._processors.expansion(template.collection_id or "")
        assert expansion is not None  # expansion_template said so
        size = self._config.orders.max_items_per_order
        identifiers = list(await settle(expansion.batch_identifiers(template, index, size)))[:size]
        if not identifiers:
            made = len(order.items) - 1
            text = f"Expanded into {made} items in {index} batches"
            first = next(item for item in order.items if item.spec.item_id == template.item_id)
            if packaged(order.spec.packaging) and self._progress.access_protocol(order, first):
                # Completed, it is offered like any item: in a package (of no file).
                text += f"; in package {await self._pack(order, first.batch, [first])}"
            await self._progress.complete_items(order.order_id, [template.item_id], text)
            return
        now = self._clock.seconds()
        info = StatusInfo(OrderStatus.Accepted, f"Batch {index + 1}: waiting for processing", changed_at=now)
        items = [Item(spec=attrs.evolve(template, item_id=f"{template.item_id}-{index * size + n + 1}",
                                        product_id=identifier, fragments=()),
                      status=info, batch=index + 1)
                 for n, identifier in enumerate(identifiers)]
        job = Job(order.order_id, tuple(i.spec.item_id for i in items), (order.spec.priority or Priority.STANDARD).value,
                  batch=index + 1)
        await self._progress.add_batch(order.order_id, items, job, marker=f"expand-{index}")
        self._wake()
