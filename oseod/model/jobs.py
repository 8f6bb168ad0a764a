"""A job: the work on some items of one order, as the queue carries it
(oseod.store.jobs keeps it; the engine claims and runs it)."""

from __future__ import annotations

import json

import attrs


@attrs.frozen
class Job:
    """Work on ``items`` of order ``order_id``; ``attempt`` counts from 1."""

    order_id: str
    item_ids: tuple[str, ...]
    priority: str = "STANDARD"
    attempt: int = 1
    batch: int = 0  # which batch of the order (massive orders have several)
    entry_id: str = ""  # the stream entry, once read from the queue
    # Whether its first attempt queues the order's next batch: not when an
    # operator queues failed items again (their next batch is done). Only
    # first attempts read it, so a delayed retry (oseod.store.jobs._PROMOTE)
    # does not carry it.
    chained: bool = True

    def to_json(self) -> str:
        return json.dumps({"order": self.order_id, "items": list(self.item_ids), "attempt": self.attempt,
                           "priority": self.priority, "batch": self.batch}, separators=(",", ":"))
