"""Which daemon runs the periodic tasks: a lock in Redis with an expiry.

The holder renews it at every tick; if it dies, the lock runs out and the
next daemon to try takes it. A task may thus run twice around a takeover,
never concurrently for long: every periodic task is idempotent.

Fencing: taking the lock increments ``leader:epoch`` and the taker keeps the
new value as its token (:class:`Fence`). A daemon that lost the lock without
noticing (frozen past the lock's expiry, or writing to an old primary that
came back after a failover) still holds an older token; the scripts of the
periodic tasks given the fence (FENCE_HOOK) refuse to write once the epoch
has moved past it (:class:`Deposed`), whatever that daemon believes. With
``[redis] min_replicas`` the lock is taken with WAIT, so a failover right
after does not forget it (and its epoch).
"""

from __future__ import annotations

import json
from typing import Any

import txredisapi

from ..model.tasks import Deposed, Fence, TaskRunRecord
from . import keys, lua

# The lock's scripts (lua/leader_*.lua, each headed by its KEYS and ARGV).
_HOLD = lua.load("leader_hold")
_RELEASE = lua.load("leader_release")
_LEADS = lua.load("leader_leads")

# For the scripts of periodic tasks: `fenced(epoch key, token)` is true when
# a newer leader took the lock than the one whose token it is ('' no fence);
# such a script returns redis.error_reply(DEPOSED) before writing anything
# (a fragment they include: lua/fence_hook.lua).
FENCE_HOOK = lua.load("fence_hook")
_RECORD = lua.load("task_run_record")


def deposed(error: BaseException) -> bool:
    """Whether ``error`` is a fenced script's refusal (see FENCE_HOOK)."""
    return isinstance(error, txredisapi.ResponseError) and "DEPOSED " in str(error)


class LeaderLock:
    def __init__(self, redis: Any, holder: str) -> None:
        self._redis = redis
        self.holder = holder
        self.fence: Fence | None = None  # while this daemon leads: its token

    async def hold(self, seconds: float) -> bool:
        """Take or keep the lock for ``seconds``; whether this daemon leads.
        With ``[redis] min_replicas``, only once the replicas have it (WAIT;
        a shortfall raises ReplicationShortfall and this daemon does not lead
        before the next try)."""
        self.fence = None
        answer = await self._redis.conn.eval(_HOLD, [keys.leader(), keys.leader_epoch()],
                                             [self.holder, str(int(seconds * 1000))], acknowledged=True)
        if str(answer[0]) == "0":
            return False
        self.fence = Fence(int(answer[1]))
        return True

    async def leads(self) -> bool:
        """Whether this daemon still holds the lock it took (with the same
        token): checked before each periodic task, one round trip."""
        fence = self.fence
        if fence is None:
            return False
        answer = await self._redis.conn.eval(_LEADS, [keys.leader(), keys.leader_epoch()], [self.holder, fence.argument])
        if int(answer) != 1:
            self.fence = None
            return False
        return True

    async def release(self) -> None:
        self.fence = None
        await self._redis.conn.eval(_RELEASE, [keys.leader()], [self.holder])

    async def current(self) -> str | None:
        """The daemon that leads now (None: none)."""
        holder = await self._redis.conn.get(keys.leader())
        return None if holder is None else str(holder)


class TaskRuns:
    """The last run of each periodic task, whichever daemon ran it."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def record(self, run: TaskRunRecord, fence: Fence | None = None) -> None:
        """Record ``run``; with the leader's ``fence``, Deposed when a newer leader took over."""
        try:
            await self._redis.conn.eval(
                _RECORD, [keys.task_runs(), keys.leader_epoch()],
                [run.name, json.dumps({"at": run.at, "seconds": run.seconds, "ok": run.ok}),
                 "" if fence is None else fence.argument])
        except txredisapi.ResponseError as e:
            if deposed(e):
                raise Deposed(run.name) from None
            raise

    async def last(self) -> dict[str, TaskRunRecord]:
        found = await self._redis.conn.hgetall(keys.task_runs()) or {}
        runs = {}
        for name, text in found.items():
            data = json.loads(text)
            runs[str(name)] = TaskRunRecord(str(name), float(data["at"]), float(data["seconds"]), bool(data["ok"]))
        return runs
