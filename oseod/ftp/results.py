"""The FTP tree of one account's results: ``/<orderId>/<itemId>/<file>``,
built from the store at every look (no per-user directories to create), with
only the items that have a result now (the same rule as DescribeResultAccess
and HTTP downloads), and beside them an order's packages
(``/<orderId>/<package>``, with packaging). A RETR that sent the whole file
is a complete download."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet import defer, interfaces
from twisted.logger import Logger
from twisted.protocols import ftp
from zope.interface import implementer

from ..auth.account import Account
from ..core.deliverables import Deliverables, NotDeliverable, log_transfer
from ..core.ordering import OrderingService, ReadyItem
from ..metrics import RequestMetrics
from ..model.errors import RequestRejected
from ..transfer import FileTransfer
from .tree import ROOT, IDeliverableTree, Node


@implementer(ftp.IReadFile)
class _Reader:
    """Sends one file; tells ``finished`` whether all of it went."""

    def __init__(self, path: str, size: int, finished: Any) -> None:
        self._path = path
        self._size = size
        self._finished = finished
        self._offset = 0

    def start_at(self, offset: int) -> None:
        """Send from byte ``offset`` on (REST: a resumed download)."""
        self._offset = offset

    def send(self, consumer: interfaces.IConsumer) -> defer.Deferred[None]:
        source = open(self._path, "rb")  # noqa: SIM115 - closed when the transfer ends
        transfer = FileTransfer(source, self._offset, max(self._size - self._offset, 0))
        # In binary mode the consumer is the data connection itself, whose
        # socket can take the bytes straight from the file; in ASCII mode it
        # is a wrapper that rewrites line ends (its ``cons`` the connection),
        # so they must pass through it.
        binary = isinstance(consumer, ftp.DTP)
        connection = consumer if binary else getattr(consumer, "cons", None)
        sending = transfer.send(consumer, getattr(connection, "transport", None), bypass=binary)

        def done(sent: int) -> None:
            source.close()
            self._finished(self._offset + sent >= self._size, sent)

        def failed(reason: Any) -> Any:
            source.close()
            self._finished(False, transfer.sent)
            return reason

        return sending.addCallbacks(done, failed)


@implementer(IDeliverableTree)
class ResultsTree:
    log = Logger()

    def __init__(self, account: Account, ordering: OrderingService, deliverables: Deliverables,
                 metrics: RequestMetrics, clock: Any) -> None:
        self._account = account
        self._ordering = ordering
        self._deliverables = deliverables
        self._metrics = metrics
        self._clock = clock

    async def stat(self, path: Sequence[str]) -> Node | None:
        if not path:
            return ROOT
        try:
            if len(path) == 1:
                ready = await self._ordering.ready_items(self._account, path[0], next_ready=False)
                return Node(path[0], True, modified=_newest(ready)) if ready else None
            if len(path) == 2:
                try:  # the order's package of that name (which wins over an item so named)
                    package = await self._deliverables.file(self._account, path[0], None, path[1])
                    return Node(package.name, False, package.size, package.modified)
                except NotDeliverable:
                    pass
                await self._deliverables.files(self._account, path[0], path[1])
                ready = await self._ordering.ready_items(self._account, path[0], next_ready=False)
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
            ready = await self._ordering.ready_items(self._account, path[0], next_ready=False)
            packages = self._deliverables.packages_in(self._account.name, path[0], ready)
            taken = {p.name for p in packages}
            return ([Node(r.item.spec.item_id, True, modified=_newest([r])) for r in ready
                     if r.item.spec.item_id not in taken]
                    + [Node(p.name, False, p.size, p.modified) for p in packages])
        files = await self._deliverables.files(self._account, path[0], path[1])
        return [Node(f.name, False, f.size, f.modified) for f in files]

    async def open(self, path: Sequence[str], client: str | None = None) -> ftp.IReadFile:
        if len(path) not in (2, 3):
            raise ftp.FileNotFoundError("/" + "/".join(path))
        # /<order>/<package> or /<order>/<item>/<file>
        order_id, item_id, name = (path[0], None, path[1]) if len(path) == 2 else path
        try:
            found = await self._deliverables.file(self._account, order_id, item_id, name)
        except (RequestRejected, NotDeliverable):
            raise ftp.FileNotFoundError("/" + "/".join(path)) from None
        started = self._clock.seconds()

        def finished(complete: bool, sent: int) -> None:
            self._metrics.record("ftp", "download", "ok" if complete else "aborted", self._clock.seconds() - started,
                                 self._account.name)
            log_transfer(self.log, "ftp", self._account.name, client, order_id, item_id, name, sent, found.size,
                         complete)
            logged = defer.ensureDeferred(self._deliverables.transferred(
                self._account, order_id, item_id, name, via="ftp", address=client, sent=sent, complete=complete,
                at=self._clock.seconds()))
            logged.addErrback(lambda f: self.log.failure("logging the transfer of {file} failed", f, file=name))
            if complete:
                d = defer.ensureDeferred(self._deliverables.downloaded(self._account, order_id, item_id, name))
                d.addErrback(lambda f: self.log.failure("recording the download of {file} failed", f, file=name))

        return _Reader(str(found.path), found.size, finished)


def _newest(ready: Iterable[ReadyItem]) -> float:
    """A directory's date: when the newest result in it was completed (its
    files were written just before), so a listing shows when there was
    something new to fetch, never 1970."""
    return max((r.item.completed_at or r.item.status.changed_at for r in ready), default=0.0)
