"""The ``dummy`` processor: deterministic content, an optional delay and
failure rate (DESIGN.md's knobs ``size``, ``delay``, ``fail_rate``). Tests,
demos and benchmarks use it."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from zope.interface import implementer

from ..threads import ThreadPools
from .processors import IItemProcessor, ItemWork, file_name


class DummyFailure(Exception):
    pass


def content(item_id: str, size: int) -> bytes:
    """What the dummy writes for ``item_id``: the same bytes every time."""
    block = hashlib.sha256(item_id.encode()).hexdigest().encode() + b"\n"
    return (block * (size // len(block) + 1))[:size]


def result_name(work: ItemWork) -> str:
    return f"{file_name(work.item.product_id or work.item.collection_id or work.item.item_id, 'item')}.dat"


@implementer(IItemProcessor)
class DummyProcessor:
    def __init__(self, options: Mapping[str, Any], reactor: IReactorThreads, clock: IReactorTime,
                 rng: random.Random | None = None, *, threads: ThreadPools) -> None:
        self._size = int(options.get("size", 1024))
        self._delay = float(options.get("delay", 0.0))
        self._fail_rate = float(options.get("fail_rate", 0.0))
        self._reactor = reactor
        self._clock = clock
        self._threads = threads
        self._rng = rng or random.Random()

    async def prepare_item(self, work: ItemWork) -> None:
        if self._delay > 0:
            await task.deferLater(self._clock, self._delay)
        if self._rng.random() < self._fail_rate:
            raise DummyFailure(f"the dummy processor failed on purpose (fail_rate {self._fail_rate})")
        if self._size > 0:
            await self._threads.on_engine(_write, work.directory / result_name(work),
                                        content(work.item.item_id, self._size))

    def deliver_item(self, work: ItemWork) -> None:
        pass

    async def clean_item(self, work: ItemWork) -> None:
        await self._threads.on_engine((work.directory / result_name(work)).unlink, missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    # Idempotent: a second run replaces the file, never adds one.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
