"""The processor registry on its own: built-ins and ``module:Class`` names
loaded, a processor that cannot be had refused at start (naming its
collection), and the hooks the Submit checks and GetQuotation ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from zope.interface import implementer
from zope.interface.verify import verifyObject

from oseod.config import DEMO_COLLECTION, CollectionConfig, Config
from oseod.jobs.attempts import ProcessorError
from oseod.jobs.dummy import DummyProcessor
from oseod.jobs.processors import IItemProcessor, IMassiveExpansion, IOrderChecks, IQuotes, ItemWork
from oseod.jobs.registry import BUILTINS, ProcessorRegistry
from oseod.model.orders import ItemSpec
from tests.pools import POOLS

CHECKED = CollectionConfig(id="urn:x:checked", processor="checking", identifier_prefixes=("urn:x:checked:",))
BY_NAME = CollectionConfig(id="urn:x:by-name", processor="oseod.jobs.dummy:DummyProcessor")


@implementer(IItemProcessor, IOrderChecks, IQuotes, IMassiveExpansion)
class CheckingProcessor:
    """Claims the "ZZ-" products, refuses the "bad" ones, prices each at 3,
    and expands a massive order into one batch."""

    built = 0

    def __init__(self, options: Mapping[str, Any], reactor: Any, clock: Any) -> None:
        type(self).built += 1

    def prepare_item(self, work: ItemWork) -> None:
        pass

    def deliver_item(self, work: ItemWork) -> None:
        pass

    def clean_item(self, work: ItemWork) -> None:
        pass

    def collection_of(self, identifier: str) -> str | None:
        return CHECKED.id if identifier.startswith("ZZ-") else None

    def check_item(self, item: ItemSpec) -> str | None:
        return "no bad products here" if (item.product_id or "").startswith("bad") else None

    async def quote_item(self, collection: str, item: ItemSpec) -> int:
        return 3

    def batch_identifiers(self, item: ItemSpec, index: int, size: int) -> list[str]:
        return ["p1"] if index == 0 else []


def registry(*collections: CollectionConfig) -> ProcessorRegistry:
    return ProcessorRegistry(Config(collections=collections), reactor, task.Clock(), threads=POOLS,
                             builtins={**BUILTINS, "checking": CheckingProcessor})


def test_the_built_ins_and_module_class_names_are_loaded_once_each() -> None:
    CheckingProcessor.built = 0
    processors = registry(DEMO_COLLECTION, CHECKED, BY_NAME)
    processors.start()
    processors.start()  # again: nothing more is built
    dummy = processors.processor(DEMO_COLLECTION.id)
    assert isinstance(dummy, DummyProcessor) and verifyObject(IItemProcessor, dummy)
    assert isinstance(processors.processor(BY_NAME.id), DummyProcessor)
    assert processors.processor(BY_NAME.id) is not dummy  # one per collection
    assert isinstance(processors.processor(CHECKED.id), CheckingProcessor) and CheckingProcessor.built == 1
    assert set(BUILTINS) == {"dummy", "command", "archive", "http"}


@pytest.mark.parametrize("name, error", [
    ("nope", "no built-in processor 'nope'"),
    ("no.such.module:Thing", "cannot load processor 'no.such.module:Thing'"),
    ("oseod.jobs.dummy:Missing", "cannot load processor"),
])
def test_a_processor_that_cannot_be_loaded_stops_the_start_naming_its_collection(name: str, error: str) -> None:
    processors = registry(DEMO_COLLECTION, CollectionConfig(id="urn:x:broken", processor=name))
    with pytest.raises(ProcessorError) as refused:
        processors.start()
    assert str(refused.value).startswith(f"collection urn:x:broken: processor {name!r}: ")
    assert error in str(refused.value)


def test_a_processor_whose_options_are_wrong_stops_the_start() -> None:
    processors = registry(CollectionConfig(id="urn:x:sized", processor="dummy", processor_options={"size": "big"}))
    with pytest.raises(ProcessorError, match="^collection urn:x:sized: processor 'dummy': "):
        processors.start()


def test_the_submit_checks_ask_the_processors_that_provide_them() -> None:
    processors = registry(DEMO_COLLECTION, CHECKED)
    processors.start()
    assert processors.collection_of("ZZ-1") == CHECKED.id
    assert processors.resolve("ZZ-1") == CHECKED.id  # the processor's claim
    assert processors.resolve("urn:x:checked:a") == CHECKED.id  # the configured prefix
    assert processors.resolve("urn:oseod:demo:x") == DEMO_COLLECTION.id
    assert processors.resolve("elsewhere") is None
    assert processors.check_item(CHECKED, ItemSpec(item_id="i", product_id="bad-1")) == "no bad products here"
    assert processors.check_item(CHECKED, ItemSpec(item_id="i", product_id="good")) is None
    # The dummy provides no checks: it objects to nothing.
    assert processors.check_item(DEMO_COLLECTION, ItemSpec(item_id="i", product_id="bad-1")) is None


@pytest_twisted.ensureDeferred
async def test_quotes_and_expansion_come_from_the_processors_that_provide_them() -> None:
    processors = registry(DEMO_COLLECTION, CHECKED)
    processors.start()
    item = ItemSpec(item_id="i", product_id="p")
    assert await processors.quote(CHECKED, item) == 3
    assert await processors.quote(DEMO_COLLECTION, item) is None  # the configured table prices it
    assert isinstance(processors.expansion(CHECKED.id), CheckingProcessor)
    assert processors.expansion(DEMO_COLLECTION.id) is None
    assert processors.expansion("urn:x:gone") is None  # no longer configured
