"""The ``command`` processor: runs a configured program per item (a GDAL
conversion, a provider's own extraction script) with spawnProcess.

    processor = "command"
    processor_options = { argv = ["gdal_translate", "-of", "GTiff", "/archive/{product_id}.tif", "{output}"],
                          output = "{product_id}.tif", timeout = 3600 }

Each element of ``argv`` is a template (no shell: a value can never become
two arguments or a redirection) with ``{order_id}``, ``{item_id}``,
``{product_id}``, ``{collection_id}``, ``{owner}``, ``{directory}`` (the
item's result directory) and ``{output}`` (where the program writes its
result). The program writes ``{output}`` under a temporary name that becomes
the result's name only once it has exited with status 0: a result is never
half there, and a second run replaces it. A program that outlives
``timeout`` seconds, or whose order is cancelled, is killed. On failure the
end of its standard error becomes the item's additionalStatusInfo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ..threads import ThreadPools
from .processors import IItemProcessor, ItemWork, ProcessorConfigError, ResultFile, check_template

STDERR_KEPT = 2000  # characters of standard error kept for the item's info
DEFAULT_TIMEOUT = 3600.0
FIELDS = ("order_id", "item_id", "product_id", "collection_id", "owner", "directory", "output")


class CommandFailed(Exception):
    pass


class _Collect(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.done: defer.Deferred[int] = defer.Deferred()
        self.stderr = b""

    def errReceived(self, data: bytes) -> None:
        self.stderr = (self.stderr + data)[-4 * STDERR_KEPT:]

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        self.done.callback(code if code is not None else -(signal or 1))


@implementer(IItemProcessor)
class CommandProcessor:
    def __init__(self, options: Mapping[str, Any], reactor: IReactorProcess, clock: IReactorTime, *, threads: ThreadPools) -> None:
        argv = options.get("argv")
        if not isinstance(argv, Sequence) or isinstance(argv, str) or not argv or not all(
                isinstance(a, str) for a in argv):
            raise ProcessorConfigError("processor_options.argv must be a non-empty list of strings")
        for n, arg in enumerate(argv):
            check_template(arg, FIELDS, f"processor_options.argv[{n}]")
        self._argv: list[str] = list(argv)
        self._result = ResultFile(options, FIELDS)
        self._timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        self._reactor = reactor
        self._clock = clock
        self._threads = threads

    def _values(self, work: ItemWork, output: Path) -> dict[str, str]:
        item = work.item
        return {"order_id": work.order_id, "item_id": item.item_id, "product_id": item.product_id or "",
                "collection_id": item.collection_id or "", "owner": work.owner, "directory": str(work.directory),
                "output": str(output)}

    async def prepare_item(self, work: ItemWork) -> None:
        final = self._result.path(work, self._values(work, Path()))
        partial = await self._threads.on_engine(self._result.partial, final)
        values = self._values(work, partial)
        argv = [arg.format(**values) for arg in self._argv]
        collect = _Collect()
        process = self._reactor.spawnProcess(collect, argv[0], argv, env=os.environ.copy(),
                                             path=str(work.directory), childFDs={0: "w", 1: "r", 2: "r"})
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            _kill(process)

        timer = self._clock.callLater(self._timeout, expire)
        try:
            code = await _killing_on_cancel(collect.done, process)
        finally:
            if timer.active():
                timer.cancel()
        if code != 0:
            why = f"timed out after {self._timeout:g} s" if timed_out else f"exited with status {code}"
            stderr = collect.stderr.decode("utf-8", "replace").strip()[-STDERR_KEPT:]
            await self._threads.on_engine(partial.unlink, missing_ok=True)
            raise CommandFailed(f"{os.path.basename(argv[0])} {why}" + (f": {stderr}" if stderr else ""))
        if not await self._threads.on_engine(_rename, partial, final):
            raise CommandFailed(f"{os.path.basename(argv[0])} wrote no {{output}} file")

    def deliver_item(self, work: ItemWork) -> None:
        pass

    async def clean_item(self, work: ItemWork) -> None:
        await self._threads.on_engine(self._result.remove, work, self._values(work, Path()))


def _rename(partial: Path, final: Path) -> bool:
    """The program's output under its final name; False when it wrote none."""
    if not partial.exists():
        return False
    os.replace(partial, final)
    return True


def _kill(process: Any) -> None:
    try:
        process.signalProcess("KILL")
    except Exception:
        pass  # already gone


def _killing_on_cancel(done: defer.Deferred[int], process: Any) -> defer.Deferred[int]:
    """``done``, whose cancellation kills the process first."""
    def cancel(waiting: defer.Deferred[int]) -> None:
        _kill(process)

    waiting: defer.Deferred[int] = defer.Deferred(cancel)

    def ended(result: Any) -> None:
        if not waiting.called:  # cancelled: the waiter has gone already
            waiting.callback(result)

    done.addBoth(ended)
    return waiting
