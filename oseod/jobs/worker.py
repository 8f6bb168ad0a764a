"""The queue worker: this daemon's hold on the durable job queue
(:mod:`oseod.store.jobs`).

It claims jobs up to ``[processing] workers`` at a time and hands each to
the job runner; it keeps its lease on the jobs it runs (renewing them), takes
back its own pending jobs at start (a restart after a crash) and those of a
consumer that has not renewed them for ``lease_seconds``, and moves retries
whose delay is over back to the queue. While Redis is away its timers and
claims pause, a little longer at each failure in a row.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..model.jobs import Job
from ..store.jobs import JobStore
from ..store.outage import Backoff, is_unavailable
from .attempts import cancellation
from .turns import TurnBudget

POLL_SECONDS = 1.0  # jobs queued by other daemons are seen this late at most
PROMOTE_SECONDS = 1.0  # retries start this late at most


class QueueWorker:
    log = Logger()

    def __init__(self, jobs: JobStore, clock: IReactorTime, run: Callable[[Job], Coroutine[Any, Any, None]], *,
                 consumer: str, workers: int, lease_seconds: float, turns: TurnBudget) -> None:
        """``run``: work on one job, acknowledging it once its outcome is
        stored; ``workers``: jobs at most at once (none: it claims nothing,
        a front daemon); ``turns``: the engine's share of a reactor turn."""
        self._jobs = jobs
        self._clock = clock
        self._run = run
        self.consumer = consumer
        self._workers = workers
        self._lease = lease_seconds
        self._turns = turns
        self._running: dict[str, tuple[Job, defer.Deferred[None]]] = {}
        self._loops: list[task.LoopingCall] = []
        self._polling: defer.Deferred[None] | None = None
        self._upkeep: set[defer.Deferred[None]] = set()
        self._again = False
        self.started = False
        self.backoff = Backoff(clock)

    async def start(self) -> None:
        self.started = True
        if self._workers:
            await self._recover()  # our own jobs still pending from before a crash come first
        for seconds, step in ((POLL_SECONDS, self._poll_timer), (PROMOTE_SECONDS, self._promote),
                              (max(self._lease / 3, 0.01), self._renew), (max(self._lease / 2, 0.01), self._reclaim)):
            loop = task.LoopingCall(self._tracked, step)
            loop.clock = self._clock
            loop.start(seconds, now=False).addErrback(
                lambda f: self.log.failure("a processing timer failed", f))
            self._loops.append(loop)
        self.wake()

    async def stop(self) -> None:
        """Stop taking jobs and cancel those running (left pending, to be
        taken back); returns once the timers' Redis calls in flight have
        settled."""
        self.started = False
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        for _job, running in list(self._running.values()):
            running.cancel()
        waiting = list(self._upkeep) + ([self._polling] if self._polling is not None else [])
        if waiting:
            await defer.DeferredList(waiting, consumeErrors=True)

    @property
    def running(self) -> int:
        """Jobs running now."""
        return len(self._running)

    def jobs_of(self, order_id: str) -> list[Job]:
        """The order's jobs running now."""
        return [job for job, _ in self._running.values() if job.order_id == order_id]

    def cancel(self, job: Job) -> None:
        """Stop running ``job`` (it stays pending unless its runner acknowledges it)."""
        found = self._running.get(job.entry_id)
        if found is not None:
            found[1].cancel()

    async def drain(self) -> None:
        """Wait until every job claimed is done, and what the timers started."""
        while self._running or self._polling is not None or self._upkeep:
            waiting = [d for _, d in self._running.values()] + list(self._upkeep)
            if self._polling is not None:
                waiting.append(self._polling)
            await defer.DeferredList(waiting)

    def wake(self) -> None:
        """Look for jobs now (a Submit here queued one, a worker is free)."""
        if not self.started or not self._workers:
            return
        if self._polling is not None:
            self._again = True
            return
        if self.backoff.paused:
            return  # the poll timer wakes it once the pause is over
        self._polling = defer.ensureDeferred(self._poll())
        self._polling.addErrback(
            lambda f: None if self._redis_away(f) else self.log.failure("claiming jobs failed", f))

        def done(_: object) -> None:
            self._polling = None
            if self._again:
                self._again = False
                self.wake()

        self._polling.addBoth(done)

    # ------------------------------------------------------------ timers

    def _tracked(self, step: Callable[[], Coroutine[Any, Any, None]]) -> defer.Deferred[None]:
        """Run a timer's step; drain() waits for it too. A failure (Redis
        away for a moment) is logged and the timer goes on: a LoopingCall
        whose step fails stops for good."""
        if self.backoff.paused:
            return defer.succeed(None)  # Redis was away a moment ago: not every tick asks it again
        running: defer.Deferred[None] = defer.ensureDeferred(step())
        self._upkeep.add(running)

        def done(result: object) -> None:
            self._upkeep.discard(running)
            if isinstance(result, Failure) and not self._redis_away(result):
                self.log.failure("processing timer {step} failed; it runs again at its next tick", result,
                                 step=getattr(step, "__name__", "?"))

        running.addBoth(done)
        return running

    async def _poll_timer(self) -> None:
        self.wake()

    def _redis_away(self, failure: Failure) -> bool:
        """Whether Redis being away failed a timer or a claim: then claims and
        timers pause (longer at each failure in a row, a few seconds at most)
        until Redis answers a claim or a promotion; the RedisWatch logs it."""
        if not is_unavailable(failure.value):
            return False
        self.backoff.failed()
        return True

    async def _poll(self) -> None:
        free = self._workers - len(self._running)
        if free <= 0:
            return
        claimed = await self._jobs.claim(self.consumer, free)
        self.backoff.succeeded()  # Redis answers
        for job in claimed:
            # Jobs of one claim start a few per reactor turn, by their size
            # (see .turns): each reads its whole order, then starts its items.
            await self._turns.take(len(job.item_ids))
            if not self.started:
                break  # stopped meanwhile: claimed jobs stay pending, taken back at the next start
            self._start(job)

    async def _recover(self) -> None:
        for job in await self._jobs.pending_of(self.consumer):
            if job.entry_id not in self._running:
                self.log.info("taking back job {entry} (order {order_id}) after a restart", entry=job.entry_id,
                              order_id=job.order_id)
                self._start(job)

    async def _reclaim(self) -> None:
        if self._workers - len(self._running) <= 0:
            return
        for job in await self._jobs.reclaim(self.consumer, self._lease):
            if job.entry_id not in self._running:
                self.log.info("took over job {entry} (order {order_id}): its worker stopped renewing it",
                              entry=job.entry_id, order_id=job.order_id)
                self._start(job)

    async def _renew(self) -> None:
        if self._running:
            await self._jobs.renew(self.consumer, [job for job, _ in self._running.values()])

    async def _promote(self) -> None:
        promoted = await self._jobs.promote(self._clock.seconds())
        self.backoff.succeeded()  # Redis answers
        if promoted:
            self.wake()

    def _start(self, job: Job) -> None:
        running = defer.ensureDeferred(self._run(job))
        self._running[job.entry_id] = (job, running)

        def finished(result: object) -> None:
            self._running.pop(job.entry_id, None)
            if isinstance(result, Failure) and is_unavailable(result.value):
                self.log.warn("job {entry} (order {order_id}) stopped, Redis is away: it stays queued ({error})",
                              entry=job.entry_id, order_id=job.order_id, error=str(result.value))
            elif isinstance(result, Failure) and not (result.value is not None and cancellation(result.value)):
                self.log.failure("job {entry} (order {order_id}) failed; it stays queued", result,
                                 entry=job.entry_id, order_id=job.order_id)
            self.wake()

        running.addBoth(finished)
