"""Periodic tasks as values: the leader's fencing token their writes carry
(and the refusal of a write with an old one), and the last run of a task, as
the scheduler records it and the operators read it."""

from __future__ import annotations

import attrs


@attrs.frozen
class TaskRunRecord:
    name: str
    at: float  # when it started
    seconds: float
    ok: bool


class Deposed(Exception):
    """A periodic task's write refused: another daemon took the leader lock
    since this one did (its fencing token is old)."""


@attrs.frozen
class Fence:
    """The leader's fencing token, for the scripts of the periodic tasks:
    they are given the epoch's key and ``argument`` (see
    oseod.store.leader.FENCE_HOOK); a write with an older token is refused."""

    token: int

    @property
    def argument(self) -> str:
        return str(self.token)
