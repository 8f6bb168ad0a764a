from __future__ import annotations

import re

from twisted.logger import Logger, formatEvent

from oseod.metrics import RequestMetrics, Sample


def test_prometheus_exposition() -> None:
    metrics = RequestMetrics()
    metrics.record("http", "GetCapabilities", "ok", 0.003, None)
    metrics.record("http", "GetCapabilities", "ok", 0.2, "alice")
    metrics.record("http", "Submit", "InvalidParameterValue", 20.0, "bob")
    metrics.record("admin", 'we"ird\\op', "ok", 0.0, None)
    text = metrics.render([Sample("oseod_redis_up", "Redis answers.", 1.0)])
    assert text.endswith("\n")
    assert '# TYPE oseod_requests_total counter' in text
    assert '# TYPE oseod_request_duration_seconds histogram' in text
    assert 'oseod_requests_total{transport="http",operation="GetCapabilities",outcome="ok"} 2' in text
    assert ('oseod_request_duration_seconds_bucket{transport="http",operation="GetCapabilities",outcome="ok",'
            'le="0.005"} 1') in text
    assert ('oseod_request_duration_seconds_bucket{transport="http",operation="GetCapabilities",outcome="ok",'
            'le="+Inf"} 2') in text
    # 20 s is beyond the last bucket: counted only in +Inf
    assert 'operation="Submit",outcome="InvalidParameterValue",le="10.0"} 0' in text
    assert 'operation="Submit",outcome="InvalidParameterValue",le="+Inf"} 1' in text
    assert 'operation="we\\"ird\\\\op"' in text
    assert "oseod_redis_up 1\n" in text
    # every sample line is NAME{labels} VALUE or NAME VALUE
    for line in text.splitlines():
        if not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{.*\})? [0-9.e+-]+', line), line
    assert metrics.count("http", "GetCapabilities", "ok") == 2


def test_login_failures_and_lockouts_are_counted() -> None:
    metrics = RequestMetrics()
    for _ in range(5):
        metrics.login_failed("ftp")
    metrics.locked_out("ftp", "user")
    text = metrics.render()
    assert '# TYPE oseod_login_failures_total counter' in text and '# TYPE oseod_login_lockouts_total counter' in text
    assert 'oseod_login_failures_total{via="ftp"} 5\n' in text
    assert 'oseod_login_lockouts_total{via="ftp",scope="user"} 1\n' in text
    assert metrics.lockouts("ftp", "user") == 1 and metrics.lockouts("soap", "user") == 0


def test_one_log_event_per_request_as_text_and_fields() -> None:
    events: list[dict[str, object]] = []
    metrics = RequestMetrics()
    metrics.log = Logger(namespace="oseod.request", observer=events.append)  # type: ignore[arg-type]
    metrics.record("http", "Submit", "ok", 0.0125, "alice")
    metrics.record("ftp", "RETR", "NotFound", 0.5, None)
    assert [formatEvent(e) for e in events] == ["http Submit ok user=alice 12.5ms", "ftp RETR NotFound user=- 500.0ms"]
    assert {k: events[0][k] for k in ("transport", "operation", "outcome", "user", "duration_ms")} == {
        "transport": "http", "operation": "Submit", "outcome": "ok", "user": "alice", "duration_ms": 12.5}


def test_labelled_samples_share_one_description() -> None:
    text = RequestMetrics().render([
        Sample("oseod_jobs_waiting", "Jobs waiting.", 2, (("priority", "FAST_TRACK"),)),
        Sample("oseod_jobs_waiting", "Jobs waiting.", 5, (("priority", 'a"b'),)),
        Sample("oseod_items_completed_total", "Items made.", 7, (("collection", "urn:x"),), "counter"),
    ])
    assert text.count("# HELP oseod_jobs_waiting") == 1 and "# TYPE oseod_jobs_waiting gauge" in text
    assert 'oseod_jobs_waiting{priority="FAST_TRACK"} 2' in text
    assert 'oseod_jobs_waiting{priority="a\\"b"} 5' in text
    assert "# TYPE oseod_items_completed_total counter" in text
    assert 'oseod_items_completed_total{collection="urn:x"} 7' in text
