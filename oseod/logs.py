"""Log observers for ``twistd --logger``: plain text or JSON lines on stdout,
with the debug chatter of Twisted's FTP module filtered out.

    twistd -n --pidfile= --logger oseod.logs.text_stdout oseod ...
    twistd -n --pidfile= --logger oseod.logs.json_stdout oseod ...

``OSEOD_LOG_LEVEL`` (debug, info, warn, error; default info) sets the floor.

Lines are written together once per reactor turn (``LineObserver``), warnings
and errors at once. Control characters in a line (a carriage return in a
login name, an escape sequence) are written escaped, so logged values cannot
forge or hide lines (:func:`escape_controls`).

A plain ``twistd -n oseod`` (no ``--logger``, no ``--syslog``, no
``--logfile`` but ``-``) gets the text observer too
(:func:`default_observer`): twistd's own formats and writes every event
alone, which costs a cached GetCapabilities a quarter of its rate. Under any
other observer (``--logfile FILE``, ``--syslog``, a daemonised twistd) the
daemon puts what twistd installed behind the same filter and escaping when
it starts (:func:`tame_global_observers`).
"""

from __future__ import annotations

import os
import re
import sys

from collections.abc import Callable, Mapping
from typing import Any, TextIO

from twisted.logger import (
    FileLogObserver,
    LogPublisher,
    ILogObserver,
    LogEvent,
    LogLevel,
    PredicateResult,
    formatEventAsClassicLogText,
    eventAsJSON,
    formatTime,
)
from zope.interface import implementer

from .ftp.noise import ftp_chatter
from .reactors import IDaemonReactor, daemon_reactor
from .sftp.noise import sftp_chatter
from .store.noise import redis_chatter


