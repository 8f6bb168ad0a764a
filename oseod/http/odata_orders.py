"""The OData operations: JSON in, ordering-core call, JSON out.

Glue only, as :mod:`.operations` is for OSEO: :mod:`oseod.odata` parses and
renders, the ordering core decides (the same checks, moderation, limits and
quotas as a SOAP Submit). Every order is read through the core's ``get``,
so another user's id and one that does not exist are answered alike (404)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from ..auth.secrets import SecretBox
from ..config import CollectionConfig, Config
from ..core.catalogue import Catalogue
from ..core.deliverables import Deliverables
from ..core.ordering import OrderingService
from ..model.accounts import Account
from ..model.errors import RequestRejected
from ..model.orders import Item, Notification, Order, OrderSpec, OrderType, ReadyItem
from ..odata import csdl, edm, entities, requests, workflows
from ..odata.errors import ODataError, bad_request, not_found
from ..odata.ids import item_matches, order_id_of, order_uuid, product_of
from ..odata.notification import sealed_name
from ..odata.query import parse_list_query
from ..odata.search import list_orders, next_link_query
from .result_access import ResultURLs, result_addresses

_RENDER = {"ProductionOrders": entities.production_order, "Orders": entities.lta_order,
           "BatchOrders": entities.batch_order}
_ENTITY = {"ProductionOrders": edm.PRODUCTION_ORDER, "Orders": edm.ORDER, "BatchOrders": edm.BATCH_ORDER}
# The order type of each set's orders (None: every order of the caller).
_ORDER_TYPE = {"ProductionOrders": None, "Orders": None, "BatchOrders": OrderType.MASSIVE_ORDER}


@attrs.frozen
class Site:
    """Where a request came in: the service root as the client reaches it
    (absolute: @odata.context, nextLink and Location build on it) and its
    query options."""

    root: str
    args: Mapping[str, str]

    def context(self, fragment: str) -> str:
        return f"{self.root}/$metadata#{fragment}"


@attrs.frozen
class Reply:
    """What an operation answers; the shell adds OData's headers."""

    body: bytes
    status: int = 200
    location: str | None = None
    content_type: bytes | None = None  # None: OData JSON


