"""The one model of the OData service: every type, property, entity set and
action it has. ``$metadata`` (CSDL) is written from it, the JSON renderers
may only write what it declares, and ``$filter``/``$orderby``/``$select``
only name what it marks so: the three cannot drift apart.

Names follow the Copernicus ICDs (ODIP, LTA) and CDSE (rest-ordering.md)."""

from __future__ import annotations

import attrs

NAMESPACE = "OData.CSC"

# Edm primitive types used here, and how their JSON values look.
STRING = "Edm.String"
GUID = "Edm.Guid"  # "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
INT64 = "Edm.Int64"  # a JSON number
DATE_TIME = "Edm.DateTimeOffset"  # "2026-12-06T20:40:00.000Z", milliseconds, UTC
BOOLEAN = "Edm.Boolean"

JOB_STATUS = f"{NAMESPACE}.JobStatus"
JOB_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled")


@attrs.frozen
class Property:
    name: str
    type: str  # an Edm primitive, or a qualified enum or complex type of this namespace
    nullable: bool = True
    collection: bool = False
    # May be used in $filter and $orderby (and is then a primitive or the enum).
    queryable: bool = False
    description: str = ""
    # Set by the server, never by a client's POST (CSDL: Core.Computed).
    computed: bool = False


@attrs.frozen
class Navigation:
    name: str
    type: str  # qualified entity type
    collection: bool = False


@attrs.frozen
class EnumType:
    name: str
    members: tuple[str, ...]


@attrs.frozen
class ComplexType:
    name: str
    properties: tuple[Property, ...]


@attrs.frozen
class EntityType:
    name: str
    properties: tuple[Property, ...]
    navigation: tuple[Navigation, ...] = ()
    key: str = "Id"

    @property
    def qualified(self) -> str:
        return f"{NAMESPACE}.{self.name}"

    def field(self, name: str) -> Property | None:
        for p in self.properties:
            if p.name == name:
                return p
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)


@attrs.frozen
class Parameter:
    name: str
    type: str
    nullable: bool = True
    collection: bool = False


@attrs.frozen
class Action:
    """A bound action: ``POST .../<binding>/OData.CSC.<name>``."""

    name: str
    binding: str  # qualified entity type it is bound to
    binding_collection: bool  # bound to the entity set (True) or to one entity
    returns: str  # qualified entity type
    parameters: tuple[Parameter, ...] = ()


@attrs.frozen
class EntitySet:
    name: str
    type: EntityType


def _p(name: str, type_: str, *, queryable: bool = False, nullable: bool = True, collection: bool = False,
       description: str = "", computed: bool = False) -> Property:
    return Property(name, type_, nullable=nullable, collection=collection, queryable=queryable,
                    description=description, computed=computed)


TIME_RANGE = ComplexType("TimeRange", (_p("Start", DATE_TIME), _p("End", DATE_TIME)))
INPUT_PRODUCT_REFERENCE = ComplexType("InputProductReference", (
    _p("Reference", STRING, description="The input product's identifier (file name)"),
    _p("ContentDate", f"{NAMESPACE}.TimeRange"),
))
# One option an order is made with.
OPTION_VALUE = ComplexType("OptionValue", (_p("Name", STRING, nullable=False), _p("Value", STRING)))
# One option a workflow offers.
WORKFLOW_OPTION = ComplexType("WorkflowOption", (
    _p("Name", STRING, nullable=False),
    _p("Description", STRING),
    _p("Type", STRING, description="string or number"),
    _p("Default", STRING),
    _p("Value", STRING, collection=True, description="The allowed values (empty: any)"),
))

JOB_STATUS_TYPE = EnumType("JobStatus", JOB_STATUSES)

_ORDER_COMMON = (
    # (Made by the server too, but a key is not marked Computed: python-odata
    # would then fail to create an order.)
    _p("Id", GUID, nullable=False, queryable=True),
    _p("Name", STRING, queryable=True, description="The client's label (OSEO orderReference)"),
    _p("Status", JOB_STATUS, nullable=False, queryable=True, computed=True),
    _p("StatusMessage", STRING, queryable=True, description="The OSEO status, and what it says", computed=True),
    _p("SubmissionDate", DATE_TIME, nullable=False, queryable=True, computed=True),
    _p("EstimatedDate", DATE_TIME, queryable=True, computed=True),
    _p("CompletedDate", DATE_TIME, queryable=True, computed=True),
    _p("EvictionDate", DATE_TIME, queryable=True, computed=True),
    _p("Priority", INT64, nullable=False, queryable=True, description="1 to 100"),
)
_NOTIFICATION = (
    _p("NotificationEndpoint", STRING, description="http(s):// or mailto: URL told of the completion"),
    _p("NotificationEpUsername", STRING),
    _p("NotificationEpPassword", STRING, description="Never read back: ***** when set"),
)
_WORKFLOW_REFERENCE = (
    _p("WorkflowId", GUID, queryable=True),
    _p("WorkflowName", STRING, queryable=True),
    _p("WorkflowOptions", f"{NAMESPACE}.OptionValue", collection=True),
)

