from __future__ import annotations

import json

import pytest
from twisted.logger import Logger, LogLevel

from oseod import logs


def test_json_lines_keep_fields_and_drop_chatter(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSEOD_LOG_LEVEL", "info")
    observer = logs.json_stdout()
    log = Logger(namespace="oseod.test", observer=observer)
    log.info("{operation} {outcome}", operation="GetCapabilities", outcome="ok")
    log.debug("not shown at info level")
    # what twisted.protocols.ftp emits through the legacy log.msg(..., debug=True)
    observer({"log_namespace": "log_legacy", "log_level": LogLevel.info, "debug": True,
              "log_text": "DTPFactory.setTimeout set to 10 seconds", "log_format": "{log_text}", "log_time": 0.0})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert (event["operation"], event["outcome"], event["log_namespace"]) == ("GetCapabilities", "ok", "oseod.test")


def test_level_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSEOD_LOG_LEVEL", "debug")
    log = Logger(namespace="oseod.test", observer=logs.text_stdout())
    log.debug("detail {n}", n=42)
    assert "detail 42" in capsys.readouterr().out
