"""Workflows: each collection a caller may order products of, as ODIP
shows a processing chain. Its Name is the collection id (so a SOAP order's
collection names its workflow), its WorkflowOptions the collection's
processing options, as GetOptions offers them."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import CollectionConfig, OptionConfig
from . import edm
from .entities import Row, shaped
from .errors import bad_request
from .ids import workflow_uuid

ORDERABLE = "PRODUCT_ORDER"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def option_type(option: OptionConfig) -> str:
    """"number" when every choice is one, else "string"."""
    return "number" if option.choices and all(_number(c) for c in option.choices) else "string"


def _option(option: OptionConfig) -> Row:
    return shaped(edm.WORKFLOW_OPTION, {
        "Name": option.name,
        "Description": option.description or None,
        "Type": option_type(option),
        "Default": option.default or None,
        "Value": list(option.choices),
    })


def workflow(collection: CollectionConfig, version: str) -> Row:
    """``collection`` as a Workflow row."""
    title = collection.title or collection.id
    return shaped(edm.WORKFLOW, {
        "Id": workflow_uuid(collection.id),
        "Name": collection.id,
        "DisplayName": title,
        "Description": f"Products of {title}, made on demand (OSEO PRODUCT_ORDER of collection {collection.id})",
        "InputProductType": collection.id,
        "OutputProductType": collection.id,
        "WorkflowVersion": version,
        "WorkflowOptions": [_option(o) for o in collection.option],
    })


def orderable(collections: Sequence[CollectionConfig]) -> list[CollectionConfig]:
    """The collections (of those a caller sees) that take product orders."""
    return [c for c in collections if c.supports(ORDERABLE)]


def workflows_of(collections: Sequence[CollectionConfig], version: str) -> list[Row]:
    """The Workflows of ``collections`` (those visible to the caller)."""
    return [workflow(c, version) for c in orderable(collections)]


def find_workflow(collections: Sequence[CollectionConfig], name: str | None = None,
                  id: str | None = None) -> CollectionConfig | None:  # noqa: A002 - OData's name
    """The collection of the Workflow named ``name`` or with Id ``id`` among
    ``collections`` (those visible to the caller); None when there is none.
    Both given: they must name the same one (else ODataError 400, target
    WorkflowId)."""
    by_name = by_id = None
    for collection in orderable(collections):
        if name is not None and collection.id == name:
            by_name = collection
        if id is not None and workflow_uuid(collection.id) == id.strip().lower():
            by_id = collection
    if name is not None and id is not None and by_name is not by_id:
        if by_name is None:
            return None  # an unknown name: unknown, as a lone unknown one is
        # (a known name with an Id that is not its own, or no Id at all: the Id is at fault)
        raise bad_request("WorkflowId", f'WorkflowId "{id[:80]}" is not the Id of workflow "{name}" '
                                        f'(its Id is "{workflow_uuid(by_name.id)}")')
    return by_name if name is not None else by_id
