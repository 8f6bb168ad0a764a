"""The ``http`` processor: the product is fetched from a URL (another
archive's download service), streamed to disk with treq.

    processor = "http"
    processor_options = { url = "https://archive.example/products/{product_id}", timeout = 600,
                          output = "{product_id}" }

``url`` and ``output`` are templates with ``{product_id}``, ``{collection_id}``
and ``{item_id}``; in the URL they are percent-encoded. The body is written to
a temporary name and renamed once complete. Anything but a 200 fails the
attempt with the status; so does a transfer that outlives ``timeout``
seconds (connection and body alike). The body's chunks are written in the
daemon's disk thread pool, in order, those that arrived meanwhile together:
the reactor only hands them over.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import treq
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .processors import IItemProcessor, ItemWork, ProcessorConfigError, ResultFile, check_template

FIELDS = ("product_id", "collection_id", "item_id")
DEFAULT_TIMEOUT = 600.0


class FetchFailed(Exception):
    pass


def _cancelled(error: BaseException) -> bool:
    """A cancellation, also as treq reports one (a ResponseNeverReceived,
    ResponseFailed... holding the CancelledError)."""
    if isinstance(error, defer.CancelledError):
        return True
    return any(getattr(reason, "check", lambda *_: False)(defer.CancelledError)
               for reason in getattr(error, "reasons", ()))


@implementer(IItemProcessor)
class HttpProcessor:
    def __init__(self, options: Mapping[str, Any], reactor: IDaemonReactor, clock: IReactorTime, *, threads: ThreadPools) -> None:
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProcessorConfigError("processor_options.url must be an http:// or https:// URL template")
        check_template(url, FIELDS, "processor_options.url")
        self._url = url
        self._result = ResultFile(options, FIELDS)
        self._timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        self._reactor = reactor
        self._clock = clock
        self._threads = threads

    @staticmethod
    def _values(work: ItemWork) -> dict[str, str]:
        return {"product_id": work.item.product_id or "", "collection_id": work.item.collection_id or "",
                "item_id": work.item.item_id}

    def url(self, work: ItemWork) -> str:
        return self._url.format(**{k: quote(v, safe="") for k, v in self._values(work).items()})

    async def prepare_item(self, work: ItemWork) -> None:
        url = self.url(work)
        final = self._result.path(work, self._values(work))
        partial = await self._threads.on_engine(self._result.partial, final)
        transfer = defer.ensureDeferred(self._fetch(url, partial))
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            transfer.cancel()

        timer = self._clock.callLater(self._timeout, expire)
        fetched = False
        try:
            await transfer
            fetched = True
        except FetchFailed:
            raise
        except Exception as e:
            if timed_out:
                raise FetchFailed(f"fetching {url} took longer than {self._timeout:g} s") from None
            if _cancelled(e):
                raise defer.CancelledError() from None  # the order was cancelled, or the daemon stops
            raise FetchFailed(f"fetching {url} failed: {e}") from None  # refused, DNS, TLS...
        finally:
            if timer.active():
                timer.cancel()
            if not fetched:
                await self._threads.on_engine(partial.unlink, missing_ok=True)
        await self._threads.on_engine(os.replace, partial, final)

    async def _fetch(self, url: str, partial: Path) -> None:
        response = await treq.get(url, reactor=self._reactor, unbuffered=True)
        if response.code != 200:
            await response.text()
            raise FetchFailed(f"{url} answered {response.code} {response.phrase.decode('latin-1', 'replace')}")
        sink = _Sink(self._threads, await self._threads.on_engine(open, partial, "wb"))
        try:
            await treq.collect(response, sink.write)
        finally:
            await sink.close()

    def deliver_item(self, work: ItemWork) -> None:
        pass

    async def clean_item(self, work: ItemWork) -> None:
        await self._threads.on_engine(self._result.remove, work, self._values(work))


class _Sink:
    """A file written in the engine pool: one write at a time, in order; the
    chunks that arrive during a write go together in the next one."""

    def __init__(self, threads: ThreadPools, file: IO[bytes]) -> None:
        self._threads = threads
        self._file = file
        self._waiting: list[bytes] = []
        self._writing: defer.Deferred[None] | None = None
        self._error: BaseException | None = None

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error  # (treq.collect then stops reading the body)
        self._waiting.append(data)
        if self._writing is None:
            self._next()

    def _next(self) -> None:
        batch, self._waiting = b"".join(self._waiting), []
        writing = self._threads.on_engine(self._file.write, batch)
        self._writing = writing.addCallbacks(self._written, self._failed)

    def _written(self, _: object) -> None:
        self._writing = None
        if self._waiting and self._error is None:
            self._next()

    def _failed(self, failure: Failure) -> None:
        self._writing = None
        self._error = failure.value

    async def close(self) -> None:
        """Once every chunk is written; raises what a write raised."""
        while self._writing is not None:
            await self._writing
        await self._threads.on_engine(self._file.close)
        if self._error is not None:
            raise self._error
