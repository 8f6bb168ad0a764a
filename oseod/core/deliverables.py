"""What a user may download: the result files of their ready items, where
processors put them, and the record of complete downloads.

Results live in ``RESULTS/<user>/<order>/<item>/<file>`` (each component
percent-encoded: one path component whatever the id holds). Only items with a
result that has not expired are offered (the ordering core decides, as for
DescribeResultAccess); hidden files (a processor's ``.partial`` work) and
anything but plain files are never offered. A complete download of every
file of an item makes the item Downloaded.

An order with packaging also offers its packages (:mod:`.packages`), kept in
``RESULTS/<user>/<order>/.packages/`` (no item's directory starts with a
dot): transports name one by ``item_id`` None and the package's name, and a
complete download of a package makes every item in it Downloaded.

Every look at the disk (a directory's listing, a package's size) runs in
the daemon's disk thread pool: a slow or busy disk delays the answer that
needs it, not every other client's.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import attrs
from twisted.logger import Logger

from ..model.accounts import Account
from ..model.transfers import Transfer
from ..threads import ThreadPools
from .ordering import OrderingService, ReadyItem

PACKAGES = ".packages"  # the order's packages, beside its items' directories


def path_name(text: str) -> str:
    """``text`` as one safe path component: percent-encoded, never "." or ".."."""
    name = urllib.parse.quote(text, safe="")
    return name.replace(".", "%2E", 1) if name.startswith(".") else name or "%00"


def result_directory(results: Path, owner: str, order_id: str, item_id: str) -> Path:
    """Where an item's results go: the owner's delivery area, one directory per item."""
    return results / path_name(owner) / path_name(order_id) / path_name(item_id)


def package_path(results: Path, owner: str, order_id: str, name: str) -> Path:
    """Where the order's package ``name`` is built."""
    return results / path_name(owner) / path_name(order_id) / PACKAGES / name


@attrs.frozen
class Deliverable:
    name: str
    path: Path
    size: int
    modified: float


class NotDeliverable(Exception):
    """Nothing to download there (no such item, no result, expired): a 404."""


class Deliverables:
    def __init__(self, ordering: OrderingService, results: Path, threads: ThreadPools) -> None:
        self._ordering = ordering
        self._results = results
        self._threads = threads

    async def files(self, account: Account, order_id: str, item_id: str) -> list[Deliverable]:
        """The item's result files; RequestRejected for another user's order
        or an unknown one, NotDeliverable when the item offers nothing."""
        ready = await self._ordering.ready_items(account, order_id)
        if item_id not in {r.item.spec.item_id for r in ready}:
            raise NotDeliverable(f"item {item_id!r} of order {order_id} has no result to download")
        return await self.listing(account.name, order_id, item_id)

    async def listing(self, owner: str, order_id: str, item_id: str) -> list[Deliverable]:
        """The files of an item the caller already knows to be ready."""
        return await self._threads.on_disk(files_in, result_directory(self._results, owner, order_id, item_id))

    async def listings(self, owner: str, order_id: str, item_ids: Sequence[str]) -> dict[str, list[Deliverable]]:
        """The files of several items of an order (ready, as the caller
        knows), by item id: one trip to the disk pool for all."""
        directories = {item_id: result_directory(self._results, owner, order_id, item_id) for item_id in item_ids}
        if not directories:
            return {}
        return await self._threads.on_disk(lambda: {item_id: files_in(directory)
                                                    for item_id, directory in directories.items()})

    async def packages_in(self, owner: str, order_id: str, ready: Sequence[ReadyItem]) -> list[Deliverable]:
        """The packages holding the ``ready`` items of the order (as the
        core listed them), those on disk."""
        paths = [package_path(self._results, owner, order_id, name)
                 for name in sorted({r.package for r in ready if r.package})]
        if not paths:
            return []
        found = await self._threads.on_disk(lambda: [_package(path) for path in paths])
        return [package for package in found if package is not None]

    async def file(self, account: Account, order_id: str, item_id: str | None, name: str) -> Deliverable:
        """File ``name`` of the item, or with ``item_id`` None the order's
        package ``name``; RequestRejected or NotDeliverable as :meth:`files`."""
        if item_id is None:
            ready = await self._ordering.ready_items(account, order_id)
            package = (await self._threads.on_disk(_package, package_path(self._results, account.name, order_id, name))
                       if any(r.package == name for r in ready) else None)
            if package is None:
                raise NotDeliverable(f"no package {name!r} of order {order_id}")
            return package
        for found in await self.files(account, order_id, item_id):
            if found.name == name:
                return found
        raise NotDeliverable(f"no file {name!r} in item {item_id!r} of order {order_id}")

    async def downloaded(self, account: Account, order_id: str, item_id: str | None, name: str) -> bool:
        """Record a complete download of one file; once every file of the
        item has been, the item is Downloaded. Whether it is now. With
        ``item_id`` None, of the order's package ``name``: every item it
        holds is Downloaded."""
        if item_id is None:
            ready = await self._ordering.ready_items(account, order_id)
            held = [r.item.spec.item_id for r in ready if r.package == name]
            if held:
                await self._ordering.record_package_download(order_id, held, name)
            return bool(held)
        files = [f.name for f in await self.files(account, order_id, item_id)]
        return await self._ordering.record_download(order_id, item_id, name, files)

    async def open(self, path: Path) -> BinaryIO:
        """``path`` (a deliverable's) open for reading; OSError when it is
        gone (expired and cleaned up since it was found)."""
        return await self._threads.on_disk(_open_for_reading, path)

    async def transferred(self, account: Account, order_id: str, item_id: str | None, name: str, *, via: str,
                          address: str | None, sent: int, complete: bool, at: float) -> None:
        """One transfer ended, complete or not: logged with the order, for
        operators (who, when, how much, from where)."""
        await self._ordering.record_transfer(Transfer(
            at=at, item_id=item_id or "", file=name, user=account.name, via=via, address=address or "", bytes=sent,
            complete=complete), order_id)


def log_transfer(log: Logger, transport: str, user: str, client: str | None, order_id: str, item_id: str | None,
                 name: str, sent: int, size: int, complete: bool) -> None:
    """One structured event per download, complete or not: what proftpd's
    transfer log held, at the moment the transfer ends. ``item_id`` None:
    the order's package ``name``."""
    path = f"{order_id}/{name}" if item_id is None else f"{order_id}/{item_id}/{name}"
    log.info("{line}", line=f"{transport} download {'complete' if complete else 'aborted'}: {user} "
                            f"{path} {sent}/{size} bytes" + (f" to {client}" if client else ""),
             transport=transport, user=user, client=client, order_id=order_id, item_id=item_id, file=name,
             bytes_sent=sent, size=size, complete=complete)


def _open_for_reading(path: Path) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115 - the transport closes it


def _package(path: Path) -> Deliverable | None:
    """The package at ``path``, if it is there. Blocking."""
    try:
        status = path.stat()
    except OSError:
        return None
    return Deliverable(path.name, path, status.st_size, status.st_mtime)


def files_in(directory: Path) -> list[Deliverable]:
    """The plain, non-hidden files of ``directory``, by name (none when
    it is missing). Blocking: in a thread."""
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

