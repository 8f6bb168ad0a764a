"""The processor registry: each collection's processor, built once from its
``processor`` name (a built-in or ``package.module:ClassName``) and asked by
whoever needs it: the engine to make items, the Submit checks (identifiers a
processor claims, items it refuses: :class:`~.processors.IOrderChecks`),
GetQuotation (:class:`~.processors.IQuotes`) and massive-order expansion
(:class:`~.processors.IMassiveExpansion`).

The daemon builds it first and hands it to each of them, so none of them
reaches into another for it. :meth:`start` builds every configured
collection's processor: a misnamed or misconfigured one stops the daemon's
start, naming it, instead of failing the first order's every attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..config import CollectionConfig, Config
from ..core.validation import resolve_collection
from ..model.orders import ItemSpec
from .archive import ArchiveProcessor
from .attempts import ProcessorError
from .command import CommandProcessor
from .dummy import DummyProcessor
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .fetch import HttpProcessor
from .processors import (
    IItemProcessor,
    IMassiveExpansion,
    IOrderChecks,
    ProcessorFactory,
    UnknownProcessor,
    build_processor,
    load_processor,
    processor_quote,
)

BUILTINS: Mapping[str, ProcessorFactory] = {"dummy": DummyProcessor, "command": CommandProcessor,
                                            "archive": ArchiveProcessor, "http": HttpProcessor}


class ProcessorRegistry:
    """The configured collections' processors, by collection id."""

    def __init__(self, config: Config, reactor: IDaemonReactor, clock: IReactorTime, *, threads: ThreadPools,
                 builtins: Mapping[str, ProcessorFactory] = BUILTINS) -> None:
        self._config = config
        self._reactor = reactor
        self._clock = clock
        self._threads = threads
        self._builtins = builtins
        self._processors: dict[str, IItemProcessor] = {}

    def start(self) -> None:
        """Build every collection's processor now; ProcessorError naming the
        first that cannot be. Again: nothing more to do."""
        for collection in self._config.collections:
            try:
                self.processor(collection.id)
            except Exception as e:
                raise ProcessorError(f"collection {collection.id}: processor {collection.processor!r}: {e}") from None

    def processor(self, collection_id: str) -> IItemProcessor:
        """The collection's processor, built at its first use;
        UnknownProcessor when the collection is no longer configured or its
        processor cannot be loaded."""
        processor = self._processors.get(collection_id)
        if processor is None:
            collection: CollectionConfig | None = self._config.collection(collection_id)
            if collection is None:
                raise UnknownProcessor(f"collection {collection_id!r} is no longer configured")
            factory = load_processor(collection.processor, self._builtins)
            processor = self._processors[collection_id] = build_processor(
                factory, collection.processor_options, self._reactor, self._clock, self._threads)
        return processor

    # ------------------------------------------------------------ Submit checks

    def resolve(self, identifier: str) -> str | None:
        """The collection of a product identifier given without one: the
        processors' claims first, then the configured prefixes."""
        return self.collection_of(identifier) or resolve_collection(identifier, self._config.collections)

    def collection_of(self, identifier: str) -> str | None:
        """The first collection whose processor claims ``identifier`` (IOrderChecks)."""
        for collection in self._config.collections:
            processor = self._processors.get(collection.id)
            if IOrderChecks.providedBy(processor):
                found = processor.collection_of(identifier)
                if found is not None:
                    return str(found)
        return None

    def check_item(self, collection: CollectionConfig, item: ItemSpec) -> str | None:
        """The collection's processor's objection to ``item`` (IOrderChecks)."""
        processor = self._processors.get(collection.id)
        if IOrderChecks.providedBy(processor):
            refusal = processor.check_item(item)
            return None if refusal is None else str(refusal)
        return None

    # ------------------------------------------------------------ other hooks

    async def quote(self, collection: CollectionConfig, item: ItemSpec) -> Any:
        """The processor's price for ``item`` when it provides IQuotes, else
        None (the configured table prices it)."""
        return await processor_quote(self.processor(collection.id), collection.id, item)

    def expansion(self, collection_id: str) -> IMassiveExpansion | None:
        """The collection's processor when it expands massive orders (None
        too when the collection's processor cannot be had)."""
        try:
            processor = self.processor(collection_id)
        except Exception:
            return None
        return IMassiveExpansion(processor) if IMassiveExpansion.providedBy(processor) else None
