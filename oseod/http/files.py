"""One file as an HTTP answer: twisted.web's static.File for everything it
does well (HEAD, Range and 206, 416, Last-Modified and 304, the content
headers), with the body sent by :class:`oseod.transfer.FileTransfer`, so
that on a plain TCP connection it goes from the page cache to the socket
with ``os.sendfile``. A request for several ranges (a multipart body) keeps
the stock producer.

Made with :meth:`SentFile.prepared` in the daemon's disk thread pool, the
file is stat'ed and opened there: rendering it on the reactor thread then
reads only what the stat found, and sends the file already open."""

from __future__ import annotations

from typing import Any, BinaryIO

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.static import File, NoRangeStaticProducer, SingleRangeStaticProducer

from ..transfer import FileTransfer, TransferStopped, sendfile_socket


class SentFile(File):
    isLeaf = True
    # A download is sent as it is on disk: a .tar.gz or .tar.bz2 package (or
    # result) is a gzip or bzip2 file, not a Content-Encoding that clients
    # would undo before saving it.
    contentEncodings: dict[str, str] = {}
    _prepared = False
    _opened: Any = None  # the file prepared() opened, until openForReading takes it
    _open_error: OSError | None = None

    @classmethod
    def prepared(cls, path: str, **kwargs: Any) -> SentFile:
        """A SentFile of ``path`` whose stat and open are done now (call it
        off the reactor thread): rendering it touches the disk no more."""
        sent = cls(path, **kwargs)
        sent.restat(False)
        if sent.exists() and not sent.isdir():
            try:
                sent._opened = sent.open()
            except OSError as e:  # render_GET answers it as the stock File does
                sent._open_error = e
        sent._prepared = True
        return sent

    def restat(self, reraise: bool = True) -> None:
        if not self._prepared:
            super().restat(reraise)
        elif reraise and self._statinfo is None:
            raise FileNotFoundError(self.path)

    def openForReading(self) -> Any:
        if not self._prepared:
            return super().openForReading()
        if self._open_error is not None:
            raise self._open_error
        opened, self._opened = self._opened, None
        if opened is None:  # rendered a second time: the first took the file
            raise FileNotFoundError(self.path)
        return opened

    def release(self) -> None:
        """Close the prepared file if no answer took it (a request that
        ended before, a HEAD answers without it itself)."""
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()

    def makeProducer(self, request: Any, fileForReading: Any) -> Any:
        # The stock method parses Range and sets the status and headers.
        stock = File.makeProducer(self, request, fileForReading)
        if isinstance(stock, SingleRangeStaticProducer):
            return _Body(request, fileForReading, stock.offset, stock.size)
        if isinstance(stock, NoRangeStaticProducer):
            return _Body(request, fileForReading, 0, self.getsize())
        return stock


class _Body:
    """The body of one answer; ``start`` as static.File expects of its producers."""

    log = Logger()

    def __init__(self, request: Any, file: BinaryIO, offset: int, count: int) -> None:
        self._request = request
        self._file = file
        self._transfer = FileTransfer(file, offset, count)

    def start(self) -> None:
        request = self._request
        if request.channel is None:  # the client left before the answer began
            self._file.close()
            return
        request.write(b"")  # the status line and headers, into the transport's buffer
        transport = request.channel.transport
        # Straight to the socket only when the body goes out as it is (not
        # chunked: static.File always sets Content-Length) on plain TCP, and
        # the request's channel is the transport's producer, which passes the
        # transport's "send more" on to the request's producer.
        socket = sendfile_socket(transport)
        bypass = not request.chunked and socket is not None and socket.producer is request.channel
        sending = self._transfer.send(request, transport, bypass=bypass, progress=self._counted)
        sending.addCallbacks(self._sent, self._failed)

    def _counted(self, n: int) -> None:
        # Bytes that went around request.write, counted as it would have:
        # the transfer log and the access log read sentLength.
        self._request.sentLength += n

    def _sent(self, sent: int) -> None:
        self._file.close()
        if self._request.channel is not None:  # (None: the connection is gone)
            self._request.finish()

    def _failed(self, reason: Failure) -> None:
        # The connection is gone (TransferStopped) or was aborted: either way
        # request.notifyFinish() fails and tells the download's owner.
        self._file.close()
        if not reason.check(TransferStopped):
            self.log.failure("sending {file} failed", reason, file=getattr(self._file, "name", "?"))
