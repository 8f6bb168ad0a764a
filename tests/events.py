"""The log events a test wants to see, collected while it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.logger import globalLogPublisher

Event = dict[str, Any]


@contextmanager
def captured(wanted: Callable[[Event], bool]) -> Iterator[list[Event]]:
    """The events logged meanwhile for which ``wanted`` says yes."""
    events: list[Event] = []

    def observe(event: Event) -> None:
        if wanted(event):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(observe)


def transfer_event(event: Event) -> bool:
    """One line of the transfer log (a download, complete or not)."""
    return "bytes_sent" in event
