"""The periodic tasks of the service, run by whichever daemon holds the
leader lock (:mod:`oseod.store.leader`).

One LoopingCall ticks every TICK seconds on the injected clock: it takes or
renews the lock (for three ticks, so a daemon that dies is replaced within
that) and, while it leads, runs each task whose interval has passed. Tasks
are idempotent and bounded (a batch per run), so a takeover or a slow run
does no harm.

Fencing (:class:`oseod.store.leader.Fence`): before each task, one round
trip checks that this daemon still holds the lock with the token it took
it with; a task marked ``fenced`` is handed the fence and its scripts refuse
to write once a newer leader exists (a daemon frozen in mid-task past the
lock's expiry). The tasks that change orders through the scripts every
writer shares (expire results, end subscriptions) are not fenced inside:
those scripts are guarded by the statuses they may change from, so a
deposed leader running one late changes nothing the new leader has not
changed or would change the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..model.errors import RedisUnavailable, ReplicationShortfall
from ..model.tasks import Deposed, TaskRunRecord
from ..store.leader import LeaderLock, TaskRuns

TICK = 10.0  # seconds


@attrs.define
class PeriodicTask:
    name: str
    interval: float  # seconds; 0 or less: never
    run: Callable[..., Awaitable[object]]
    last: float | None = None  # when this daemon last ran it
    # run(fence=Fence): its scripts check the leader's token (see the module's doc).
    fenced: bool = False


class Scheduler:
    log = Logger()

    def __init__(self, lock: LeaderLock, clock: IReactorTime, tasks: Sequence[PeriodicTask], tick: float = TICK, *,
                 runs: TaskRuns | None = None) -> None:
        """``runs``: where each run is recorded (operators see the last)."""
        self._lock = lock
        self._runs = runs
        self._clock = clock
        self.tasks = list(tasks)
        self._tick = tick
        self._loop: task.LoopingCall | None = None
        self._looping: defer.Deferred[Any] | None = None
        self.leading = False

    async def start(self) -> None:
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self.tick()))
        self._loop.clock = self._clock
        self._looping = self._loop.start(self._tick, now=True)
        self._looping.addErrback(lambda f: self.log.failure("the scheduler stopped", f))

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
            # The loop's deferred fires once a tick in flight is over: its
            # Redis calls are not cut off by Redis stopping after us.
            if self._looping is not None:
                await self._looping
        if self.leading:
            self.leading = False
            await self._lock.release()

    async def tick(self) -> None:
        try:
            leading = await self._lock.hold(3 * self._tick)
        except RedisUnavailable as e:
            if isinstance(e, ReplicationShortfall):
                # The lock not on enough replicas ([redis] min_replicas): Redis answers, so say it here.
                self.log.warn("cannot hold the leader lock ({error}); periodic tasks wait", error=str(e))
            else:
                # Said once by the store's RedisWatch; the next tick tries again.
                self.log.debug("cannot reach the leader lock; periodic tasks wait: {error}", error=str(e))
            return
        except Exception:
            self.log.failure("cannot reach the leader lock; periodic tasks wait")
            return
        if leading != self.leading:
            self.log.info("{this} periodic tasks now", this="this daemon runs the" if leading else "another daemon runs the")
            self.leading = leading
        if not leading:
            return
        now = self._clock.seconds()
        for periodic in self.tasks:
            if periodic.interval <= 0 or (periodic.last is not None and now - periodic.last < periodic.interval):
                continue
            if not await self._still_leading():
                return
            periodic.last = now
            ok = True
            try:
                if periodic.fenced:
                    await periodic.run(fence=self._lock.fence)
                else:
                    await periodic.run()
            except Deposed:
                self._deposed()
                return
            except RedisUnavailable as e:
                # Redis went away meanwhile: the task runs at the first tick
                # after it is back, and the rest of this tick's wait too.
                self.log.warn("periodic task {task} stopped, Redis is away: {error}", task=periodic.name,
                              error=str(e))
                periodic.last = None
                return
            except Exception:
                ok = False
                self.log.failure("periodic task {task} failed; it runs again in {interval} s", task=periodic.name,
                                 interval=periodic.interval)
            if not await self._record(TaskRunRecord(periodic.name, now, self._clock.seconds() - now, ok)):
                return

    async def _still_leading(self) -> bool:
        """Whether the lock is still this daemon's, with its token (a
        daemon frozen past the lock's expiry finds out here)."""
        try:
            if await self._lock.leads():
                return True
        except RedisUnavailable as e:
            self.log.debug("cannot reach the leader lock; periodic tasks wait: {error}", error=str(e))
            return False
        except Exception:
            self.log.failure("cannot reach the leader lock; periodic tasks wait")
            return False
        self._deposed()
        return False

    def _deposed(self) -> None:
        self.log.info("another daemon took over the periodic tasks")
        self.leading = False

    async def _record(self, run: TaskRunRecord) -> bool:
        """Record ``run``; False when another daemon leads now."""
        if self._runs is None:
            return True
        try:
            await self._runs.record(run, self._lock.fence)
        except Deposed:
            self._deposed()
            return False
        except RedisUnavailable as e:
            self.log.warn("cannot record the run of periodic task {task}: {error}", task=run.name, error=str(e))
        except Exception:
            self.log.failure("cannot record the run of periodic task {task}", task=run.name)
        return True

    @property
    def leader(self) -> LeaderLock:
        return self._lock
