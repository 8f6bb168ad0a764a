"""The OSEO operations: decoded request in, core call, rendered answer out.

Each handler is glue only: the oseo vocabulary parses and renders, the
ordering core decides. A core refusal (RequestRejected) becomes the OSEO
fault it names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import attrs
from lxml import etree
from twisted.internet.interfaces import IReactorThreads

from ..core.deliverables import Deliverables
from ..core.ordering import OrderingService
from ..core.quotations import QuotationService
from ..model.accounts import Account
from ..model.errors import RequestRejected
from ..model.orders import Notification, StatusNotification
from ..oseo import soap
from ..oseo.cancel import CancelRequest, parse_cancel, render_cancel_ack
from ..oseo.capabilities import GetCapabilitiesRequest, negotiate, parse_get_capabilities
from ..oseo.errors import ExceptionCode, OseoError
from ..oseo.options import GetOptionsRequest, parse_get_options, render_get_options_response
from ..oseo.quotation import GetQuotationRequest, parse_get_quotation, render_get_quotation_ack
from ..oseo.results import (
    DescribeResultAccessRequest,
    ItemURL,
    parse_describe_result_access,
    render_describe_result_access_response,
)
from ..oseo.security import parse_addressing
from ..oseo.status import GetStatusRequest, parse_get_status
from ..oseo.submit import SubmitRequest, parse_submit, render_submit_ack
from ..core.deliverables import Deliverables
from ..threads import ThreadPools
from .capabilities import CapabilitiesPresenter
from .options import OptionsPresenter
from .result_access import ResultURLs, result_addresses
from .status import StatusPresenter


# Bodies bigger than this are parsed in the reactor's thread pool: parsing a
# Submit of several megabytes (hundreds of thousands of elements) takes
# seconds, which on the reactor thread would stall every other client.
OFF_THREAD_BYTES = 512 * 1024


@attrs.frozen
class OseoCall:
    """One decoded request, as the operation handlers see it."""

    message: soap.Message
    account: Account | None
    # Where the client reached /oseo, worked out only for the operations that
    # say it (GetCapabilities): it reads the request's host and transport.
    endpoint: Callable[[], str]
    body_size: int = 0

    @property
    def endpoint_url(self) -> str:
        return self.endpoint()

    @property
    def user(self) -> Account:
        # The endpoint lets only GetCapabilities through without an account.
        assert self.account is not None
        return self.account


Handler = Callable[[OseoCall, Any], Awaitable[bytes]]



def _answer(call: OseoCall, payload: etree._Element) -> bytes:
    return soap.wrap(call.message.encoding, payload)


def _notification(call: OseoCall, mode: StatusNotification = StatusNotification.NONE) -> Notification:
    addressing = parse_addressing(call.message.headers)
    soap_version = {soap.Encoding.SOAP12: "1.2", soap.Encoding.SOAP11: "1.1"}.get(call.message.encoding)
    return Notification(mode=mode, reply_to=addressing.reply_to, message_id=addressing.message_id,
                        soap_version=soap_version)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


class OseoOperations:
    def __init__(self, *, ordering: OrderingService, capabilities: CapabilitiesPresenter,
                 options: OptionsPresenter, result_urls: ResultURLs,
                 deliverables: Deliverables, reactor: IReactorThreads, threads: ThreadPools,
                 status: StatusPresenter | None = None, quotations: QuotationService | None = None) -> None:
        self._deliverables = deliverables
        self._reactor = reactor
        self._threads = threads
        self._ordering = ordering
        self._capabilities = capabilities
        self._options = options
        self._status = status or StatusPresenter()
        self._result_urls = result_urls
        # None, or [quotation] mode "off": no GetQuotation, no Submit by quotationId.
        self._quotations = quotations if quotations is not None and quotations.mode != "off" else None
        # Per operation: how its request is parsed (pure), then handled.
        self.handlers: dict[str, tuple[Callable[[etree._Element], Any], Handler]] = {
            "GetCapabilities": (parse_get_capabilities, self.get_capabilities),
            "GetOptions": (parse_get_options, self.get_options),
            "Submit": (parse_submit, self.submit),
            "GetStatus": (parse_get_status, self.get_status),
            "DescribeResultAccess": (parse_describe_result_access, self.describe_result_access),
            "Cancel": (parse_cancel, self.cancel),
        }
        if self._quotations is not None:
            self.handlers["GetQuotation"] = (parse_get_quotation, self.get_quotation)

    @property
    def served(self) -> tuple[str, ...]:
        """The operations with a handler, in the standard's order (OperationsMetadata)."""
        return tuple(op for op in soap.OSEO_OPERATIONS if op in self.handlers)

    async def run(self, operation: str, call: OseoCall) -> bytes:
        parse, handle = self.handlers[operation]
        if call.body_size > OFF_THREAD_BYTES:
            request = await self._threads.on_cpu(parse, call.message.payload)
        else:
            request = parse(call.message.payload)
        try:
            return await handle(call, request)
        except RequestRejected as e:
            raise OseoError(ExceptionCode(e.code), e.locator, e.text) from None

    async def get_capabilities(self, call: OseoCall, request: GetCapabilitiesRequest) -> bytes:
        negotiate(request)
        return self._capabilities.render(call.message.encoding, call.account, call.endpoint_url,
                                         request.sections, self.served)

    async def get_options(self, call: OseoCall, request: GetOptionsRequest) -> bytes:
        if request.tasking_request_id is not None:
            raise OseoError(ExceptionCode.OperationNotSupported, "taskingRequestId",
                            "options of tasking requests are not supported: this server offers no programming")
        option_sets = self._options.option_sets(call.user, request.collection_id, request.identifiers)
        return _answer(call, render_get_options_response(option_sets))

    async def submit(self, call: OseoCall, request: SubmitRequest) -> bytes:
        notification = _notification(call, request.status_notification)
        if request.spec is not None:
            order = await self._ordering.submit(call.user, request.spec, notification)
        elif self._quotations is not None and request.quotation_id is not None:
            order = await self._quotations.order(call.user, request.quotation_id, notification)
        else:
            raise OseoError(ExceptionCode.InvalidParameterValue, "quotationId",
                            "ordering by quotationId is not supported: send an orderSpecification")
        return _answer(call, render_submit_ack(order.order_id, order.spec.reference))

    async def get_quotation(self, call: OseoCall, request: GetQuotationRequest) -> bytes:
        """[quotation] mode: synchronous, the Ack carries the quotation;
        monitoring, its quotationId (a GetQuotation with it answers the
        quotation); asynchronous, its quotationId, the quotation following
        as a GetQuotationResponse call-back to wsa:ReplyTo."""
        quotations = self._quotations
        assert quotations is not None  # the handler is only registered then
        if request.quotation_id is not None:
            found = await quotations.find(call.user, request.quotation_id)
            return _answer(call, render_get_quotation_ack(quotation=found))
        assert request.spec is not None
        if quotations.mode == "asynchronous":
            quotation = await quotations.quote(call.user, request.spec, reply=_notification(call))
            return _answer(call, render_get_quotation_ack(quotation_id=quotation.quotation_id))
        quotation = await quotations.quote(call.user, request.spec)
        if quotations.mode == "monitoring":
            return _answer(call, render_get_quotation_ack(quotation_id=quotation.quotation_id))
        return _answer(call, render_get_quotation_ack(quotation=quotation))

    async def get_status(self, call: OseoCall, request: GetStatusRequest) -> bytes:
        if request.order_id is not None:
            orders = [await self._ordering.get(call.user, request.order_id)]
        else:
            criteria = request.criteria
            assert criteria is not None
            orders = await self._ordering.search(call.user, _epoch(criteria.last_update),
                                                 _epoch(criteria.last_update_end), criteria.statuses,
                                                 criteria.reference)
        return self._status.render(call.message.encoding, orders, request.full)

    async def describe_result_access(self, call: OseoCall, request: DescribeResultAccessRequest) -> bytes:
        ready = await self._ordering.describe_result_access(
            call.user, request.order_id, next_ready=request.next_ready,
            since=request.since.timestamp() if request.since is not None else None)
        addresses = await result_addresses(self._deliverables, self._result_urls, call.user.name, request.order_id,
                                           ready)
        urls = [ItemURL(item_id=r.item.spec.item_id, product_id=r.item.spec.product_id, url=url,
                        expiration=datetime.fromtimestamp(r.expires_at, timezone.utc))
                for r, url in zip(ready, addresses)]
        return _answer(call, render_describe_result_access_response(urls))

    async def cancel(self, call: OseoCall, request: CancelRequest) -> bytes:
        await self._ordering.cancel(call.user, request.order_id, _notification(call, request.status_notification))
        return _answer(call, render_cancel_ack())


