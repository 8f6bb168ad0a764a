"""Turns the collections' configuration into GetOptions option sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..config import CollectionConfig, OptionConfig
from ..core.catalogue import Catalogue
from ..model.accounts import Account
from ..model.errors import RequestRejected, invalid
from ..oseo.options import OptionDescription, OrderOptionSet

# What a client may put in productOrderOptionsId: the wire order type, which
# is also how Submit tells the option sets of one collection apart.
_WIRE_TYPES = (
    ("PRODUCT_ORDER", ("PRODUCT_ORDER", "MASSIVE_ORDER")),
    ("SUBSCRIPTION_ORDER", ("SUBSCRIPTION_ORDER",)),
    ("TASKING_ORDER", ("TASKING_ORDER",)),
)


def _descriptions(options: Sequence[OptionConfig], grouping: str) -> tuple[OptionDescription, ...]:
    return tuple(
        OptionDescription(name=o.name, choices=o.choices, description=o.description, default=o.default or None,
                          grouping=grouping)
        for o in options
    )


class OptionsPresenter:
    def __init__(self, catalogue: Catalogue, resolve: Callable[[str], str | None]) -> None:
        """``resolve``: the collection id a product identifier belongs to (the
        core's rule, which Submit applies too)."""
        self._catalogue = catalogue
        self._resolve = resolve

    def option_sets(self, account: Account, collection_id: str | None,
                    identifiers: Sequence[str]) -> list[OrderOptionSet]:
        if collection_id is not None:
            return self._sets(self._visible(account, collection_id, "collectionId"), None)
        sets: list[OrderOptionSet] = []
        for identifier in identifiers:
            collection_id = self._resolve(identifier)
            if collection_id is None:
                raise invalid("identifier", f'no collection offers product "{identifier}"')
            sets += self._sets(self._visible(account, collection_id, "identifier"), identifier)
        return sets

    def _visible(self, account: Account, collection_id: str, locator: str) -> CollectionConfig:
        for collection in self._catalogue.visible_to(account):
            if collection.id == collection_id:
                return collection
        raise RequestRejected("UnsupportedCollection", locator, f'collection "{collection_id}" cannot be ordered here')

    @staticmethod
    def _sets(collection: CollectionConfig, identifier: str | None) -> list[OrderOptionSet]:
        options = _descriptions(collection.option, "Processing Option")
        scenes = _descriptions(collection.scene_selection, "Scene Selection")
        name = collection.title or collection.id
        # OSEO 1.0's orderOptions has no element for packaging: the choices
        # a Submit may make are said in the description.
        packaging = f"; packaging: {', '.join(collection.packaging)}" if collection.packaging else ""
        return [
            OrderOptionSet(
                product_order_options_id=wire,
                order_type=wire,
                description=f"{wire} options for {name}"[:255 - len(packaging)] + packaging,
                options=options,
                online_access_protocols=collection.online_data_access,
                online_delivery_protocols=collection.online_data_delivery,
                media=(),
                identifier=identifier,
                payment_methods=collection.payment_methods,
                scene_selection=scenes,
            )
            for wire, types in _WIRE_TYPES
            if any(collection.supports(t) for t in types)
        ]
