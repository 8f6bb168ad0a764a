"""One file as an HTTP answer: twisted.web's static.File for everything it
does well (HEAD, Range and 206, 416, Last-Modified and 304, the content
headers), with the body sent by :class:`oseod.transfer.FileTransfer`, so
that on a plain TCP connection it goes from the page cache to the socket
with ``os.sendfile``. A request for several ranges (a multipart body) keeps
the stock producer."""

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
