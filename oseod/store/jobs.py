"""The durable job queue: Redis Streams read through one consumer group.

A job is the work on some items of one order (a batch). It is written in the
same atomic step that accepts the order (see OrderStore.create, which takes
:func:`job_fields`), so an accepted order always has its job. A worker
(one consumer per daemon) claims jobs with XREADGROUP: a claimed job stays in
the group's pending list until it is acknowledged, which happens only once
its items' outcome is stored. A daemon that dies leaves its jobs pending;
after ``lease`` seconds without renewal another daemon reclaims them
(XAUTOCLAIM). Work may therefore run twice, never zero times: processors make
their effects idempotent, and the core refuses to move an item that is final.

FAST_TRACK jobs have a stream of their own, read first. A job to retry
leaves the stream for a sorted set scored by when it is due, and goes back
when it is (:meth:`JobStore.promote`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import txredisapi

from ..model import codec
from ..model.jobs import Job
from . import keys, lua

GROUP = "oseod-workers"
PRIORITIES = ("FAST_TRACK", "STANDARD")  # the order streams are read in

# The queue's scripts (lua/job_*.lua, each headed by its KEYS and ARGV).
_ACK = lua.load("job_ack")
_RETRY = lua.load("job_retry")
_PROMOTE = lua.load("job_promote")


def job_fields(job: Job) -> list[str]:
    """The stream entry of ``job`` as field/value pairs (for scripts that XADD it)."""
    fields = ["order", job.order_id, "items", codec.json_text(job.item_ids), "attempt", str(job.attempt),
              "priority", job.priority, "batch", str(job.batch)]
    return fields if job.chained else [*fields, "chained", "0"]


def _job(stream_priority: str, entry_id: str, flat: Sequence[str]) -> Job:
    fields = dict(zip(flat[0::2], flat[1::2]))
    return Job(order_id=fields["order"], item_ids=tuple(json.loads(fields["items"])),
               priority=fields.get("priority", stream_priority), attempt=int(fields.get("attempt", "1")),
               batch=int(fields.get("batch", "0")), entry_id=entry_id, chained=fields.get("chained") != "0")


class JobStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def setup(self) -> None:
        """Make the streams' consumer group if it is not there (at every start:
        idempotent). It starts at the beginning of each stream, so jobs
        written before it existed are not skipped."""
        for priority in PRIORITIES:
            try:
                await self._redis.conn.execute_command("XGROUP", "CREATE", keys.job_stream(priority), GROUP, "0",
                                                       "MKSTREAM")
            except txredisapi.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def enqueue(self, job: Job) -> None:
        await self._redis.conn.execute_command("XADD", keys.job_stream(job.priority), "*", *job_fields(job))

    async def _grouped(self, *command: str) -> Any:
        """A consumer group command; when Redis has lost the group (it came
        back empty: a restart without persistence, a failover to a replica
        that had nothing yet), the group is made again and the command is
        sent once more, instead of failing every poll until a restart."""
        try:
            return await self._redis.conn.execute_command(*command)
        except txredisapi.ResponseError as e:
            if not str(e).startswith("NOGROUP"):
                raise
        await self.setup()
        return await self._redis.conn.execute_command(*command)

    async def claim(self, consumer: str, count: int) -> list[Job]:
        """Up to ``count`` new jobs for ``consumer``, FAST_TRACK first."""
        claimed: list[Job] = []
        for priority in PRIORITIES:
            if len(claimed) >= count:
                break
            reply = await self._grouped(
                "XREADGROUP", "GROUP", GROUP, consumer, "COUNT", str(count - len(claimed)),
                "STREAMS", keys.job_stream(priority), ">")
            for _stream, entries in reply or ():
                claimed.extend(_job(priority, entry_id, flat) for entry_id, flat in entries if flat)
        return claimed

    async def pending_of(self, consumer: str) -> list[Job]:
        """The jobs ``consumer`` claimed and has not acknowledged (after a
        restart: the ones it was working on when it stopped)."""
        pending: list[Job] = []
        for priority in PRIORITIES:
            last = "0"
            while True:
                reply = await self._redis.conn.execute_command(
                    "XREADGROUP", "GROUP", GROUP, consumer, "COUNT", "1000", "STREAMS", keys.job_stream(priority),
                    last)
                entries = [entry for _stream, stream_entries in reply or () for entry in stream_entries]
                if not entries:
                    break
                pending.extend(_job(priority, entry_id, flat) for entry_id, flat in entries if flat)
                gone = [entry_id for entry_id, flat in entries if not flat]
                if gone:  # deleted while claimed: nothing to do, not pending any more
                    await self._redis.conn.execute_command("XACK", keys.job_stream(priority), GROUP, *gone)
                last = entries[-1][0]
        return pending

    async def reclaim(self, consumer: str, idle_seconds: float, count: int = 100) -> list[Job]:
        """Jobs another consumer claimed and has not renewed for
        ``idle_seconds``: now ``consumer``'s."""
        taken: list[Job] = []
        for priority in PRIORITIES:
            reply = await self._grouped(
                "XAUTOCLAIM", keys.job_stream(priority), GROUP, consumer, str(int(idle_seconds * 1000)), "0-0",
                "COUNT", str(count))
            entries = reply[1] if reply else []
            taken.extend(_job(priority, entry[0], entry[1]) for entry in entries if entry and entry[1])
            if any(not entry or not entry[1] for entry in entries):
                await self._forget_vanished(priority, consumer)
        return taken

    async def _forget_vanished(self, priority: str, consumer: str) -> None:
        """Acknowledge ``consumer``'s pending jobs whose entries are gone
        (deleted while claimed): Redis 6.2's XAUTOCLAIM hands them out again
        and again as nils, without their ids, and keeps them pending."""
        stream = keys.job_stream(priority)
        pending = await self._redis.conn.execute_command("XPENDING", stream, GROUP, "-", "+", "1000", consumer)
        for entry_id, *_rest in pending or ():
            if not await self._redis.conn.execute_command("XRANGE", stream, entry_id, entry_id):
                await self._redis.conn.execute_command("XACK", stream, GROUP, entry_id)

    async def renew(self, consumer: str, jobs: Sequence[Job]) -> None:
        """Keep ``jobs`` ``consumer``'s: their idle time starts again."""
        for priority in PRIORITIES:
            ids = [job.entry_id for job in jobs if job.priority == priority and job.entry_id]
            if ids:
                await self._redis.conn.execute_command("XCLAIM", keys.job_stream(priority), GROUP, consumer, "0",
                                                       *ids, "JUSTID")

    async def ack(self, job: Job, then: Job | None = None) -> None:
        """The job is done: it leaves the queue, and ``then`` (the order's
        next batch) joins it, at the same time."""
        streams = [keys.job_stream(job.priority), keys.job_stream(then.priority if then else job.priority)]
        await self._redis.conn.eval(_ACK, streams, [GROUP, job.entry_id, *(job_fields(then) if then else [])])

    async def retry(self, job: Job, again: Job, due: float, then: Job | None = None) -> None:
        """``job`` is done with, and ``again`` (its failed items, its next
        attempt) waits until ``due`` (Unix time) before going back; ``then``
        (the order's next batch) is queued, all at the same time."""
        await self._redis.conn.eval(
            _RETRY,
            [keys.job_stream(job.priority), keys.delayed_jobs(), keys.job_stream(then.priority if then else job.priority)],
            [GROUP, job.entry_id, repr(float(due)), again.to_json(), *(job_fields(then) if then else [])])

    async def promote(self, now: float, limit: int = 1000) -> int:
        """Put the jobs due by ``now`` back in their streams; how many."""
        return int(await self._redis.conn.eval(
            _PROMOTE, [keys.delayed_jobs(), *(keys.job_stream(p) for p in PRIORITIES)], [repr(float(now)),
                                                                                        str(limit)]))

    async def depth(self) -> dict[str, int]:
        """Jobs in each stream (waiting or being worked on) and waiting for a retry."""
        depths = {p: int(await self._redis.conn.execute_command("XLEN", keys.job_stream(p))) for p in PRIORITIES}
        depths["delayed"] = int(await self._redis.conn.zcard(keys.delayed_jobs()))
        return depths
