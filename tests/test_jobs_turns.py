"""The engine's share of a reactor turn: a burst of its work (the items of
a job a processor makes at once) runs a slice per turn, and what the reactor
had to do meanwhile (a request) runs between two slices."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, task
from twisted.python.failure import Failure

from oseod.config import CollectionConfig, Config, OrdersConfig, ProcessingConfig
from oseod.jobs.turns import PER_TURN, TurnBudget
from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderStatus, OrderType
from oseod.store.connection import Redis
from tests.polling import eventually
from tests.test_jobs_engine import ALICE, CountingProcessor, daemon, statuses


def test_work_beyond_a_turns_budget_waits_for_the_next_turn() -> None:
    clock = task.Clock()
    budget = TurnBudget(clock, per_turn=3)
    ran: list[str] = []
    for n in range(7):
        budget.take().addCallback(lambda _, n=n: ran.append(f"work {n}"))
    assert ran == ["work 0", "work 1", "work 2"] and budget.waiting == 4
    clock.callLater(0, ran.append, "request")  # came in during the burst
    clock.advance(0)
    # The next turn: a slice of the waiting work, then the request, then the rest.
    assert ran == ["work 0", "work 1", "work 2", "work 3", "work 4", "work 5", "request", "work 6"]
    assert budget.waiting == 0


def test_a_piece_of_work_takes_its_units_and_a_large_one_has_a_turn_to_itself() -> None:
    clock = task.Clock()
    budget = TurnBudget(clock, per_turn=3)
    ran: list[str] = []
    for name, units in (("small", 1), ("job of 3", 3), ("job of 100", 100), ("item", 1)):
        budget.take(units).addCallback(lambda _, name=name: ran.append(name))
    assert ran == ["small"]  # the job of 3 would overspend this turn's budget
    clock.callLater(0, ran.append, "request")
    clock.advance(0)
    assert ran == ["small", "job of 3", "request", "job of 100", "item"]


def test_a_unit_put_off_and_cancelled_is_forgotten() -> None:
    clock = task.Clock()
    budget = TurnBudget(clock, per_turn=1)
    budget.take()
    waiting = budget.take()
    failures: list[Failure] = []
    waiting.addErrback(failures.append)
    waiting.cancel()
    assert budget.waiting == 0 and failures[0].check(defer.CancelledError)
    clock.advance(0)
    assert budget.take().called  # the next turn's budget is whole


def test_a_budget_not_spent_costs_no_turn() -> None:
    clock = task.Clock()
    budget = TurnBudget(clock, per_turn=2)
    assert budget.take().called and budget.take().called
    assert clock.getDelayedCalls() == []  # nothing put off, nothing scheduled


ITEMS = 200
MANY = CollectionConfig(id="urn:x:counted", processor="counting", order_types=("PRODUCT_ORDER",))
CONFIG = Config(orders=OrdersConfig(max_items_per_order=ITEMS, max_active_items_per_user=10_000),
                processing=ProcessingConfig(workers=4), collections=(MANY,))


@pytest_twisted.ensureDeferred
async def test_the_engine_gives_the_reactor_back_between_slices_of_a_job(redis: Redis) -> None:
    """The counting processor makes an item at once (no thread, no I/O): a
    job of 200 items would run all of them in one turn. The engine's turns
    are a Clock here, so each turn is one advance."""
    CountingProcessor.made.clear()
    turns = task.Clock()
    d = daemon(redis, config=CONFIG, turns=turns)
    order = await d.service.submit(ALICE, OrderSpec(OrderType.PRODUCT_ORDER, items=tuple(
        ItemSpec(item_id=f"i{n}", product_id=f"p{n}", collection_id=MANY.id) for n in range(ITEMS))), Notification())
    await d.engine.start()

    def made() -> int:
        return sum(n for (order_id, _), n in CountingProcessor.made.items() if order_id == order.order_id)

    async def items_waiting() -> bool:
        return bool(turns.getDelayedCalls())

    # The job's start took a whole turn (200 items' worth): its items wait.
    await eventually(items_waiting, what="the job's items to wait for a turn")
    first = made()
    seen: list[int] = []
    turns.callLater(0, lambda: seen.append(made()))  # a request that came in meanwhile
    turns.advance(0)  # every later turn (a Clock runs what each schedules)
    assert first == 0 and seen == [PER_TURN]  # the request ran after one slice of items
    await d.engine.drain()
    assert made() == ITEMS
    assert await statuses(d, order.order_id) == (OrderStatus.Completed, [OrderStatus.Completed] * ITEMS)
    await d.engine.stop()
