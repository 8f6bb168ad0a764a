from __future__ import annotations

import subprocess
import sys

import pytest_twisted
from twisted.internet import defer
from twisted.logger import LogLevel, capturedLogs

from oseod.service import DaemonService


@pytest_twisted.ensureDeferred
async def test_steps_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    exits: list[int] = []
    service = DaemonService(reactor=None, exit=exits.append)

    async def slow_start() -> None:
        await defer.succeed(None)
        journal.append("start b")

    service.step("a", lambda: journal.append("start a"), lambda: journal.append("stop a"))
    service.step("b", slow_start, lambda: defer.succeed(journal.append("stop b")))
    service.step("c", lambda: journal.append("start c"))
    await service.startService()
    await service.stopService()
    assert journal == ["start a", "start b", "start c", "stop b", "stop a"]
    assert exits == []


@pytest_twisted.ensureDeferred
async def test_failed_step_stops_what_started_and_exits_1() -> None:
    journal: list[str] = []
    exits: list[int] = []
    service = DaemonService(reactor=None, exit=exits.append)

    async def broken() -> None:
        raise ConnectionRefusedError("cannot connect to Redis at redis://127.0.0.1:1/0")

    service.step("a", lambda: journal.append("start a"), lambda: journal.append("stop a"))
    service.step("redis", broken, lambda: journal.append("stop redis"))
    service.step("c", lambda: journal.append("start c"), lambda: journal.append("stop c"))
    with capturedLogs() as events:
        await service.startService()
    assert journal == ["start a", "stop a"]
    assert exits == [1]
    critical = [e for e in events if e["log_level"] is LogLevel.critical]
    assert len(critical) == 1
    assert critical[0]["step"] == "redis" and "redis://127.0.0.1:1/0" in critical[0]["reason"]
    # Stopping afterwards (twistd's shutdown) has nothing left to stop.
    await service.stopService()
    assert journal == ["start a", "stop a"]


@pytest_twisted.ensureDeferred
async def test_a_failed_start_logs_its_cause_last_and_stops_quietly() -> None:
    """What the journal shows last of a unit that failed is the cause: the
    parts stopped before it is logged, and a part that fails to stop says so
    in one line, without a traceback."""
    exits: list[int] = []
    service = DaemonService(reactor=None, exit=exits.append)

    def broken_stop() -> None:
        raise ConnectionError("Lost connection")

    def taken() -> None:
        raise OSError("Couldn't listen on 127.0.0.1:2121: [Errno 98] Address already in use.")

    service.step("redis", lambda: None, lambda: service.log.info("redis stopped"))
    service.step("engine", lambda: None, broken_stop)
    service.step("ftp listener", taken)
    with capturedLogs() as events:
        await service.startService()
    assert exits == [1]
    assert [e["log_level"] for e in events] == [LogLevel.warn, LogLevel.info, LogLevel.critical]
    assert "log_failure" not in events[0] and events[0]["step"] == "engine"
    assert events[-1]["step"] == "ftp listener" and "Address already in use" in events[-1]["reason"]


def test_twistds_application_gets_the_daemons_log_observer() -> None:
    """twistd logs to its Application's ILogObserver when given no --logger:
    the root service sets the one it was given, and leaves one set before."""
    from twisted.application.service import Application
    from twisted.internet.testing import MemoryReactorClock
    from twisted.logger import ILogObserver

    made: list[object] = []

    def observer(event: dict[str, object]) -> None:
        made.append(event)

    application = Application("oseod")
    DaemonService(MemoryReactorClock(), log_observer=lambda: observer).setServiceParent(application)
    assert application.getComponent(ILogObserver) is observer

    kept = Application("oseod")
    kept.setComponent(ILogObserver, print)
    DaemonService(MemoryReactorClock(), log_observer=lambda: observer).setServiceParent(kept)
    assert kept.getComponent(ILogObserver) is print

    bare = Application("oseod")
    DaemonService(MemoryReactorClock()).setServiceParent(bare)
    assert bare.getComponent(ILogObserver) is None


def test_a_settled_heap_is_frozen_and_its_young_objects_collected_less_often() -> None:
    # In a child process: the collector's settings are the whole process's.
    probe = ("import gc; from oseod.service import settle_heap, YOUNG_COLLECTION_EVERY as every; "
             "before = gc.get_threshold(); settle_heap(); after = gc.get_threshold(); "
             "print(after[0] == every > before[0], after[1:] == before[1:], gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "True", "True"]
