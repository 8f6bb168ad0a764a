"""Waiting for what runs in real time: a child process (a server the tests
started) to be ready, or work inside the reactor that waits on Redis.

There is no Clock to advance for those: the one honest way is to poll a
condition with a deadline, and this is the one place that does it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from twisted.internet import reactor, task

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.02) -> T:
    """Call ``condition`` until it returns something truthy and return that;
    AssertionError naming ``what`` once ``timeout`` seconds have passed.
    ``condition`` may raise to give up early (a server that exited)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    """Inside the reactor: await ``check`` until it holds, letting the
    reactor run in between; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.005, lambda: None)
