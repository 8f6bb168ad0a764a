"""Log observers for ``twistd --logger``: plain text or JSON lines on stdout,
with the debug chatter of Twisted's FTP module filtered out.

    twistd -n --pidfile= --logger oseod.logs.text_stdout oseod ...
    twistd -n --pidfile= --logger oseod.logs.json_stdout oseod ...

``OSEOD_LOG_LEVEL`` (debug, info, warn, error; default info) sets the floor.

Lines are written together once per reactor turn (``LineObserver``), warnings
and errors at once.
"""

from __future__ import annotations

import os
import sys

from collections.abc import Callable
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    ILogFilterPredicate,
    PredicateResult,
    formatEventAsClassicLogText,
    eventAsJSON,
    formatTime,
)
from zope.interface import implementer, provider

from .ftp.noise import ftp_chatter


def _floor() -> LogLevel:
    name = os.environ.get("OSEOD_LOG_LEVEL", "info").lower()
    try:
        return LogLevel.levelWithName(name)
    except Exception:
        return LogLevel.info


def filtered(observer: ILogObserver) -> ILogObserver:
    floor = _floor()

    # One predicate for both rules: it runs for every event the daemon logs,
    # each request's among them.
    @provider(ILogFilterPredicate)
    def wanted(event: LogEvent) -> object:
        level = event.get("log_level")
        if level is not None and level < floor:
            return PredicateResult.no
        return ftp_chatter(event)

    return FilteringLogObserver(observer, [wanted])


class ClassicText:
    """Twisted's classic log line (``formatEventAsClassicLogText``:
    ``{time} [{namespace}#{level}] {text}``), made cheaply for the common
    event.

    The daemon logs with every request; the stock formatter renders the
    time zone offset anew per event and fills the format through
    ``string.Formatter`` in Python, which together cost several percent of a
    Submit. Here the time stamp is made once per second and the format is
    filled by ``str.format_map``. Events it cannot fill that way (a
    ``{call()}`` field, a failure with its traceback, a legacy event with
    its own system) go to the stock formatter, so every line reads the same.
    """

    def __init__(self) -> None:
        self._second: int | None = None
        self._stamp = "-"

    def _time(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._second, self._stamp = second, formatTime(second)
        return self._stamp

    def __call__(self, event: LogEvent) -> str | None:
        form = event.get("log_format")
        level = event.get("log_level")
        if (not isinstance(form, str) or level is None or "log_failure" in event or "log_system" in event):
            return formatEventAsClassicLogText(event, formatTime=self._time)
        try:
            text = form.format_map(event)
        except Exception:
            return formatEventAsClassicLogText(event, formatTime=self._time)
        if not text:
            return None
        line = f"{self._time(event.get('log_time'))} [{event.get('log_namespace', '-')}#{level.name}] {text}"
        return line.replace("\n", "\n\t") + "\n"


@implementer(ILogObserver)
class LineObserver:
    """Formatted events to ``stream``, written and flushed together at the
    end of the reactor turn that logged them.

    Each request logs a line or two; a write and flush apiece cost a system
    call each, several percent of a Submit. Batched, a busy turn costs one.
    A warning or worse is written at once, with whatever waited before it,
    so a crash report is never held back; so is everything once the reactor
    has stopped. At most the info lines of the turn a SIGKILL interrupts are
    lost."""

    def __init__(self, stream: TextIO, format: Callable[[LogEvent], str | None], reactor: Any) -> None:
        self._stream = stream
        self._format = format
        self._reactor = reactor
        self._lines: list[str] = []
        self._flushing: Any = None
        reactor.addSystemEventTrigger("after", "shutdown", self.flush)

    def __call__(self, event: LogEvent) -> None:
        line = self._format(event)
        if not line:
            return
        self._lines.append(line)
        level = event.get("log_level")
        if (level is not None and level >= LogLevel.warn) or not self._reactor.running:
            self.flush()
        elif self._flushing is None:
            self._flushing = self._reactor.callLater(0, self.flush)

    def flush(self) -> None:
        if self._flushing is not None:
            if self._flushing.active():
                self._flushing.cancel()
            self._flushing = None
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            self._stream.write(text)
            self._stream.flush()


def text_observer(stream: TextIO, reactor: Any) -> ILogObserver:
    return filtered(LineObserver(stream, ClassicText(), reactor))


def json_observer(stream: TextIO, reactor: Any) -> ILogObserver:
    # No RFC 7464 record separator: one JSON object per line, as journald,
    # jq and log shippers expect.
    return filtered(LineObserver(stream, lambda event: eventAsJSON(event) + "\n", reactor))


# The entry points twistd calls (no arguments); it has installed its reactor
# before it asks for the observer.


def text_stdout() -> ILogObserver:
    from twisted.internet import reactor

    return text_observer(sys.stdout, reactor)


def json_stdout() -> ILogObserver:
    from twisted.internet import reactor

    return json_observer(sys.stdout, reactor)
