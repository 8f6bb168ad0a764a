"""The FTP tree of one account's results: the transport-neutral tree of
:mod:`oseod.results` (``/<orderId>/<itemId>/<file>`` and packages), with
files sent the FTP way. A RETR that sent the whole file is a complete
download."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer, interfaces
from twisted.protocols import ftp
from zope.interface import implementer

from ..results import ResultFiles
from ..transfer import FileTransfer
from .tree import IDeliverableTree


@implementer(ftp.IReadFile)
class _Reader:
    """Sends one file; tells ``finished`` whether all of it went."""

    def __init__(self, path: str, size: int, finished: Any, opener: Callable[[Path], Awaitable[BinaryIO]]) -> None:
        self._path = path
        self._size = size
        self._finished = finished
        self._opener = opener  # off the reactor thread: oseod.results.ResultFiles.opened
        self._offset = 0

    def start_at(self, offset: int) -> None:
        """Send from byte ``offset`` on (REST: a resumed download)."""
        self._offset = offset

    def send(self, consumer: interfaces.IConsumer) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._send(consumer))

    async def _send(self, consumer: interfaces.IConsumer) -> None:
        source = await self._opener(Path(self._path))  # closed when the transfer ends
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

        await sending.addCallbacks(done, failed)


@implementer(IDeliverableTree)
class ResultsTree(ResultFiles):
    """The results tree (oseod.results) as the FTP shell serves it."""

    async def open(self, path: Sequence[str], client: str | None = None, via: str = "ftp") -> ftp.IReadFile:
        found = await self.locate(path, client, via)
        if found is None:
            raise ftp.FileNotFoundError("/" + "/".join(path))
        return _Reader(str(found.path), found.size, found.finished, self.opened)
