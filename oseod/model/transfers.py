"""Transfers of results to clients, as the order's record keeps them."""

from __future__ import annotations

import attrs


@attrs.frozen
class Transfer:
    """One transfer of a result file (or package) to a client, as logged."""

    at: float
    item_id: str  # "" for the order's package
    file: str
    user: str
    via: str  # "ftp", "ftps", "sftp" or "http"
    address: str
    bytes: int
    complete: bool
