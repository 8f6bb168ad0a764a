"""Request accounting: one structured log event and Prometheus series per request."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import NamedTuple

from .loggers import instance_logger

# Seconds; spans a cached GetCapabilities (sub-millisecond) to a large Submit.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Sample(NamedTuple):
    """One value for the exposition, e.g. Redis reachability or a queue's
    depth. Samples of one name share its help and kind."""

    name: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    kind: str = "gauge"  # or "counter"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class _Series:
    __slots__ = ("count", "total", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(BUCKETS)


class RequestMetrics:
    """Counts and latency histograms keyed by (transport, operation, outcome).

    ``outcome`` is "ok" or the OWS exceptionCode / HTTP reason of a failure, a
    small closed set, so the series stay bounded."""

    def __init__(self) -> None:
        # Logs every request: see LeanLogger.
        self.log = instance_logger(self)
        self._series: dict[tuple[str, str, str], _Series] = {}
        # Failed password logins by transport, and lock-outs (oseod.auth.lockout)
        # by transport and scope ("user" or "address"): bounded label sets.
        self._login_failures: dict[str, int] = {}
        self._lockouts: dict[tuple[str, str], int] = {}

    def login_failed(self, via: str) -> None:
        self._login_failures[via] = self._login_failures.get(via, 0) + 1

    def locked_out(self, via: str, scope: str) -> None:
        self._lockouts[(via, scope)] = self._lockouts.get((via, scope), 0) + 1

    def lockouts(self, via: str, scope: str) -> int:
        return self._lockouts.get((via, scope), 0)

    def record(self, transport: str, operation: str, outcome: str, seconds: float, user: str | None,
               address: str | None = None) -> None:
        """``address``: the client's (behind trusted proxies, the one they
        forward for), when the transport knows it."""
        series = self._series.get((transport, operation, outcome))
        if series is None:
            series = self._series[(transport, operation, outcome)] = _Series()
        series.count += 1
        series.total += seconds
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            series.buckets[index] += 1
        # The line is made here, once, and the format names one field: a text
        # observer formats every event with string.Formatter, whose cost
        # grows with the fields, and this event comes with every request.
        # The fields stay in the event for structured (JSON) observers.
        duration_ms = seconds * 1000.0
        client = f" from={address}" if address else ""
        self.log.info(
            "{request}",
            request=f"{transport} {operation} {outcome} user={user or '-'}{client} {duration_ms:.1f}ms",
            transport=transport,
            operation=operation,
            outcome=outcome,
            user=user or "-",
            address=address or "-",
            duration_ms=duration_ms,
        )

    def count(self, transport: str, operation: str, outcome: str) -> int:
        series = self._series.get((transport, operation, outcome))
        return series.count if series else 0

    def render(self, gauges: Iterable[Sample] = ()) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        lines = [
            "# HELP oseod_requests_total Requests handled, by transport, operation and outcome.",
            "# TYPE oseod_requests_total counter",
        ]
        ordered = sorted(self._series.items())
        for (transport, operation, outcome), series in ordered:
            labels = f'transport="{_label(transport)}",operation="{_label(operation)}",outcome="{_label(outcome)}"'
            lines.append(f"oseod_requests_total{{{labels}}} {series.count}")
        lines += [
            "# HELP oseod_request_duration_seconds Time to answer a request.",
            "# TYPE oseod_request_duration_seconds histogram",
        ]
        for (transport, operation, outcome), series in ordered:
            labels = f'transport="{_label(transport)}",operation="{_label(operation)}",outcome="{_label(outcome)}"'
            cumulative = 0
            for bound, n in zip(BUCKETS, series.buckets):
                cumulative += n
                lines.append(f'oseod_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f'oseod_request_duration_seconds_bucket{{{labels},le="+Inf"}} {series.count}')
            lines.append(f"oseod_request_duration_seconds_sum{{{labels}}} {series.total!r}")
            lines.append(f"oseod_request_duration_seconds_count{{{labels}}} {series.count}")
        lines += [
            "# HELP oseod_login_failures_total Failed password logins, by transport.",
            "# TYPE oseod_login_failures_total counter",
            *(f'oseod_login_failures_total{{via="{_label(via)}"}} {n}' for via, n in sorted(self._login_failures.items())),
            "# HELP oseod_login_lockouts_total User names and addresses locked out after too many failed logins, "
            "by the transport of the last failure and the scope (user or address).",
            "# TYPE oseod_login_lockouts_total counter",
            *(f'oseod_login_lockouts_total{{via="{_label(via)}",scope="{_label(scope)}"}} {n}'
              for (via, scope), n in sorted(self._lockouts.items())),
        ]
        described: set[str] = set()
        for sample in gauges:
            if sample.name not in described:
                described.add(sample.name)
                lines += [f"# HELP {sample.name} {sample.help}", f"# TYPE {sample.name} {sample.kind}"]
            labels = ",".join(f'{key}="{_label(value)}"' for key, value in sample.labels)
            lines.append(f"{sample.name}{{{labels}}} {_number(sample.value)}" if labels
                         else f"{sample.name} {_number(sample.value)}")
        return "\n".join(lines) + "\n"