class ODataOrders:
    def __init__(self, *, ordering: OrderingService, catalogue: Catalogue, deliverables: Deliverables,
                 result_urls: ResultURLs, config: Config, version: str, secrets: SecretBox | None = None) -> None:
        """``secrets``: seals the NotificationEpPassword of the orders (None:
        an order giving one is refused: there is nowhere to keep it)."""
        self._ordering = ordering
        self._catalogue = catalogue
        self._deliverables = deliverables
        self._result_urls = result_urls
        self._config = config
        self._version = version
        self._secrets = secrets
        self._keep_days = config.orders.item_availability_days

    # ------------------------------------------------------------ the service

    async def service_document(self, site: Site) -> Reply:
        return Reply(csdl.service_document(site.root))

    async def metadata(self) -> Reply:
        return Reply(csdl.metadata_xml(), content_type=b"application/xml")

    async def workflows(self, user: Account, site: Site) -> Reply:
        """The caller's Workflows (a few: filtered, ordered and paged here)."""
        query = parse_list_query(site.args, edm.WORKFLOW, page_size=self._config.odata.page_size)
        if query.skiptoken is not None:
            raise bad_request("$skiptoken", "Workflows come in one page")
        rows = [row for row in workflows.workflows_of(self._catalogue.visible_to(user), self._version)
                if query.matches(row)]
        for key in reversed(query.orderby):
            rows.sort(key=lambda row: (row[key.name] is not None, row[key.name]), reverse=key.descending)
        count = len(rows) if query.count else None
        rows = rows[query.skip:][:query.top if query.top is not None else len(rows)]
        return Reply(entities.collection_body(site.context("Workflows"), self._selected(rows, query.select), count))

    async def workflow(self, user: Account, site: Site, key: str) -> Reply:
        """One Workflow, by Id (or by Name)."""
        visible = self._catalogue.visible_to(user)
        collection = workflows.find_workflow(visible, id=key) or workflows.find_workflow(visible, name=key)
        if collection is None:
            raise not_found("Id", f"you have no workflow {key[:80]!r}")
        row = workflows.workflow(collection, self._version)
        return Reply(entities.entity_body(site.context("Workflows/$entity"), row))

    # ------------------------------------------------------------ orders

    async def create_production_order(self, user: Account, site: Site, body: bytes) -> Reply:
        request = requests.parse_production_order(body)
        collection = self._workflow(user, request.workflow_name, request.workflow_id)
        order = await self._submit(user, requests.order_spec(request, collection), request)
        return self._created(site, "ProductionOrders", order)

    async def create_batch_order(self, user: Account, site: Site, body: bytes) -> Reply:
        request = requests.parse_batch_order(body)
        collection = self._workflow(user, request.workflow_name, request.workflow_id)
        order = await self._submit(user, requests.order_spec(request, collection), request)
        return self._created(site, "BatchOrders", order)

    async def create_product_order(self, user: Account, site: Site, identifier: str, body: bytes) -> Reply:
        """LTA: order product ``identifier`` from the collection it belongs
        to (the core's rule: [[collection]] identifier_prefixes), default options."""
        request = requests.parse_product_order(body, identifier)
        collection_id = self._ordering.checker.resolve(identifier)
        collection = next((c for c in self._catalogue.visible_to(user) if c.id == collection_id), None)
        if collection is None:
            raise not_found("Products", f"no collection offered to you holds product {identifier[:200]!r}")
        order = await self._submit(user, requests.order_spec(request, collection), request)
        return self._created(site, "Orders", order)

    def _workflow(self, user: Account, name: str | None, id: str | None) -> CollectionConfig:
        collection = workflows.find_workflow(self._catalogue.visible_to(user), name=name, id=id)
        if collection is None:
            target, value = ("WorkflowName", name) if name is not None else ("WorkflowId", id)
            raise bad_request(target, f"you have no workflow {str(value)[:80]!r}: GET Workflows lists yours")
        return collection

    async def _submit(self, user: Account, spec: OrderSpec, request: requests.OrderRequest) -> Order:
        return await self._ordering.submit(user, spec, requests.notification_of(request, self._sealer(user)))

    def _sealer(self, user: Account) -> Callable[[str, str], str]:
        """Seals a NotificationEpPassword for this user and endpoint (the
        outbox unseals it with the same names)."""
        def seal(endpoint: str, password: str) -> str:
            if self._secrets is None:
                raise bad_request("NotificationEpPassword", "this server keeps no passwords for notifications")
            return self._secrets.seal(sealed_name(user.name), endpoint, password)
        return seal

    def _created(self, site: Site, set_name: str, order: Order) -> Reply:
        row = _RENDER[set_name](order, keep_days=self._keep_days)
        return Reply(entities.entity_body(site.context(f"{set_name}/$entity"), row), status=201,
                     location=f"{site.root}/{set_name}({order_uuid(order.order_id)})")

    async def get(self, user: Account, site: Site, set_name: str, key: str) -> Reply:
        order = await self._order(user, set_name, key)
        return Reply(self._entity(site, set_name, order))

    async def list_orders(self, user: Account, site: Site, set_name: str) -> Reply:
        """A page of the caller's orders as ``set_name`` shows them: $filter,
        $orderby, $top, $skip, $count, $select; the rest by @odata.nextLink."""
        query = parse_list_query(site.args, _ENTITY[set_name], page_size=self._config.odata.page_size)
        render = _RENDER[set_name]
        page = await list_orders(self._ordering, user, query, order_type=_ORDER_TYPE[set_name],
                                 render=lambda order: render(order, keep_days=self._keep_days),
                                 budget=self._config.odata.search_budget)
        next_link = None
        if page.next_token is not None:
            next_link = f"{site.root}/{set_name}?" + next_link_query(site.args, page.next_token)
        return Reply(entities.collection_body(site.context(set_name), self._selected(page.rows, query.select),
                                              page.count, next_link))

    async def cancel(self, user: Account, site: Site, set_name: str, key: str) -> Reply:
        """Cancel: 409 for an order already final (the entity shows how it ended)."""
        order = await self._order(user, set_name, key)
        if order.status.status.is_final:
            raise _conflict(order)
        try:
            order = await self._ordering.cancel(user, order.order_id, Notification())
        except RequestRejected as e:
            if e.code == "InvalidParameterValue" and e.locator == "orderId":  # it ended meanwhile
                raise _conflict(await self._ordering.get(user, order.order_id)) from None
            raise
        return Reply(self._entity(site, set_name, order))

    async def product(self, user: Account, site: Site, set_name: str, key: str) -> Reply:
        """The order's (first) item as a Product, once its result is ready."""
        order = await self._order(user, set_name, key)
        ready = self._ready_first(order)
        rows = entities.products(order, [ready], keep_days=self._keep_days,
                                 files=await self._files(user, order, [ready]))
        return Reply(entities.entity_body(site.context(f"{set_name}({order_uuid(order.order_id)})/Product/$entity"),
                                          rows[0]))

    async def product_value(self, user: Account, site: Site, set_name: str, key: str) -> Reply:
        """307 to the HTTP download of the result: the /results/... address
        DescribeResultAccess gives (the download counts there)."""
        order = await self._order(user, set_name, key)
        ready = self._ready_first(order)
        url, = await result_addresses(self._deliverables, self._result_urls, user.name, order.order_id, [ready],
                                      protocol="http")
        return Reply(b"", status=307, location=url)

    async def product_by_id(self, user: Account, site: Site, key: str) -> Reply:
        """``Products(<Id>)``: one Product by the Id its order's rows gave."""
        order, item, ready = await self._product(user, key)
        files = await self._files(user, order, [ready]) if ready is not None else {}
        row = entities.product(order, item, ready, keep_days=self._keep_days, file=files.get(item.spec.item_id))
        return Reply(entities.entity_body(site.context("Products/$entity"), row))

    async def product_by_id_value(self, user: Account, site: Site, key: str) -> Reply:
        """``Products(<Id>)/$value``, the LTA download: 307 to the result's
        /results/... address, as ``Orders(<Id>)/Product/$value``."""
        order, item, ready = await self._product(user, key)
        if ready is None:
            raise not_found("Product", f"product {key[:80]!r} is not available: it is {item.status.status.value}")
        url, = await result_addresses(self._deliverables, self._result_urls, user.name, order.order_id, [ready],
                                      protocol="http")
        return Reply(b"", status=307, location=url)

    async def _product(self, user: Account, key: str) -> tuple[Order, Item, ReadyItem | None]:
        """The caller's order and item a Product Id names, and the item's
        result when online; 404 alike for another user's and for none."""
        found = product_of(key)
        refusal = not_found("Id", f"you have no product {key[:80]!r}")
        if found is None:
            raise refusal
        order_id, item_hash = found
        try:
            order = await self._order(user, "Orders", order_id)
        except ODataError:
            raise refusal from None
        for item in order.items:
            if item_matches(item.spec.item_id, item_hash):
                ready = [r for r in self._ordering.ready_in(order) if r.item.spec.item_id == item.spec.item_id]
                return order, item, ready[0] if ready else None
        raise refusal

    async def batch_products(self, user: Account, site: Site, key: str) -> Reply:
        order = await self._order(user, "BatchOrders", key)
        ready = self._ordering.ready_in(order)
        rows = entities.products(order, ready, keep_days=self._keep_days,
                                 files=await self._files(user, order, ready))
        context = site.context(f"BatchOrders({order_uuid(order.order_id)})/Products")
        return Reply(entities.collection_body(context, rows, None))

    # ------------------------------------------------------------ helpers

    async def _order(self, user: Account, set_name: str, key: str) -> Order:
        order_id = order_id_of(key)
        if order_id is None:
            raise not_found("Id", f"you have no order {key[:80]!r}")
        try:
            order = await self._ordering.get(user, order_id)
        except RequestRejected as e:
            if e.code == "InvalidOrderIdentifier":
                raise not_found("Id", e.text) from None
            raise
        wanted = _ORDER_TYPE[set_name]
        if wanted is not None and order.spec.order_type is not wanted:
            raise not_found("Id", f"order {key[:80]!r} is not a batch order")
        return order

    def _entity(self, site: Site, set_name: str, order: Order) -> bytes:
        row = _RENDER[set_name](order, keep_days=self._keep_days)
        select = site.args.get("$select")
        if select:
            row = entities.select(row, _select(select, _ENTITY[set_name]))
        return entities.entity_body(site.context(f"{set_name}/$entity"), row)

    def _ready_first(self, order: Order) -> ReadyItem:
        """The result of the order's first item, when online; else 404 saying how the order stands."""
        first = order.items[0].spec.item_id if order.items else None
        for ready in self._ordering.ready_in(order):
            if ready.item.spec.item_id == first:
                return ready
        raise not_found("Product", f"the order's product is not available: the order is "
                                   f"{order.status.status.value}")

    async def _files(self, user: Account, order: Order, ready: Sequence[ReadyItem]) -> dict[str, tuple[str, int]]:
        """Item id -> (file name, size) of the ready items made of one file."""
        listings = await self._deliverables.listings(user.name, order.order_id,
                                                     [r.item.spec.item_id for r in ready if r.package is None])
        return {item_id: (files[0].name, files[0].size) for item_id, files in listings.items() if len(files) == 1}

    @staticmethod
    def _selected(rows: Sequence[entities.Row], names: Sequence[str] | None) -> list[entities.Row]:
        return [entities.select(r, names) for r in rows] if names else list(rows)


def _select(text: str, entity: edm.EntityType) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    for name in names:
        if name != "*" and entity.field(name) is None:
            raise bad_request("$select", f"{entity.name} has no property {name[:80]!r}")
    return entity.names if "*" in names else names


def _conflict(order: Order) -> ODataError:
    return ODataError("Conflict", f"order {order_uuid(order.order_id)} is already {order.status.status.value}: "
                                  f"only an unfinished order can be cancelled", "Id", 409)
