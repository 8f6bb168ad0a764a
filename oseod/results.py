"""One account's results as a read-only tree, whatever the transport (FTP,
FTPS, SFTP): ``/<orderId>/<itemId>/<file>``, built from the store at every
look (no per-user directories to create), with only the items that have a
result now (the same rule as DescribeResultAccess and HTTP downloads), and
beside them an order's packages (``/<orderId>/<package>``, with packaging).

Transports do not import each other: each wraps :class:`ResultFiles` in its
own way of sending a file (oseod.ftp.results, oseod.sftp.files), and all of
them report a finished transfer through :attr:`Located.finished`, which
logs it, records it with the order and counts a complete one as a download.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .core.deliverables import Deliverables, NotDeliverable, log_transfer
from .core.ordering import OrderingService, ReadyItem
from .metrics import RequestMetrics
from .model.accounts import Account
from .model.errors import RequestRejected


@attrs.frozen
class Node:
    """One directory or file of a tree."""

    name: str
    directory: bool
    size: int = 0
    modified: float = 0.0  # seconds since the epoch


ROOT = Node(name="/", directory=True)


@attrs.frozen
class Located:
    """A file found for sending: where it is on disk, its size, and what to
    call once when its transfer ends: ``finished(complete, bytes_sent)``."""

    path: Path
    size: int
    finished: Callable[[bool, int], None]


class ResultFiles:
    """What ``account`` may download, looked up afresh at each call. Paths
    are sequences of real names (never "", ".", ".." nor holding "/")."""

    log = Logger()

    def __init__(self, account: Account, ordering: OrderingService, deliverables: Deliverables,
                 metrics: RequestMetrics, clock: IReactorTime) -> None:
        self._account = account
        self._ordering = ordering
        self._deliverables = deliverables
        self._metrics = metrics
        self._clock = clock

    @property
    def account(self) -> Account:
        return self._account

    async def stat(self, path: Sequence[str]) -> Node | None:
        if not path:
            return ROOT
        try:
            if len(path) == 1:
                ready = await self._ordering.ready_items(self._account, path[0])
                return Node(path[0], True, modified=_newest(ready)) if ready else None
            if len(path) == 2:
                try:  # the order's package of that name (which wins over an item so named)
                    package = await self._deliverables.file(self._account, path[0], None, path[1])
                    return Node(package.name, False, package.size, package.modified)
                except NotDeliverable:
                    pass
                await self._deliverables.files(self._account, path[0], path[1])
                ready = await self._ordering.ready_items(self._account, path[0])
                return Node(path[1], True, modified=_newest(r for r in ready if r.item.spec.item_id == path[1]))
            if len(path) == 3:
                found = await self._deliverables.file(self._account, *path)
                return Node(found.name, False, found.size, found.modified)
        except (RequestRejected, NotDeliverable):
            return None
        return None

    async def children(self, path: Sequence[str]) -> Sequence[Node]:
        if not path:
            found = []
            for order in await self._ordering.search(self._account):
                ready = self._ordering.ready_in(order)  # the orders as searched: no second read
                if ready:
                    found.append(Node(order.order_id, True, modified=_newest(ready)))
            return found
        if len(path) == 1:
            ready = await self._ordering.ready_items(self._account, path[0])
            packages = await self._deliverables.packages_in(self._account.name, path[0], ready)
            taken = {p.name for p in packages}
            return ([Node(r.item.spec.item_id, True, modified=_newest([r])) for r in ready
                     if r.item.spec.item_id not in taken]
                    + [Node(p.name, False, p.size, p.modified) for p in packages])
        files = await self._deliverables.files(self._account, path[0], path[1])
        return [Node(f.name, False, f.size, f.modified) for f in files]

    async def locate(self, path: Sequence[str], client: str | None, via: str) -> Located | None:
        """The file at ``path`` (``/<order>/<package>`` or
        ``/<order>/<item>/<file>``) ready to send to ``client`` (its address)
        over ``via`` ("ftp", "sftp"...); None when there is none."""
        if len(path) not in (2, 3):
            return None
        order_id, item_id, name = (path[0], None, path[1]) if len(path) == 2 else path
        try:
            found = await self._deliverables.file(self._account, order_id, item_id, name)
        except (RequestRejected, NotDeliverable):
            return None
        started = self._clock.seconds()

        def finished(complete: bool, sent: int) -> None:
            self._metrics.record(via, "download", "ok" if complete else "aborted", self._clock.seconds() - started,
                                 self._account.name)
            log_transfer(self.log, via, self._account.name, client, order_id, item_id, name, sent, found.size,
                         complete)
            logged = defer.ensureDeferred(self._deliverables.transferred(
                self._account, order_id, item_id, name, via=via, address=client, sent=sent, complete=complete,
                at=self._clock.seconds()))
            logged.addErrback(lambda f: self.log.failure("logging the transfer of {file} failed", f, file=name))
            if complete:
                d = defer.ensureDeferred(self._deliverables.downloaded(self._account, order_id, item_id, name))
                d.addErrback(lambda f: self.log.failure("recording the download of {file} failed", f, file=name))

        return Located(Path(found.path), found.size, finished)

    async def opened(self, path: Path) -> BinaryIO:
        """A located file open for reading (opened in the disk pool);
        OSError when it is gone since."""
        return await self._deliverables.open(path)


def _newest(ready: Iterable[ReadyItem]) -> float:
    """A directory's date: when the newest result in it was completed (its
    files were written just before), so a listing shows when there was
    something new to fetch, never 1970."""
    return max((r.item.completed_at or r.item.status.changed_at for r in ready), default=0.0)
