"""Turns the configuration into the OSEO Capabilities document.

The document depends only on the configuration, the caller's visible
collections and the endpoint URL, so the serialised bytes are cached: a
GetCapabilities costs a dictionary look-up after the first one."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import attrs

from ..config import Config
from ..core.catalogue import Catalogue
from ..model.accounts import Account
from ..oseo import capabilities as oseo_capabilities
from ..oseo.soap import Encoding, wrap

CACHE_SIZE = 256

_Key = tuple[Encoding, frozenset[str] | None, tuple[str, ...], str, tuple[str, ...]]


class CapabilitiesPresenter:
    def __init__(self, config: Config, catalogue: Catalogue) -> None:
        self._config = config
        self._catalogue = catalogue
        self._cache: OrderedDict[_Key, bytes] = OrderedDict()

    def render(self, encoding: Encoding, account: Account | None, endpoint_url: str,
               sections: frozenset[str] | None, operations: tuple[str, ...]) -> bytes:
        """``operations``: the operations the endpoint serves, for OperationsMetadata."""
        collections = tuple(c.id for c in self._catalogue.visible_to(account))
        key = (encoding, sections, collections, endpoint_url, operations)
        document = self._cache.get(key)
        if document is None:
            description = self._describe(collections, endpoint_url, operations)
            element = oseo_capabilities.render_capabilities(description, sections)
            document = wrap(encoding, element)
            self._cache[key] = document
            # Bounded: endpoint URLs come from clients' Host headers.
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return document

    def _describe(self, visible: tuple[str, ...], endpoint_url: str,
                  operations: tuple[str, ...]) -> oseo_capabilities.ServiceCapabilities:
        config = self._config
        collections = tuple(
            oseo_capabilities.CollectionCapability(
                collection_id=c.id,
                product_orders=c.supports("PRODUCT_ORDER") or c.supports("MASSIVE_ORDER"),
                subscription_orders=c.supports("SUBSCRIPTION_ORDER"),
                programming_orders=c.supports("TASKING_ORDER"),
            )
            for c in config.collections
            if c.id in visible
        )
        mode = config.quotation.mode
        return oseo_capabilities.ServiceCapabilities(
            # The configuration sections carry exactly the fields of the OWS sections.
            identification=oseo_capabilities.ServiceIdentification(**_fields(config.service)),
            provider=oseo_capabilities.ServiceProvider(**_fields(config.provider)),
            endpoint_url=endpoint_url,
            operations=operations,
            collections=collections,
            product_orders=any(c.product_orders for c in collections),
            subscription_orders=any(c.subscription_orders for c in collections),
            programming_orders=any(c.programming_orders for c in collections),
            quotation=oseo_capabilities.QuotationCapabilities(
                # The one mode [quotation] names, when GetQuotation is served (not "off").
                supported="GetQuotation" in operations and mode != "off",
                synchronous="GetQuotation" in operations and mode == "synchronous",
                asynchronous="GetQuotation" in operations and mode == "asynchronous",
                monitoring="GetQuotation" in operations and mode == "monitoring",
                off_line=False,
            ),
            submit_asynchronous=True,  # statusNotification All/Final: call-backs from the outbox
            max_products=config.orders.max_items_per_order,
            cancel_asynchronous=False,
            # wsnt:Subscribe and Unsubscribe are served on the OSEO endpoint.
            notification_producer=endpoint_url,
        )


def _fields(section: object) -> dict[str, Any]:
    return attrs.asdict(section, recurse=False)  # type: ignore[arg-type]
