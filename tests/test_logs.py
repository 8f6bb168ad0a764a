from __future__ import annotations

import io
import json
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel, formatEventAsClassicLogText
from twisted.python.failure import Failure

from oseod import logs
from oseod.loggers import instance_logger


def _running_reactor() -> MemoryReactorClock:
    reactor = MemoryReactorClock()
    reactor.running = True
    return reactor


def test_json_lines_keep_fields_and_drop_chatter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSEOD_LOG_LEVEL", "info")
    out, reactor = io.StringIO(), _running_reactor()
    observer = logs.json_observer(out, reactor)
    log = Logger(namespace="oseod.test", observer=observer)
    log.info("{operation} {outcome}", operation="GetCapabilities", outcome="ok")
    log.debug("not shown at info level")
    # what twisted.protocols.ftp emits through the legacy log.msg(..., debug=True)
    observer({"log_namespace": "log_legacy", "log_level": LogLevel.info, "debug": True,
              "log_text": "DTPFactory.setTimeout set to 10 seconds", "log_format": "{log_text}", "log_time": 0.0})
    reactor.advance(0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert (event["operation"], event["outcome"], event["log_namespace"]) == ("GetCapabilities", "ok", "oseod.test")


def test_level_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSEOD_LOG_LEVEL", "debug")
    out, reactor = io.StringIO(), _running_reactor()
    Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor)).debug("detail {n}", n=42)
    reactor.advance(0)
    assert "detail 42" in out.getvalue()


def test_lines_of_one_reactor_turn_are_written_together() -> None:
    out, reactor = io.StringIO(), _running_reactor()
    log = Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor))
    log.info("first")
    log.info("second")
    assert out.getvalue() == ""  # not before the turn ends
    reactor.advance(0)
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == ["first", "second"]
    log.info("third")
    reactor.advance(0)
    assert out.getvalue().splitlines()[-1].endswith("] third")
    assert not reactor.getDelayedCalls()


def test_a_warning_is_written_at_once_after_what_waited() -> None:
    out, reactor = io.StringIO(), _running_reactor()
    log = Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor))
    log.info("before")
    log.warn("trouble {what}", what="ahead")
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == ["before", "trouble ahead"]
    assert "[oseod.test#warn]" in out.getvalue()
    assert not reactor.getDelayedCalls()  # nothing left to flush


def test_shutdown_and_a_stopped_reactor_flush() -> None:
    out, reactor = io.StringIO(), _running_reactor()
    log = Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor))
    log.info("last words")
    assert out.getvalue() == ""
    for call, args, kwargs in reactor.triggers["after"]["shutdown"]:
        call(*args, **kwargs)
    assert out.getvalue().endswith("] last words\n")
    reactor.running = False
    log.info("after the end")
    assert out.getvalue().endswith("] after the end\n")


def _events() -> list[dict[str, Any]]:
    try:
        1 / 0
    except ZeroDivisionError:
        failure = Failure()
    base = {"log_time": 1764091234.75, "log_namespace": "oseod.x", "log_level": LogLevel.info}
    return [
        {**base, "log_format": "order {order_id} submitted by {user}: {count} items", "order_id": "42",
         "user": "alice", "count": 10},
        {**base, "log_format": "two\nlines {x!r} {y.real}", "x": "a", "y": 3},
        {**base, "log_format": "called {f()}", "f": lambda: 5},
        {**base, "log_format": "missing {nothing}"},
        {**base, "log_format": "boom {n}", "n": 1, "log_failure": failure, "log_level": LogLevel.critical},
        {**base, "log_format": "{log_text}", "log_text": "legacy", "log_system": "-"},
        {"log_format": "no time nor level"},
        {**base, "log_format": ""},
        {**base},
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: str(e.get("log_format"))[:12])
def test_classic_text_reads_as_twisted_writes_it(event: dict[str, Any]) -> None:
    assert logs.ClassicText()(event) == formatEventAsClassicLogText(event)


# Each control character a logged value may carry, and how it is written.
_FORGERIES = {"\r": "\\x0d", "\x1b[2J": "\\x1b[2J", "\x7f": "\\x7f", "\x85": "\\x85", "\u2028": "\\u2028",
              "\u2029": "\\u2029", "\t": "\\x09", "\x00": "\\x00", "\x9b": "\\x9b"}


@pytest.mark.parametrize("control", list(_FORGERIES), ids=repr)
def test_a_control_character_in_a_value_cannot_forge_a_text_line(control: str) -> None:
    out, reactor = io.StringIO(), _running_reactor()
    log = Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor))
    name = f"bob{control}2026-01-01T00:00:00+0000 [oseod.auth#info] login alice ok"
    log.info("login refused for {user}", user=name)
    log.failure("refused {user}", Failure(ValueError(name)), user=name)
    reactor.advance(0)
    text = out.getvalue()
    assert f"login refused for bob{_FORGERIES[control]}2026-01-01" in text
    assert f"bob{control}" not in text
    for line in text.split("\n"):  # only the traceback's own continuation lines start otherwise
        assert line == "" or line.startswith("\t") or line[:4].isdigit()
    assert not any(c in text for c in "\r\x00\x1b\x7f\x85\x9b\u2028\u2029")


