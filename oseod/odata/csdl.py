"""``$metadata`` (CSDL 4.0, XML) and the service document, written from
:mod:`oseod.odata.edm` alone: what they declare is what the JSON renderers
(:mod:`oseod.odata.entities`) are checked against, so the two cannot drift."""

from __future__ import annotations

import functools

import orjson
from lxml import etree

from . import edm

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
CONTAINER = "Container"
CORE = "Org.OData.Core.V1"
COMPUTED = f"{CORE}.Computed"  # a property the server sets (python-odata leaves it out of a POST)


def _type_name(type_: str, collection: bool) -> str:
    return f"Collection({type_})" if collection else type_


def _property(parent: etree._Element, prop: edm.Property) -> None:
    element = etree.SubElement(parent, f"{{{EDM}}}Property", Name=prop.name,
                               Type=_type_name(prop.type, prop.collection))
    if not prop.nullable:
        element.set("Nullable", "false")
    if prop.type == edm.DATE_TIME:
        element.set("Precision", "3")  # milliseconds: values.iso_time
    if prop.computed:
        etree.SubElement(element, f"{{{EDM}}}Annotation", Term=COMPUTED, Bool="true")
    if prop.description:
        _describe(element, prop.description)


def _describe(element: etree._Element, text: str) -> None:
    etree.SubElement(element, f"{{{EDM}}}Annotation", Term=f"{CORE}.Description", String=text)


def _entity_type(schema: etree._Element, entity: edm.EntityType) -> None:
    element = etree.SubElement(schema, f"{{{EDM}}}EntityType", Name=entity.name)
    key = etree.SubElement(element, f"{{{EDM}}}Key")
    etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name=entity.key)
    for prop in entity.properties:
        _property(element, prop)
    for navigation in entity.navigation:
        etree.SubElement(element, f"{{{EDM}}}NavigationProperty", Name=navigation.name,
                         Type=_type_name(navigation.type, navigation.collection))


def _action(schema: etree._Element, action: edm.Action) -> None:
    element = etree.SubElement(schema, f"{{{EDM}}}Action", Name=action.name, IsBound="true")
    etree.SubElement(element, f"{{{EDM}}}Parameter", Name="bindingParameter",
                     Type=_type_name(action.binding, action.binding_collection), Nullable="false")
    for parameter in action.parameters:
        p = etree.SubElement(element, f"{{{EDM}}}Parameter", Name=parameter.name,
                             Type=_type_name(parameter.type, parameter.collection))
        if not parameter.nullable:
            p.set("Nullable", "false")
    etree.SubElement(element, f"{{{EDM}}}ReturnType", Type=action.returns, Nullable="false")


def _navigation_targets(entity: edm.EntityType) -> list[tuple[str, str]]:
    """(navigation property, entity set) pairs: each navigation leads to the
    set of its type."""
    bindings = []
    for navigation in entity.navigation:
        for entity_set in edm.ENTITY_SETS:
            if entity_set.type.qualified == navigation.type:
                bindings.append((navigation.name, entity_set.name))
                break
    return bindings


@functools.cache
def metadata_xml() -> bytes:
    """The CSDL document (made once: the model does not change)."""
    root = etree.Element(f"{{{EDMX}}}Edmx", nsmap={"edmx": EDMX}, Version="4.0")
    reference = etree.SubElement(
        root, f"{{{EDMX}}}Reference",
        Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml")
    etree.SubElement(reference, f"{{{EDMX}}}Include", Namespace=CORE, Alias="Core")
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = etree.SubElement(services, f"{{{EDM}}}Schema", nsmap={None: EDM}, Namespace=edm.NAMESPACE)
    for enum in edm.ENUMS:
        element = etree.SubElement(schema, f"{{{EDM}}}EnumType", Name=enum.name)
        for value, member in enumerate(enum.members):
            etree.SubElement(element, f"{{{EDM}}}Member", Name=member, Value=str(value))
    for complex_type in edm.COMPLEX_TYPES:
        element = etree.SubElement(schema, f"{{{EDM}}}ComplexType", Name=complex_type.name)
        for prop in complex_type.properties:
            _property(element, prop)
    for entity in edm.ENTITY_TYPES:
        _entity_type(schema, entity)
    for action in edm.ACTIONS:
        _action(schema, action)
    container = etree.SubElement(schema, f"{{{EDM}}}EntityContainer", Name=CONTAINER)
    for entity_set in edm.ENTITY_SETS:
        element = etree.SubElement(container, f"{{{EDM}}}EntitySet", Name=entity_set.name,
                                   EntityType=entity_set.type.qualified)
        for path, target in _navigation_targets(entity_set.type):
            etree.SubElement(element, f"{{{EDM}}}NavigationPropertyBinding", Path=path, Target=target)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def service_document(base_url: str) -> bytes:
    """The service root's JSON: every entity set, relative to ``base_url``
    (the service root, e.g. ``https://host/odata/v1``)."""
    return orjson.dumps({
        "@odata.context": f"{base_url.rstrip('/')}/$metadata",
        "value": [{"name": s.name, "kind": "EntitySet", "url": s.name} for s in edm.ENTITY_SETS],
    })
