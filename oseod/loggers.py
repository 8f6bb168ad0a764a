"""A Logger for the events the daemon sends with every request.

Twisted's ``Logger.emit`` checks each event's level by walking the LogLevel
constants, and a ``Logger`` declared on a class is a descriptor that makes a
new Logger at every access: together about one percent of a Submit, whose
two lines (the order's, the request's) pass through them. ``LeanLogger``
checks the level by a set lookup and is made once, per instance; the events
it sends are those ``Logger.emit`` would.
"""

from __future__ import annotations

from time import time
from typing import Any

from twisted.logger import Logger, LogLevel

_LEVELS = frozenset(LogLevel.iterconstants())


class LeanLogger(Logger):
    def emit(self, level: LogLevel, format: str | None = None, **kwargs: object) -> None:
        if level not in _LEVELS:
            super().emit(level, format, **kwargs)  # says what is wrong with it
            return
        event: dict[str, Any] = kwargs
        event.update(log_logger=self, log_level=level, log_namespace=self.namespace, log_source=self.source,
                     log_format=format, log_time=time())
        if "log_trace" in event:
            event["log_trace"].append((self, self.observer))
        self.observer(event)


def instance_logger(owner: object) -> LeanLogger:
    """The Logger of ``owner``, named as a class's Logger would be (the
    class's full name: the namespace the log's lines show)."""
    kind = type(owner)
    return LeanLogger(namespace=f"{kind.__module__}.{kind.__qualname__}", source=owner)
