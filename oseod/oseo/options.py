"""GetOptions: what may be ordered of a collection, of products or of a
tasking request, and how (OGC 06-141r6 §9; oseo.xsd OrderOptionsRequestType,
CommonOrderOptionsType).

Each processing option is advertised as the SWE Common 2.0 component the
official samples use: a ``swe:DataRecord`` with one field holding a
``swe:Category`` whose ``swe:AllowedTokens`` list the choices.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import attrs
from lxml import etree

from oseod.oseo.common import (
    request_children,
    ORDER_TYPES,
    PACKAGE_MEDIA,
    PROTOCOLS,
    content,
    oseo,
    response,
    string,
    sub,
    tasking_request_id_of,
)
from oseod.oseo.errors import xml_safe
from oseod.oseo.namespaces import OSEO, SWE, qname


@attrs.frozen
class GetOptionsRequest:
    """Exactly one of the three is given: a collection, product identifiers
    (then ``identifiers`` is not empty) or a tasking request."""

    collection_id: str | None
    identifiers: tuple[str, ...]
    tasking_request_id: str | None


_KNOWN: Final = content("timeStamp", "collectionId", "identifier", "taskingRequestId")


def parse_get_options(payload: etree._Element) -> GetOptionsRequest:
    """The request carried by an ``oseo:GetOptions`` element."""
    children = request_children(payload, "GetOptions", _KNOWN)
    first = children.choice("collectionId", "identifier", "taskingRequestId")
    collection_id = tasking_request_id = None
    identifiers: tuple[str, ...] = ()
    if first.tag == oseo("collectionId"):
        collection_id = string(first, 255, required=True)
    elif first.tag == oseo("identifier"):
        identifiers = tuple(string(element, required=True) for element in [first, *children.repeated("identifier")])
    else:
        tasking_request_id = tasking_request_id_of(first)
    children.finish()
    return GetOptionsRequest(collection_id, identifiers, tasking_request_id)


# ---------------------------------------------------------------------- answer

# swe:field/@name is an xs:NCName.
_NCNAME: Final = re.compile(r"[^\W\d][\w.\-]*")


def _ncname(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _NCNAME.fullmatch(value):
        raise ValueError(f"{attribute.name} {value!r} is not an XML name (NCName): it cannot name a swe:field")


@attrs.frozen
class OptionDescription:
    """One option a client may set: its name (the element name a client uses
    inside ParameterData/values), the allowed values (empty: free text), a
    human description, a default, and the group it is shown in (≤ 40
    characters; scene selection options are grouped into one
    sceneSelectionOption per group)."""

    name: str = attrs.field(validator=_ncname)
    choices: tuple[str, ...]
    description: str = ""
    default: str | None = None
    grouping: str | None = None


def _one_of(allowed: Sequence[str]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
        for item in value:
            if item not in allowed:
                raise ValueError(f"{attribute.name}: {item!r} is not one of {', '.join(allowed)}")

    return check


def _length(low: int, high: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not low <= len(value) <= high:
            raise ValueError(f"{attribute.name} {value!r} must be {low} to {high} characters long")

    return check


def _order_type(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ORDER_TYPES:
        raise ValueError(f"order_type {value!r} is not one of {', '.join(ORDER_TYPES)}")


def _payment_methods(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    for method in value:
        if not 1 <= len(method) <= 40:
            raise ValueError(f"payment method {method!r} must be 1 to 40 characters long")


@attrs.frozen
class OrderOptionSet:
    """One ``orderOptions`` entry: the options of one order type, named by
    ``product_order_options_id`` (what a Submit names in
    productOrderOptionsId). A set offers at least one delivery method: the
    schema requires a productDeliveryOptions."""

    product_order_options_id: str = attrs.field(validator=_length(1, 40))
    order_type: str = attrs.field(validator=_order_type)
    description: str
    options: tuple[OptionDescription, ...]
    online_access_protocols: tuple[str, ...] = attrs.field(validator=_one_of(PROTOCOLS))
    online_delivery_protocols: tuple[str, ...] = attrs.field(validator=_one_of(PROTOCOLS))
    media: tuple[str, ...] = attrs.field(validator=_one_of(PACKAGE_MEDIA))
    identifier: str | None = None
    payment_methods: tuple[str, ...] = attrs.field(default=(), validator=_payment_methods)
    scene_selection: tuple[OptionDescription, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not (self.online_access_protocols or self.online_delivery_protocols or self.media):
            raise ValueError(f"order options {self.product_order_options_id!r} offer no delivery method")


def _swe(local: str) -> str:
    return qname(SWE, local)


def _data_record(parent: etree._Element, option: OptionDescription) -> None:
    """``swe:DataRecord/swe:field/swe:Category`` describing ``option``."""
    field = etree.SubElement(etree.SubElement(parent, _swe("DataRecord")), _swe("field"))
    field.set("name", option.name)
    category = etree.SubElement(field, _swe("Category"))
    category.set("updatable", "false")
    category.set("optional", "true")
    # AbstractSWEIdentifiableType, then CategoryType: description, constraint, value.
    if option.description:
        etree.SubElement(category, _swe("description")).text = xml_safe(option.description)
    if option.choices:
        tokens = etree.SubElement(etree.SubElement(category, _swe("constraint")), _swe("AllowedTokens"))
        for choice in option.choices:
            etree.SubElement(tokens, _swe("value")).text = xml_safe(choice)
    if option.default is not None:
        etree.SubElement(category, _swe("value")).text = xml_safe(option.default)


def _delivery(parent: etree._Element, method: str, child: str, values: tuple[str, ...]) -> None:
    if values:
        element = sub(sub(parent, "productDeliveryOptions"), method)
        for value in values:
            sub(element, child, value)


def _scene_selection(parent: etree._Element, parameters: tuple[OptionDescription, ...]) -> None:
    groups: dict[str | None, list[OptionDescription]] = {}
    for parameter in parameters:
        groups.setdefault(parameter.grouping, []).append(parameter)
    for grouping, members in groups.items():
        element = sub(parent, "sceneSelectionOption")
        if grouping:
            sub(element, "name", xml_safe(grouping, 60))
        for member in members:
            _data_record(sub(element, "sceneSelectionParameter"), member)


def _order_options(parent: etree._Element, options: OrderOptionSet) -> None:
    element = sub(parent, "orderOptions")
    sub(element, "productOrderOptionsId", options.product_order_options_id)
    if options.identifier is not None:
        sub(element, "identifier", options.identifier)
    if options.description:
        sub(element, "description", xml_safe(options.description, 255))
    sub(element, "orderType", options.order_type)
    for option in options.options:
        holder = sub(element, "option")
        _data_record(holder, option)
        if option.grouping:
            sub(holder, "grouping", xml_safe(option.grouping, 40))
    _delivery(element, "onlineDataAccess", "protocol", options.online_access_protocols)
    _delivery(element, "onlineDataDelivery", "protocol", options.online_delivery_protocols)
    _delivery(element, "mediaDelivery", "packageMedium", options.media)
    for method in options.payment_methods:
        sub(sub(element, "paymentOptions"), "paymentMethod", method)
    _scene_selection(element, options.scene_selection)


def render_get_options_response(option_sets: Sequence[OrderOptionSet]) -> etree._Element:
    """The ``oseo:GetOptionsResponse``: status success, one orderOptions per set."""
    root = response("GetOptionsResponse", {"oseo": OSEO, "swe": SWE})
    for options in option_sets:
        _order_options(root, options)
    return root