# Every control character but the line feed: C0 (tab and carriage return
# included), DEL, C1, and Unicode's line and paragraph separators, which some
# viewers break lines at. A line feed starts an indented continuation line
# instead (the classic format's own rule: "\n\t", whose tab stays), so it
# cannot forge a line either.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]|(?<!\n)\t")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with each control character but the line feed written as
    ``\\xNN`` or ``\\uNNNN``: a name ``"bob\\r..."`` is logged as ``bob\\x0d...``."""
    # isprintable() (C speed) is False for any control character, so the
    # regular expression runs only for the few lines that may need it: with
    # every request logged, it would cost as much again as formatting the
    # line (measured: 0.52 µs a line unescaped, 2.4 µs with the expression
    # alone, 0.66 µs so).
    return text if text.isprintable() else _CONTROL.sub(_escape, text)


def _floor() -> LogLevel:
    name = os.environ.get("OSEOD_LOG_LEVEL", "info").lower()
    try:
        return LogLevel.levelWithName(name)
    except Exception:
        return LogLevel.info


def filtered(observer: ILogObserver) -> ILogObserver:
    return _Filtered(observer, _floor())


@implementer(ILogObserver)
class _Filtered:
    """``observer`` behind the level floor and the chatter filters.

    What a FilteringLogObserver with these predicates does, for every event
    the daemon logs, each request's among them: its general machinery (a
    loop over predicates, a comparison of constants in Python per event)
    cost a percent of a GetStatus. The levels below the floor are a set."""

    def __init__(self, observer: ILogObserver, floor: LogLevel) -> None:
        self._observer = observer
        self._below = frozenset(level for level in LogLevel.iterconstants() if level < floor)

    def __call__(self, event: LogEvent) -> None:
        if event.get("log_level") in self._below:
            return
        no = PredicateResult.no
        if ftp_chatter(event) is no or sftp_chatter(event) is no or redis_chatter(event) is no:
            return
        self._observer(event)


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
            return _escaped_line(formatEventAsClassicLogText(event, formatTime=self._time))
        try:
            text = form.format_map(event)
        except Exception:
            return _escaped_line(formatEventAsClassicLogText(event, formatTime=self._time))
        if not text:
            return None
        line = f"{self._time(event.get('log_time'))} [{event.get('log_namespace', '-')}#{level.name}] {text}"
        return escape_controls(line).replace("\n", "\n\t") + "\n"


def _escaped_line(line: str | None) -> str | None:
    # The stock formatter indents continuation lines already; what it leaves
    # is every other control character.
    return escape_controls(line) if line else line


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

    def __init__(self, stream: TextIO, format: Callable[[LogEvent], str | None], reactor: IDaemonReactor) -> None:
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


def text_observer(stream: TextIO, reactor: IDaemonReactor) -> ILogObserver:
    return _tame(filtered(LineObserver(stream, ClassicText(), reactor)))


def json_observer(stream: TextIO, reactor: IDaemonReactor) -> ILogObserver:
    # No RFC 7464 record separator: one JSON object per line, as journald,
    # jq and log shippers expect.
    return _tame(filtered(LineObserver(stream, _json_line, reactor)))


def _json_line(event: LogEvent) -> str:
    # json.dumps escapes C0 and (ensure_ascii) everything beyond ASCII; DEL
    # is ASCII and passes, so it is escaped here (it can only be inside a
    # string, where \u007f means the same).
    return eventAsJSON(event).replace("\x7f", "\\u007f") + "\n"


# ------------------------------------------------------------ twistd's own observer

_TAMED = "_oseod_tamed"  # set on observers that filter and escape already


def _tame(observer: ILogObserver) -> ILogObserver:
    setattr(observer, _TAMED, True)
    return observer


def _escaped_values(event: LogEvent) -> LogEvent:
    """``event`` with control characters escaped in its text values: a copy,
    made only when one has any."""
    dirty = [key for key, value in event.items()
             if isinstance(value, str) and not value.isprintable() and _CONTROL.search(value)]
    if not dirty:
        return event
    copy = dict(event)
    for key in dirty:
        copy[key] = escape_controls(copy[key])
    return copy


@implementer(ILogObserver)
class _Tamed:
    """Another observer behind the daemon's level floor, chatter filter and
    escaping. A file observer (twistd's own, on stdout or ``--logfile``) has
    its lines escaped whole, tracebacks included; any other (``--syslog``)
    gets the event with its text values escaped."""

    def __init__(self, observer: ILogObserver) -> None:
        self.original = observer
        self._inner = filtered(observer)
        self._format: Callable[[LogEvent], str | None] | None = None
        if isinstance(observer, FileLogObserver):
            self._format = observer.formatEvent
            observer.formatEvent = self._escaped_format
        setattr(self, _TAMED, True)

    def _escaped_format(self, event: LogEvent) -> str | None:
        assert self._format is not None
        return _escaped_line(self._format(event))

    def __call__(self, event: LogEvent) -> None:
        self._inner(event if self._format is not None else _escaped_values(event))

    def restore(self) -> ILogObserver:
        """The observer as it was."""
        if self._format is not None and isinstance(self.original, FileLogObserver):
            self.original.formatEvent = self._format
        return self.original


def tame_global_observers(publisher: LogPublisher | None = None) -> Callable[[], None]:
    """Put every observer on ``publisher`` (twistd's, whatever ``--logfile``,
    ``--syslog`` or ``--logger`` chose) behind the daemon's level floor,
    chatter filter and escaping; return what undoes it.

    twistd installs its observer before the daemon's code runs and offers no
    hook to wrap it, so the publisher's list is reached directly. Observers
    made here (``--logger oseod.logs.*``) do all that already and are left
    alone. Should a later Twisted keep its observers elsewhere, the log stays
    as it is: unfiltered, never broken."""
    if publisher is None:
        from twisted.logger import globalLogPublisher as publisher
    observers = getattr(publisher, "_observers", None)
    if not isinstance(observers, list):
        return lambda: None
    for index, observer in enumerate(observers):
        if not getattr(observer, _TAMED, False):
            observers[index] = _Tamed(observer)

    def undo() -> None:
        for index, observer in enumerate(observers):
            if isinstance(observer, _Tamed):
                observers[index] = observer.restore()

    return undo


# The entry points twistd calls (no arguments); it has installed its reactor
# before it asks for the observer.


def text_stdout() -> ILogObserver:
    return text_observer(sys.stdout, daemon_reactor())


def json_stdout() -> ILogObserver:
    return json_observer(sys.stdout, daemon_reactor())


def default_observer(twistd_options: Mapping[str, Any] | None) -> Callable[[], ILogObserver] | None:
    """:func:`text_stdout` when twistd, run with ``twistd_options`` (its own,
    before the ``oseod`` subcommand), would write its stock text lines to
    stdout: ``-n`` with no ``--logger``, no ``--syslog`` and no ``--logfile``
    or ``--logfile=-``. The lines read the same; they are made cheaply, a
    debug event below ``OSEOD_LOG_LEVEL`` is dropped before it is formatted,
    and a turn's lines are written at once. None otherwise: twistd then
    logs as it was told (``twist`` and the others have options of their
    own, and no ``nodaemon``)."""
    if twistd_options is None or not twistd_options.get("nodaemon"):
        return None
    if twistd_options.get("logger") or twistd_options.get("syslog"):
        return None
    if twistd_options.get("logfile") not in (None, "", "-"):
        return None
    return text_stdout


class GlobalLogTaming:
    """:func:`tame_global_observers` as the daemon's first start-up step."""

    def __init__(self) -> None:
        self._undo: Callable[[], None] | None = None

    def start(self) -> None:
        self._undo = tame_global_observers()

    def stop(self) -> None:
        if self._undo is not None:
            undo, self._undo = self._undo, None
            undo()
