"""The last run of a periodic task, as the scheduler records it and the
operators read it."""

from __future__ import annotations

import attrs


@attrs.frozen
class TaskRunRecord:
    name: str
    at: float  # when it started
    seconds: float
    ok: bool
