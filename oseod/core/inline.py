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
        for item in order.items:
            collection = self._config.collection(item.spec.collection_id or "")
            if collection is None or collection.processor != DUMMY:
                continue
            delay = _number(collection.processor_options.get("delay"))
            fail_rate = _number(collection.processor_options.get("fail_rate"))
            item_id = item.spec.item_id
            if not await self._ordering.start_item(order.order_id, item_id):
                continue  # cancelled meanwhile
            if delay > 0:
                await task.deferLater(self._clock, delay)
            if self._rng.random() < fail_rate:
                await self._ordering.fail_item(order.order_id, item_id, "the dummy processor failed on purpose "
                                                                        f"(fail_rate {fail_rate})")
            else:
                await self._ordering.complete_item(order.order_id, item_id)


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0
