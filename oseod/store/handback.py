"""The drain's hand-back of jobs: what a stopping daemon had claimed goes
back to the queue at once (see lua/job_hand_back.lua), so another daemon makes
it within its poll interval instead of after ``[processing] lease_seconds``.

A job handed back is claimed again from its first item that is not final
(the core refuses to redo a final item), with the same attempt number; it
joins the end of its priority's stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import keys, lua
from .jobs import GROUP, Job, JobStore, job_fields

_HAND_BACK = lua.load("job_hand_back")


class JobHandBack:
    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._jobs = JobStore(redis)

    async def hand_back(self, consumer: str) -> int:
        """Queue again the jobs ``consumer`` claimed and did not acknowledge;
        how many."""
        return await self.give_back(consumer, await self._jobs.pending_of(consumer))

    async def give_back(self, consumer: str, jobs: Sequence[Job]) -> int:
        """Queue ``jobs`` again, those still pending for ``consumer``; how many."""
        handed = 0
        for job in jobs:
            handed += int(await self._redis.conn.eval(
                _HAND_BACK, [keys.job_stream(job.priority)], [GROUP, job.entry_id, consumer, *job_fields(job)]))
        return handed
