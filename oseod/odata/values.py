"""How OSEO's values read in OData: times, statuses, priorities."""

from __future__ import annotations

from datetime import datetime, timezone

from ..model.orders import OrderStatus, Priority

# OSEO status -> ODIP JobStatus (rest-ordering.md, status map). Suspended is
# in_progress (its StatusMessage says suspended), Downloaded and Terminated
# are completed.
JOB_STATUS_OF: dict[OrderStatus, str] = {
    OrderStatus.Submitted: "queued",
    OrderStatus.Accepted: "queued",
    OrderStatus.InProduction: "in_progress",
    OrderStatus.Suspended: "in_progress",
    OrderStatus.Completed: "completed",
    OrderStatus.Downloaded: "completed",
    OrderStatus.Terminated: "completed",
    OrderStatus.Failed: "failed",
    OrderStatus.Cancelled: "cancelled",
}


def oseo_statuses(job_status: str) -> frozenset[OrderStatus]:
    """The OSEO statuses a JobStatus stands for (empty for an unknown one)."""
    return frozenset(s for s, j in JOB_STATUS_OF.items() if j == job_status)


DEFAULT_PRIORITY = 50
FAST_TRACK_PRIORITY = 90


def oseo_priority(priority: int) -> Priority:
    """An OData Priority (1-100) in OSEO's two words: above 50 is FAST_TRACK."""
    return Priority.FAST_TRACK if priority > DEFAULT_PRIORITY else Priority.STANDARD


def odata_priority(priority: Priority | None) -> int:
    """OSEO's Priority of an order placed over SOAP, as an OData integer."""
    return FAST_TRACK_PRIORITY if priority is Priority.FAST_TRACK else DEFAULT_PRIORITY


def iso_time(seconds: float) -> str:
    """Unix seconds as OData writes a DateTimeOffset: UTC, milliseconds, Z.
    One fixed width, so that such texts sort as the times they are."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """A DateTimeOffset literal (with Z or an offset; no offset: UTC) as Unix
    seconds. ValueError when it is none."""
    moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
