"""An order's history: its changes of status, as logged."""

from __future__ import annotations

import attrs


@attrs.frozen
class HistoryLine:
    """One change of an order's status, as logged."""

    at: float
    status: str
    info: str
    by: str = ""
