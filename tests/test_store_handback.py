"""The drain's hand-back: a stopping daemon's claimed jobs go back to the
queue at once, once each, and never when another daemon took them over."""

from __future__ import annotations

import pytest_twisted

from oseod.store.connection import Redis
from oseod.store.handback import JobHandBack
from oseod.store.jobs import Job, JobStore


@pytest_twisted.ensureDeferred
async def test_claimed_jobs_are_queued_again_for_another_daemon(redis: Redis) -> None:
    jobs = JobStore(redis)
    await jobs.setup()
    await jobs.enqueue(Job("o1", ("a", "b"), attempt=2, batch=1))
    await jobs.enqueue(Job("o2", ("c",), priority="FAST_TRACK"))
    assert len(await jobs.claim("leaving", 10)) == 2
    assert await jobs.claim("staying", 10) == []

    assert await JobHandBack(redis).hand_back("leaving") == 2
    assert await jobs.pending_of("leaving") == []
    taken = await jobs.claim("staying", 10)  # at once, not after a lease
    assert sorted((j.order_id, j.item_ids, j.priority, j.attempt, j.batch) for j in taken) == [
        ("o1", ("a", "b"), "STANDARD", 2, 1), ("o2", ("c",), "FAST_TRACK", 1, 0)]
    assert await JobHandBack(redis).hand_back("leaving") == 0  # nothing left: nothing twice


@pytest_twisted.ensureDeferred
async def test_a_job_taken_over_meanwhile_is_not_queued_twice(redis: Redis) -> None:
    jobs = JobStore(redis)
    await jobs.setup()
    await jobs.enqueue(Job("o1", ("a",)))
    [claimed] = await jobs.claim("leaving", 1)
    [taken] = await jobs.reclaim("other", 0)  # between the leaving daemon's look and its hand-back
    assert taken.entry_id == claimed.entry_id
    assert await JobHandBack(redis).give_back("leaving", [claimed]) == 0
    assert [j.entry_id for j in await jobs.pending_of("other")] == [claimed.entry_id]
    assert await jobs.claim("third", 10) == []
