"""Jobs whose stream entries were deleted while a daemon held them (an
order taken back, an operator's XDEL): never a crash of the reclaim timer,
never pending for ever."""

from __future__ import annotations

import pytest_twisted

from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.jobs import GROUP, Job, JobStore


async def _pending_count(redis: Redis) -> int:
    summary = await redis.conn.execute_command("XPENDING", keys.job_stream("STANDARD"), GROUP)
    return int(summary[0])


@pytest_twisted.ensureDeferred
async def test_a_deleted_entry_taken_over_is_acknowledged_not_handed_out(redis: Redis) -> None:
    jobs = JobStore(redis)
    await jobs.setup()
    await jobs.enqueue(Job("gone", ("a",)))
    await jobs.enqueue(Job("kept", ("b",)))
    claimed = await jobs.claim("crashed", 10)
    gone = next(job for job in claimed if job.order_id == "gone")
    await redis.conn.execute_command("XDEL", keys.job_stream("STANDARD"), gone.entry_id)

    taken = await jobs.reclaim("other", 0)  # Redis 6.2 answers a nil for the deleted one

    assert [job.order_id for job in taken] == ["kept"]
    assert await _pending_count(redis) == 1  # only "kept", now other's
    assert await jobs.reclaim("third", 0) != []  # and reclaiming goes on working


@pytest_twisted.ensureDeferred
async def test_a_deleted_entry_found_at_restart_is_acknowledged(redis: Redis) -> None:
    jobs = JobStore(redis)
    await jobs.setup()
    await jobs.enqueue(Job("gone", ("a",)))
    [gone] = await jobs.claim("restarting", 10)
    await redis.conn.execute_command("XDEL", keys.job_stream("STANDARD"), gone.entry_id)

    assert await jobs.pending_of("restarting") == []
    assert await _pending_count(redis) == 0
