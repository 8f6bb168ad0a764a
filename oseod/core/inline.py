"""A stand-in for the processing engine: runs the dummy processor's items
right after acceptance, in this process, through the same core methods the
engine will call (start_item, complete_item, fail_item).

It makes the demo order end to end. It keeps nothing durable: an order
accepted just before a crash stays Accepted. The engine replaces it.
"""

from __future__ import annotations

import random

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..config import Config
from ..model.orders import Order, OrderType
from .ordering import IDispatcher, OrderingService

DUMMY = "dummy"


@implementer(IDispatcher)
class InlineProcessor:
    log = Logger()

    def __init__(self, ordering: OrderingService, config: Config, clock: IReactorTime,
                 rng: random.Random | None = None) -> None:
        self._ordering = ordering
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._running: set[defer.Deferred[None]] = set()
        # [processing] workers bounds the orders processed at once: a burst of
        # Submits must not turn into a backlog that starves the requests.
        self._slots = defer.DeferredSemaphore(config.processing.workers)

    def accepted(self, order: Order) -> None:
        if order.spec.order_type in (OrderType.SUBSCRIPTION_ORDER, OrderType.TASKING_ORDER):
            return  # nothing to make until a timeslot or a tasking result arrives
        d = self._slots.run(lambda: defer.Deferred.fromCoroutine(self._process(order)))
        self._running.add(d)
        d.addErrback(lambda f: self.log.failure("processing order {order_id} failed", f, order_id=order.order_id))
        d.addBoth(lambda _: self._running.discard(d))

    async def drain(self) -> None:
        """Wait until every order started so far is processed (tests, shutdown)."""
        while self._running:
            await defer.DeferredList(list(self._running))

    async def _process(self, order: Order) -> None:
        # The dummy's items of an order run side by side, one batch per
        # collection (each has its own knobs): each step is one write for
        # all of them, whatever their number.
        batches: dict[str, list[str]] = {}
        for item in order.items:
            collection = self._config.collection(item.spec.collection_id or "")
            if collection is not None and collection.processor == DUMMY:
                batches.setdefault(collection.id, []).append(item.spec.item_id)
        for collection_id, item_ids in batches.items():
            options = self._config.collection(collection_id).processor_options  # type: ignore[union-attr]
            await self._run_batch(order.order_id, item_ids, _number(options.get("delay")),
                                  _number(options.get("fail_rate")))

    async def _run_batch(self, order_id: str, item_ids: list[str], delay: float, fail_rate: float) -> None:
        started = await self._ordering.start_items(order_id, item_ids)
        running = [item_id for item_id, ok in started.items() if ok]  # not those cancelled meanwhile
        if delay > 0:
            await task.deferLater(self._clock, delay)
        failed = {item_id for item_id in running if self._rng.random() < fail_rate}
        await self._ordering.fail_items(order_id, {
            item_id: f"the dummy processor failed on purpose (fail_rate {fail_rate})" for item_id in failed})
        await self._ordering.complete_items(order_id, [i for i in running if i not in failed])


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0
