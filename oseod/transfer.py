"""Sending part of a file to a client, for FTP RETR and HTTP downloads alike.

On a plain TCP connection the bytes go from the page cache to the socket with
``os.sendfile``: no copy through Python, no read buffers, no Twisted write
buffer. Anywhere else (TLS, FTP's ASCII mode, HTTP's chunked encoding: the
bytes must pass through the consumer) they are read in ``CHUNK`` pieces and
written to the consumer, the classic producer.

The direct path still plays by Twisted's producer rules, so that a transport
never sees bytes in an order it did not write them and a lost connection stops
the transfer:

- The transfer registers with the consumer as a push producer (an FTP data
  connection passes it on to its transport; an HTTP request to its channel,
  which is its transport's producer). Either way the transport calls
  ``resumeProducing`` when its own buffer has gone out to the socket and it
  was told the producer is paused: that is the moment the socket is writable
  and nothing else is waiting to go first (an HTTP status line and headers
  are written through the transport, just before the body).
- So whenever the socket's buffer is full (EAGAIN), the transfer marks its
  producer paused and lets the transport watch the socket, exactly as the
  transport does itself when its own buffer fills.
- ``stopProducing`` (the connection is gone) ends it; the bytes sent so far
  are in ``sent``.

``sendfile`` may wait on the disk for pages not yet in the page cache, as a
``read`` does in the classic producer.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import BinaryIO

from twisted.internet import defer, error, interfaces, tcp
from twisted.python.failure import Failure
from zope.interface import implementer

from .connections import CountedConnection

CHUNK = 256 * 1024  # the classic path's reads: the stock 16 KiB cap a transfer far below the disk and network
TURN = 4 * 1024 * 1024  # sendfile bytes at most per reactor turn, so that other connections get theirs

Progress = Callable[[int], None]


class TransferStopped(error.ConnectionLost):
    """The consumer stopped the transfer: the connection went away first."""


class FileShrunk(OSError):
    """The file ended before the bytes the transfer promised."""


def sendfile_socket(transport: object) -> tcp.Connection | None:
    """``transport`` when bytes may go around it straight to its socket: a
    plain TCP (or UNIX) connection of the reactor, no TLS on it; else None.
    The connection budget's wrapper is looked through: it counts the
    connection and passes the bytes unchanged, so they may go around it too
    (not any ProtocolWrapper: TLS is one)."""
    while isinstance(transport, CountedConnection):
        transport = transport.transport
    if not hasattr(os, "sendfile") or not isinstance(transport, tcp.Connection):
        return None
    if getattr(transport, "TLS", False) or interfaces.ISSLTransport.providedBy(transport):
        return None
    return transport


@implementer(interfaces.IPushProducer, interfaces.IPullProducer)
class FileTransfer:
    """``count`` bytes of ``file`` from byte ``offset``, once (the caller
    opens and closes the file; the transfer reads it with positioned calls and
    never moves its offset).

    :ivar sent: bytes handed to the socket or the consumer so far.
    :ivar direct: whether they go straight to the socket (``os.sendfile``).
    """

    def __init__(self, file: BinaryIO, offset: int, count: int) -> None:
        if offset < 0 or count < 0:
            raise ValueError(f"offset and count must be positive, not {offset} and {count}")
        self._fd = file.fileno()
        self._position = offset
        self._left = count
        self.sent = 0
        self.direct = False
        self._consumer: interfaces.IConsumer | None = None
        self._transport: interfaces.ITransport | None = None
        self._socket: tcp.Connection | None = None
        self._progress: Progress | None = None
        self._done: defer.Deferred[int] | None = None

    def send(self, consumer: interfaces.IConsumer, transport: interfaces.ITransport | None = None, *,
             bypass: bool = True, progress: Progress | None = None) -> defer.Deferred[int]:
        """Start; the Deferred fires with ``sent`` (the whole count) when the
        last byte has been handed over, or fails: :class:`TransferStopped`
        when the consumer stops it, the OS error when the file or the socket
        fails (the connection is then aborted, so that the client cannot take
        the part it got for the whole).

        ``transport`` is the connection's (its socket is written directly);
        ``bypass`` says whether the bytes may skip the consumer, i.e. it would
        write them unchanged. ``progress`` is told the size of every piece
        that went straight to the socket (the consumer never saw those).
        """
        if self._done is not None:
            raise RuntimeError("a FileTransfer sends once")
        self._done = defer.Deferred()
        self._consumer, self._transport, self._progress = consumer, transport, progress
        self._socket = sendfile_socket(transport) if bypass else None
        self.direct = self._socket is not None
        done = self._done
        consumer.registerProducer(self, self.direct)  # a pull producer is resumed here and now
        if self.direct and not self._finished():
            self._await_socket()
        return done

    # -- IPushProducer (direct) and IPullProducer (through the consumer) --

    def resumeProducing(self) -> None:
        if self._finished():
            return
        if self.direct:
            self._send_direct()
        else:
            self._send_chunk()

    def pauseProducing(self) -> None:
        # Bytes move only in resumeProducing, which the transport calls once
        # it can take more: nothing to stop here.
        pass

    def stopProducing(self) -> None:
        if self._done is not None:
            self._end(Failure(TransferStopped(f"the connection went away after {self.sent} bytes")))

    # -- the two ways -----------------------------------------------------

    def _send_direct(self) -> None:
        socket = self._socket
        assert socket is not None
        budget = TURN
        while self._left and budget > 0:
            try:
                n = os.sendfile(socket.fileno(), self._fd, self._position, min(self._left, budget))
            except BlockingIOError:
                break  # the socket's buffer is full
            except (BrokenPipeError, ConnectionResetError):
                self._fail(TransferStopped(f"the receiver went away after {self.sent} bytes"))
                return
            except OSError as e:
                self._fail(e)
                return
            if n == 0:
                self._fail(FileShrunk(errno.EIO, f"file ended {self._left} bytes early"))
                return
            self._moved(n)
            budget -= n
            if self._progress is not None:
                self._progress(n)
        if not self._finished():
            self._await_socket()

    def _await_socket(self) -> None:
        # Have the transport call resumeProducing once its buffer is empty
        # and the socket takes more: what it does for a producer it paused.
        socket = self._socket
        assert socket is not None
        if not socket.connected or socket.disconnected:
            self.stopProducing()
            return
        socket.producerPaused = True
        socket.startWriting()

    def _send_chunk(self) -> None:
        try:
            data = os.pread(self._fd, min(self._left, CHUNK), self._position)
        except OSError as e:
            self._fail(e)
            return
        if not data:
            self._fail(FileShrunk(errno.EIO, f"file ended {self._left} bytes early"))
            return
        self._moved(len(data))
        assert self._consumer is not None
        self._consumer.write(data)
        self._finished()

    # -- the end ----------------------------------------------------------

    def _moved(self, n: int) -> None:
        self._position += n
        self._left -= n
        self.sent += n

    def _finished(self) -> bool:
        """Whether the transfer is over (and ends it if all has gone)."""
        if self._done is None:
            return True
        if self._left:
            return False
        assert self._consumer is not None
        self._consumer.unregisterProducer()
        self._end(self.sent)
        return True

    def _fail(self, reason: BaseException) -> None:
        if self._consumer is not None:
            self._consumer.unregisterProducer()
        abort = getattr(self._transport, "abortConnection", None)
        if abort is not None:
            abort()
        self._end(Failure(reason))

    def _end(self, result: int | Failure) -> None:
        done, self._done = self._done, None
        self._consumer = self._transport = self._socket = self._progress = None
        if done is None:
            return
        if isinstance(result, Failure):
            done.errback(result)
        else:
            done.callback(result)
