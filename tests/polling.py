"""Waiting for a child process (a server the tests started) to be ready.

Outside the reactor there is no Clock to advance: the one honest way is to
poll a condition with a deadline, and this is the one place that does it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
