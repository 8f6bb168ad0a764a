"""The root service: starts the daemon's parts in order and fails loudly.

twistd's MultiService ignores a child's asynchronous start-up failure, so a
daemon whose Redis is down would sit there listening and answering 500s. Here
each step is awaited before the next begins; the first failure stops what
already started and ends the process with status 1 and one clear log line,
the last one it writes (what the journal shows first when the unit fails).
Steps stop in reverse order, so Redis outlives everything that uses it, and
each part's stop waits for its own Redis calls in flight: nothing in the
log after the cause is a part complaining that Redis went away.

A stop after a complete start (SIGTERM) is a drain: the daemon turns not
ready at once (``/ready`` answers 503), keeps serving for ``drain_seconds``
so that load balancers notice and send the next requests elsewhere, then
stops its steps as above, each named in the log. The steps' order makes
the rest of the drain (see oseod.tap): the listeners stop listening, the
requests and transfers in flight finish, the periodic tasks stop and the
leader lock is let go, the engine stops claiming jobs, the outbox stops.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import ILogObserver, Logger
from twisted.python.components import Componentized

from .reactors import IDaemonReactor
from .readiness import Readiness
from .store.outage import is_unavailable

Action = Callable[[], Awaitable[object] | object]


async def _run(action: Action) -> object:
    result = action()
    if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
        return await result  # type: ignore[misc]
    return result


@attrs.frozen
class Step:
    name: str
    start: Action
    stop: Action | None = None


class DaemonService(Service):
    log = Logger()

    def __init__(self, reactor: IDaemonReactor, exit: Callable[[int], None] | None = None, *,
                 readiness: Readiness | None = None, drain_seconds: float = 0.0, clock: IReactorTime | None = None,
                 log_observer: Callable[[], ILogObserver] | None = None) -> None:
        """``readiness``: moved to serving once every step started, to
        draining at a stop; ``drain_seconds``: how long a stop keeps serving
        first, on ``clock`` (the reactor by default); ``log_observer``: makes
        the observer twistd is to log to (see ``setServiceParent``)."""
        self._log_observer = log_observer
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        self.readiness = readiness if readiness is not None else Readiness()
        self._drain_seconds = drain_seconds
        self._steps: list[Step] = []
        self._started: list[Step] = []
        self._starting: defer.Deferred[None] | None = None
        self._running = False
        self._serving_on: defer.Deferred[None] | None = None
        self._exit = exit if exit is not None else _exit_after_shutdown(reactor)
        self.name = "oseod"

    def setServiceParent(self, parent: Any) -> None:
        # twistd makes its Application after makeService and, when not given
        # --logger, logs to the application's ILogObserver if it has one
        # (the component a .tac file sets): the one place to choose the
        # observer before logging begins. Set only when none is there.
        if (self._log_observer is not None and isinstance(parent, Componentized)
                and parent.getComponent(ILogObserver) is None):
            parent.setComponent(ILogObserver, self._log_observer())
        super().setServiceParent(parent)

    def step(self, name: str, start: Action, stop: Action | None = None) -> None:
        """Add a part to start after the ones added before it."""
        self._steps.append(Step(name, start, stop))

    def startService(self) -> defer.Deferred[None]:  # type: ignore[override]
        super().startService()
        self._starting = defer.Deferred.fromCoroutine(self._start())
        return self._starting

    async def _start(self) -> None:
        for step in self._steps:
            try:
                await _run(step.start)
            except Exception as e:
                reason = str(e) or type(e).__name__
                await self._stop_started(quietly=True)
                self.log.critical("oseod could not start: {step}: {reason}", step=step.name, reason=reason)
                self._exit(1)
                return
            self._started.append(step)
        self._running = True
        self.readiness.serving()
        self.log.info("oseod is running")

    def stopService(self) -> defer.Deferred[None]:  # type: ignore[override]
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._starting is not None:
            # A stop request during start-up waits for the start to settle,
            # so nothing is left half-started.
            await self._starting
        if not self._running:
            await self._stop_started()
            return
        self._running = False
        self.readiness.draining()
        restore = self._take_signals()
        try:
            if self._drain_seconds > 0:
                self.log.info("drain: not ready (/ready answers 503); still serving for {seconds} s",
                              seconds=self._drain_seconds)
                self._serving_on = task.deferLater(self._clock, self._drain_seconds, lambda: None)
                try:
                    await self._serving_on
                except defer.CancelledError:
                    pass
            else:
                self.log.info("drain: not ready (/ready answers 503)")
            await self._stop_started(announce=True)
        finally:
            restore()
        self.log.info("drain: done, oseod stops")
        # twistd ends a process stopped by a signal by killing itself with
        # that signal again (status 143 to a shell, -15 to Popen). A drained
        # daemon stopped as it was asked: it exits 0, which every
        # supervisor reads as a clean stop.
        if getattr(self._reactor, "_exitSignal", None) is not None:
            setattr(self._reactor, "_exitSignal", None)  # twistd's own, not in an interface

    def _take_signals(self) -> Callable[[], None]:
        """While draining, SIGTERM or SIGINT again (a second Ctrl-C, an
        impatient supervisor) ends the serving period at once instead of
        making Twisted's handler stop a reactor already stopping (a
        traceback). Returns what puts the previous handlers back."""
        reactor = self._reactor
        if not hasattr(reactor, "callFromThread") or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}

        def again(number: int, frame: Any) -> None:
            reactor.callFromThread(self._asked_again, signal.Signals(number).name)

        for number in previous:
            signal.signal(number, again)

        def restore() -> None:
            for number, handler in previous.items():
                if handler is not None:  # None: not set from Python, nothing to put back
                    signal.signal(number, handler)

        return restore

    def _asked_again(self, name: str) -> None:
        serving_on, self._serving_on = self._serving_on, None
        if serving_on is not None and not serving_on.called:
            self.log.info("drain: {signal} again, serving no longer", signal=name)
            serving_on.cancel()
        else:
            self.log.info("drain: {signal} again, already stopping", signal=name)

    async def _stop_started(self, quietly: bool = False, announce: bool = False) -> None:
        """Stop the started steps, last first. ``quietly`` (a failed start):
        a step that fails to stop gets one line, not a traceback, so the
        cause stays in view. ``announce`` (a drain): each step stopped gets
        a line."""
        while self._started:
            step = self._started.pop()
            if step.stop is None:
                continue
            try:
                await _run(step.stop)
                if announce:
                    self.log.info("drain: stopped {step}", step=step.name)
            except Exception as e:
                if quietly or is_unavailable(e):  # (Redis away: the RedisWatch has said so)
                    self.log.warn("error while stopping {step}: {reason}", step=step.name,
                                  reason=str(e) or type(e).__name__)
                else:
                    self.log.failure("error while stopping {step}", step=step.name)


# Allocations between two collections of the youngest generation (Python's
# default: 700).
YOUNG_COLLECTION_EVERY = 10_000


def settle_heap() -> None:
    """Keep what start-up made out of the cyclic garbage collector's way.

    The modules, config, schemas and connections built at start-up live as
    long as the process; left in the collector's generations, every full
    collection walks them again, a pause of milliseconds that under load
    shows in the slowest requests (measured: Submit p99 under load 29 ms,
    12 ms frozen). Frozen, they are never scanned; what requests allocate is
    collected as before. The last start-up step of the daemon process (not
    of tests, which build many daemons in one process).

    The youngest generation is collected less often: what such a
    collection walks is what is still alive of the young objects, under load
    mostly the requests in flight, about as many however long it waited.
    Measured over a Submit load run (bench/ordering.py, start-up included):
    the collector took 0.27 s of the daemon's 8.2 s of CPU at Python's
    default of 700 allocations (a collection every dozen Submits), 0.12 s
    at 10,000. Garbage cycles wait a little longer for their collection: a
    few thousand young objects at most."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


def _exit_after_shutdown(reactor: IDaemonReactor) -> Callable[[int], None]:
    """Stop the reactor and leave the process with ``status`` once the
    shutdown triggers have run (twistd has no other way to set the status)."""

    def exit(status: int) -> None:
        def leave() -> None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

        reactor.addSystemEventTrigger("after", "shutdown", leave)
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    return exit