@pytest.mark.parametrize("control", list(_FORGERIES), ids=repr)
def test_json_lines_carry_no_raw_control_character(control: str) -> None:
    out, reactor = io.StringIO(), _running_reactor()
    Logger(namespace="oseod.test", observer=logs.json_observer(out, reactor)).info(
        "login refused for {user}", user=f"bob{control}forged")
    reactor.advance(0)
    line = out.getvalue()
    assert line.endswith("}\n") and line.count("\n") == 1
    assert all(c == "\n" or 0x20 <= ord(c) < 0x7f for c in line)  # pure printable ASCII
    assert json.loads(line)["user"] == f"bob{control}forged"  # the value itself is kept


def test_a_line_feed_still_starts_an_indented_continuation() -> None:
    out, reactor = io.StringIO(), _running_reactor()
    Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor)).info("x {v}", v="a\nb")
    reactor.advance(0)
    assert out.getvalue().endswith("] x a\n\tb\n")


def test_twistds_own_observer_is_filtered_and_escaped_while_tamed() -> None:
    """What plain `twistd -n oseod` logs through (no --logger): the daemon
    puts it behind the same filter and escaping at start, and takes it back
    at stop."""
    from twisted.logger import LogPublisher, textFileLogObserver

    out = io.StringIO()
    stock = textFileLogObserver(out)
    publisher = LogPublisher(stock)
    log = Logger(namespace="oseod.test", observer=publisher)
    chatter = {"log_namespace": "log_legacy", "log_level": LogLevel.info, "log_format": "{log_text}",
               "log_text": "DTPFactory.setTimeout set to 10 seconds", "log_time": 0.0, "log_system": "-"}
    undo = logs.tame_global_observers(publisher)
    publisher(dict(chatter))
    publisher({**chatter, "log_text": "cleanupDTP", "debug": True})
    log.debug("below the floor")
    log.info("login refused for {user}", user="bob\rforged")
    assert out.getvalue().count("\n") == 1
    assert "login refused for bob\\x0dforged" in out.getvalue()
    log.failure("refused", Failure(ValueError("bob\rforged")))
    assert "ValueError: bob\\x0dforged" in out.getvalue() and "\r" not in out.getvalue()
    undo()
    publisher(dict(chatter))
    assert "DTPFactory.setTimeout" in out.getvalue()


def test_another_observer_gets_escaped_values() -> None:
    from twisted.logger import LogPublisher

    seen: list[dict[str, Any]] = []
    publisher = LogPublisher(seen.append)
    logs.tame_global_observers(publisher)
    Logger(namespace="oseod.test", observer=publisher).info("x {user}", user="bob\u2028forged", n=1)
    assert seen[0]["user"] == "bob\\u2028forged" and seen[0]["n"] == 1


def test_the_daemons_own_observers_are_not_wrapped_twice() -> None:
    from twisted.logger import LogPublisher

    out, reactor = io.StringIO(), _running_reactor()
    ours = logs.text_observer(out, reactor)
    publisher = LogPublisher(ours)
    logs.tame_global_observers(publisher)
    assert publisher._observers == [ours]  # noqa: SLF001 - what twistd's publisher holds


@pytest.mark.parametrize(("argv", "chosen"), [
    (["-n"], True),
    (["-n", "--logfile=-"], True),
    (["-n", "--logfile", "twistd.log"], False),
    (["-n", "--logger", "oseod.logs.json_stdout"], False),
    (["-n", "--syslog"], False),
    ([], False),  # daemonised: twistd.log
])
def test_a_plain_twistd_start_logs_through_the_text_observer(argv: list[str], chosen: bool, tmp_path: Any) -> None:
    """`twistd -n oseod` would write twistd's stock text lines to stdout:
    the daemon's own text observer writes the same lines for less."""
    from twisted.scripts.twistd import ServerOptions

    options = ServerOptions()
    options.parseOptions([*argv, "--pidfile=", "oseod", "--data-dir", str(tmp_path)])
    assert options.subOptions.parent is options
    assert (logs.default_observer(options) is logs.text_stdout) is chosen


def test_an_event_below_the_floor_is_not_formatted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSEOD_LOG_LEVEL", "info")

    class Unformattable:
        def __format__(self, spec: str) -> str:
            raise AssertionError("a debug event was formatted")

    out, reactor = io.StringIO(), _running_reactor()
    log = Logger(namespace="oseod.test", observer=logs.text_observer(out, reactor))
    log.debug("{value}", value=Unformattable())
    log.info("{value}", value="shown")
    reactor.advance(0)
    assert out.getvalue().endswith(" [oseod.test#info] shown\n") and out.getvalue().count("\n") == 1


def test_a_lean_logger_sends_the_events_a_twisted_logger_sends() -> None:
    class Owner:
        pass

    owner = Owner()
    seen: list[dict[str, Any]] = []
    stock = Logger(namespace=f"{Owner.__module__}.{Owner.__qualname__}", source=owner, observer=seen.append)
    lean = instance_logger(owner)
    lean.observer = seen.append
    for logger in (stock, lean):
        logger.info("order {order_id} submitted", order_id="a1")
        logger.emit("loud", "not a level")  # type: ignore[arg-type]
    (info, bad, lean_info, lean_bad) = seen
    assert {key: value for key, value in lean_info.items() if key not in ("log_time", "log_logger")} == {
        key: value for key, value in info.items() if key not in ("log_time", "log_logger")}
    assert lean_info["log_namespace"].endswith("test_logs.test_a_lean_logger_sends_the_events_a_twisted_logger_sends"
                                               ".<locals>.Owner")
    assert lean_info["log_logger"] is lean and lean_info["log_level"] is LogLevel.info
    # An invalid level is reported as Twisted reports it.
    assert lean_bad["log_format"] == bad["log_format"] and lean_bad["log_level"] is LogLevel.critical
