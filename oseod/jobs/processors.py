"""The plug-in point for making products: :class:`IItemProcessor`.

A collection names its processor (``processor = "dummy"`` or
``"package.module:ClassName"``); the class is built once with the
collection's ``processor_options``, the reactor (processes, threads) and
the clock (time); a class whose constructor also takes a ``threads``
keyword is given the daemon's named thread pools (:mod:`oseod.threads`),
whose ``disk`` pool is where file work belongs. The engine calls it for
each item of a job, possibly more than once for the same item (a retry, or
a crash before the outcome was stored): a processor's effects must be
idempotent (write to a temporary name, then rename over the final one).
Failures are exceptions; their message becomes the item's
additionalStatusInfo once the attempts are used up.
"""

from __future__ import annotations

import importlib
import inspect
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface

from ..model.orders import ItemSpec
from ..reactors import IDaemonReactor
from ..threads import ThreadPools


@attrs.frozen
class ItemWork:
    """One item to make, as a processor sees it."""

    order_id: str
    owner: str
    item: ItemSpec
    attempt: int
    directory: Path  # the item's own result directory (the user's delivery area)


class IItemProcessor(Interface):
    """Makes and delivers the items of the collections that name it. Every
    method may return a Deferred (or be a coroutine function) and must never
    block the reactor: spawnProcess, the daemon's thread pools, treq."""

    def prepare_item(work: ItemWork) -> Any:
        """Produce the item's product in ``work.directory``; raise to fail
        this attempt."""

    def deliver_item(work: ItemWork) -> Any:
        """Hand the result over as the item's delivery asks (nothing to do
        for onlineDataAccess: the directory is what users download)."""

    def clean_item(work: ItemWork) -> Any:
        """Remove what prepare_item left, once the result has expired."""


class IOrderChecks(Interface):
    """What a processor may also provide, asked at Submit (synchronously: a
    Submit waits for nothing but Redis)."""

    def collection_of(identifier: str) -> str | None:
        """The collection of a product identifier given without one (None:
        not this processor's); asked before the configured prefixes."""

    def check_item(item: ItemSpec) -> str | None:
        """Why this processor cannot make ``item`` (its options, its
        identifier), refusing the Submit with InvalidParameterValue; None: fine."""


class IQuotes(Interface):
    """What a processor may also provide to price its collection's items
    for GetQuotation, instead of the configured table ([[collection]]
    price_per_item and prices)."""

    def quote_item(collection: str, item: ItemSpec) -> Any:
        """The price of ``item`` of the collection ``collection`` (its id),
        in the collection's currency: an int, float, Decimal or numeric
        string, at least 0; None: the configured table prices it. May return
        a Deferred (or be a coroutine function); must not block the reactor."""


class IMassiveExpansion(Interface):
    """What a processor may also provide to expand a massive order given as
    one orderItem (a collection and, in its options, what to take from it)
    into batches of products, one batch at a time as the ones before finish."""

    def batch_identifiers(item: ItemSpec, index: int, size: int) -> Any:
        """The product identifiers of batch ``index`` (from 0) of at most
        ``size``; none when the expansion is over. May return a Deferred."""


class ResultFile:
    """The one result file of processors that name it with an ``output``
    option (a template of their fields): where it goes, the temporary name it
    is made under (renamed once complete, so a result is never half there and
    a second run replaces it), and its removal."""

    def __init__(self, options: Mapping[str, Any], fields: Sequence[str]) -> None:
        self._template = str(options.get("output", "{product_id}"))
        check_template(self._template, fields, "processor_options.output")

    def path(self, work: ItemWork, values: Mapping[str, str]) -> Path:
        return work.directory / file_name(self._template.format(**values))

    @staticmethod
    def partial(final: Path) -> Path:
        """The name ``final`` is made under; creates its directory."""
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.partial")

    def remove(self, work: ItemWork, values: Mapping[str, str]) -> None:
        self.path(work, values).unlink(missing_ok=True)


# (options, reactor, clock), and a keyword ``threads`` when it takes one (build_processor)
ProcessorFactory = Callable[..., IItemProcessor]


class UnknownProcessor(Exception):
    pass


class ProcessorConfigError(ValueError):
    """A collection's processor_options are wrong; the message says which."""


def check_template(template: str, fields: Sequence[str], where: str) -> None:
    """``template`` (str.format syntax) uses only ``fields``."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ProcessorConfigError(f"{where}: {e}") from None
    for _, field, _, _ in parsed:
        if field is not None and field not in fields:
            raise ProcessorConfigError(f"{where}: unknown field {{{field}}} (known: {', '.join(fields)})")


def file_name(text: str, default: str = "result") -> str:
    """``text`` as a plain file name: letters, digits, "._-" (others become
    "_"), never hidden, at most 200 characters."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:200].lstrip(".")
    return safe or default


async def processor_quote(processor: object, collection_id: str, item: ItemSpec) -> Any:
    """``processor``'s price for ``item`` when it provides IQuotes, else None."""
    if not IQuotes.providedBy(processor):
        return None
    result = processor.quote_item(collection_id, item)  # type: ignore[attr-defined]
    if inspect.isawaitable(result):
        result = await result
    return result


def build_processor(factory: ProcessorFactory, options: Mapping[str, Any], reactor: IDaemonReactor, clock: IReactorTime,
                    threads: ThreadPools) -> IItemProcessor:
    """``factory(options, reactor, clock)``, with ``threads=threads`` when
    it takes that keyword (the built-in processors do)."""
    try:
        wants_threads = "threads" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without a signature Python can read
        wants_threads = False
    if wants_threads:
        return factory(options, reactor, clock, threads=threads)
    return factory(options, reactor, clock)


def load_processor(name: str, builtins: Mapping[str, ProcessorFactory]) -> ProcessorFactory:
    """The factory named by a collection's ``processor``: a built-in name or
    ``package.module:ClassName``."""
    if name in builtins:
        return builtins[name]
    module_name, _, class_name = name.partition(":")
    if not module_name or not class_name:
        raise UnknownProcessor(f"no built-in processor {name!r}, and not a 'package.module:ClassName'")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise UnknownProcessor(f"cannot load processor {name!r}: {e}") from None
    if not callable(found):
        raise UnknownProcessor(f"processor {name!r} is not a class")
    return found  # type: ignore[no-any-return]
