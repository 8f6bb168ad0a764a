"""What the engine's work comes to: an attempt at an item, the counts per
collection, and the helpers that settle a processor's answers."""

from __future__ import annotations

import inspect
from typing import Any

import attrs
from twisted.internet import defer


class ProcessorError(Exception):
    """A collection's processor cannot be loaded or built."""


@attrs.define
class CollectionStats:
    """What this daemon's engine did for one collection since it started."""

    completed: int = 0
    failed: int = 0  # for good, attempts used up
    retried: int = 0  # attempts that failed and will be tried again
    seconds: float = 0.0  # spent making items (prepare + deliver + push)


@attrs.frozen
class Made:
    """One attempt at an item: why it failed, or what to say of its result."""

    failure: str | None = None
    info: str = "Completed"


def cancellation(error: BaseException) -> bool:
    """Whether ``error`` is a cancellation, also as the first error of a
    gatherResults (how cancelling a job's items comes back)."""
    if isinstance(error, defer.FirstError):
        return bool(error.subFailure.check(defer.CancelledError))
    return isinstance(error, defer.CancelledError)


async def settle(result: Any) -> Any:
    """A processor method's result: a value, a Deferred or a coroutine."""
    if isinstance(result, defer.Deferred) or inspect.isawaitable(result):
        return await result
    return result


def clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
