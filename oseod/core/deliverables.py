"""What a user may download: the result files of their ready items, where
processors put them, and the record of complete downloads.

Results live in ``RESULTS/<user>/<order>/<item>/<file>`` (each component
percent-encoded: one path component whatever the id holds). Only items with a
result that has not expired are offered (the ordering core decides, as for
DescribeResultAccess); hidden files (a processor's ``.partial`` work) and
anything but plain files are never offered. A complete download of every
file of an item makes the item Downloaded.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import attrs
from twisted.logger import Logger

from ..auth.account import Account
from .ordering import OrderingService


def path_name(text: str) -> str:
    """``text`` as one safe path component: percent-encoded, never "." or ".."."""
    name = urllib.parse.quote(text, safe="")
    return name.replace(".", "%2E", 1) if name.startswith(".") else name or "%00"


def result_directory(results: Path, owner: str, order_id: str, item_id: str) -> Path:
    """Where an item's results go: the owner's delivery area, one directory per item."""
    return results / path_name(owner) / path_name(order_id) / path_name(item_id)


@attrs.frozen
class Deliverable:
    name: str
    path: Path
    size: int
    modified: float


class NotDeliverable(Exception):
    """Nothing to download there (no such item, no result, expired): a 404."""


class Deliverables:
    def __init__(self, ordering: OrderingService, results: Path) -> None:
        self._ordering = ordering
        self._results = results

    async def files(self, account: Account, order_id: str, item_id: str) -> list[Deliverable]:
        """The item's result files; RequestRejected for another user's order
        or an unknown one, NotDeliverable when the item offers nothing."""
        ready = await self._ordering.ready_items(account, order_id, next_ready=False)
        if item_id not in {r.item.spec.item_id for r in ready}:
            raise NotDeliverable(f"item {item_id!r} of order {order_id} has no result to download")
        return self.listing(account.name, order_id, item_id)

    def listing(self, owner: str, order_id: str, item_id: str) -> list[Deliverable]:
        """The files of an item the caller already knows to be ready."""
        return _listing(result_directory(self._results, owner, order_id, item_id))

    async def file(self, account: Account, order_id: str, item_id: str, name: str) -> Deliverable:
        for found in await self.files(account, order_id, item_id):
            if found.name == name:
                return found
        raise NotDeliverable(f"no file {name!r} in item {item_id!r} of order {order_id}")

    async def downloaded(self, account: Account, order_id: str, item_id: str, name: str) -> bool:
        """Record a complete download of one file; once every file of the
        item has been, the item is Downloaded. Whether it is now."""
        files = [f.name for f in await self.files(account, order_id, item_id)]
        return await self._ordering.record_download(order_id, item_id, name, files)


def log_transfer(log: Logger, transport: str, user: str, client: str | None, order_id: str, item_id: str, name: str,
                 sent: int, size: int, complete: bool) -> None:
    """One structured event per download, complete or not: what proftpd's
    transfer log held, at the moment the transfer ends."""
    log.info("{line}", line=f"{transport} download {'complete' if complete else 'aborted'}: {user} "
                            f"{order_id}/{item_id}/{name} {sent}/{size} bytes" + (f" to {client}" if client else ""),
             transport=transport, user=user, client=client, order_id=order_id, item_id=item_id, file=name,
             bytes_sent=sent, size=size, complete=complete)


def _listing(directory: Path) -> list[Deliverable]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat(follow_symlinks=False)
        found.append(Deliverable(entry.name, Path(entry.path), stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda d: d.name)