PRODUCT = EntityType("Product", (
    _p("Id", GUID, nullable=False, queryable=True),
    _p("Name", STRING, queryable=True, description="The product's identifier, or its file name once made"),
    _p("ContentType", STRING),
    _p("ContentLength", INT64, queryable=True),
    _p("Status", JOB_STATUS, queryable=True),
    _p("StatusMessage", STRING),
    _p("EvictionDate", DATE_TIME, queryable=True),
))
WORKFLOW = EntityType("Workflow", (
    _p("Id", GUID, nullable=False, queryable=True),
    _p("Name", STRING, nullable=False, queryable=True),
    _p("DisplayName", STRING),
    _p("Description", STRING),
    _p("InputProductType", STRING, queryable=True),
    _p("OutputProductType", STRING, queryable=True),
    _p("WorkflowVersion", STRING),
    _p("WorkflowOptions", f"{NAMESPACE}.WorkflowOption", collection=True),
))
PRODUCTION_ORDER = EntityType("ProductionOrder", (
    *_ORDER_COMMON,
    _p("OrderOutputSize", INT64, queryable=True, computed=True),
    _p("InputProductReference", f"{NAMESPACE}.InputProductReference"),
    *_WORKFLOW_REFERENCE,
    *_NOTIFICATION,
), (Navigation("Product", PRODUCT.qualified),))
ORDER = EntityType("Order", (
    *_ORDER_COMMON,
    _p("OrderSize", INT64, queryable=True, computed=True),
    *_NOTIFICATION,
), (Navigation("Product", PRODUCT.qualified),))
BATCH_ORDER = EntityType("BatchOrder", (
    *_ORDER_COMMON,
    _p("OrderSize", INT64, queryable=True, computed=True),
    _p("BatchSize", INT64),
    _p("ProductCount", INT64, queryable=True, computed=True),
    *_WORKFLOW_REFERENCE,
    *_NOTIFICATION,
), (Navigation("Products", PRODUCT.qualified, collection=True),))

ENUMS = (JOB_STATUS_TYPE,)
COMPLEX_TYPES = (TIME_RANGE, INPUT_PRODUCT_REFERENCE, OPTION_VALUE, WORKFLOW_OPTION)
ENTITY_TYPES = (PRODUCTION_ORDER, ORDER, BATCH_ORDER, WORKFLOW, PRODUCT)
ENTITY_SETS = (
    EntitySet("ProductionOrders", PRODUCTION_ORDER),
    EntitySet("Orders", ORDER),
    EntitySet("BatchOrders", BATCH_ORDER),
    EntitySet("Workflows", WORKFLOW),
    EntitySet("Products", PRODUCT),
)


def _parameters(entity: EntityType, *names: str) -> tuple[Parameter, ...]:
    """An action's parameters that are ``entity``'s properties of those names."""
    found = []
    for name in names:
        p = entity.field(name)
        assert p is not None, name  # (a typo here is caught at import)
        found.append(Parameter(p.name, p.type, collection=p.collection))
    return tuple(found)


_NOTIFICATION_NAMES = tuple(p.name for p in _NOTIFICATION)
_WORKFLOW_NAMES = tuple(p.name for p in _WORKFLOW_REFERENCE)
# The fields of an order's POST (requests.py reads exactly these).
PRODUCTION_ORDER_PARAMETERS = _parameters(PRODUCTION_ORDER, "Name", "Priority", "InputProductReference",
                                          *_WORKFLOW_NAMES, *_NOTIFICATION_NAMES)
PRODUCT_ORDER_PARAMETERS = _parameters(ORDER, "Name", "Priority", *_NOTIFICATION_NAMES)
BATCH_ORDER_PARAMETERS = (*_parameters(BATCH_ORDER, "Name", "Priority", *_WORKFLOW_NAMES),
                          Parameter("IdentifierList", STRING, nullable=False, collection=True),
                          *_parameters(BATCH_ORDER, "BatchSize", *_NOTIFICATION_NAMES))
ACTIONS = (
    # ODIP/CDSE: POST /ProductionOrder/OData.CSC.Order with the order's fields
    # (also POST /ProductionOrders with them, as ODIP creates an entity).
    Action("Order", PRODUCTION_ORDER.qualified, True, PRODUCTION_ORDER.qualified, PRODUCTION_ORDER_PARAMETERS),
    # LTA: POST /Products(<identifier>)/OData.CSC.Order {"Priority": 50, Notification...}.
    Action("Order", PRODUCT.qualified, False, ORDER.qualified, PRODUCT_ORDER_PARAMETERS),
    # CDSE: POST /BatchOrder/OData.CSC.Order {IdentifierList, BatchSize, Workflow..., ...}.
    Action("Order", BATCH_ORDER.qualified, True, BATCH_ORDER.qualified, BATCH_ORDER_PARAMETERS),
    Action("Cancel", PRODUCTION_ORDER.qualified, False, PRODUCTION_ORDER.qualified),
    Action("Cancel", ORDER.qualified, False, ORDER.qualified),
    Action("Cancel", BATCH_ORDER.qualified, False, BATCH_ORDER.qualified),
)


def entity_set(name: str) -> EntitySet | None:
    for s in ENTITY_SETS:
        if s.name == name:
            return s
    return None
