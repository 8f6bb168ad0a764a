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

from ..auth.account import Account
from ..core.ordering import OrderingService
from ..model.errors import RequestRejected
from ..model.orders import Notification, StatusNotification
from ..oseo import soap
from ..oseo.cancel import parse_cancel, render_cancel_ack
from ..oseo.capabilities import negotiate, parse_get_capabilities
from ..oseo.errors import ExceptionCode, OseoError
from ..oseo.options import parse_get_options, render_get_options_response
from ..oseo.results import ItemURL, parse_describe_result_access, render_describe_result_access_response
from ..oseo.security import parse_addressing
from ..oseo.status import parse_get_status
from ..oseo.submit import parse_submit, render_submit_ack
from .capabilities import CapabilitiesPresenter
from .options import OptionsPresenter
from .status import StatusPresenter


@attrs.frozen
class OseoCall:
    """One decoded request, as the operation handlers see it."""

    message: soap.Message
    account: Account | None
    endpoint_url: str

    @property
    def user(self) -> Account:
        # The endpoint lets only GetCapabilities through without an account.
        assert self.account is not None
        return self.account


Handler = Callable[[OseoCall], Awaitable[bytes]]

# Every request operation of OSEO 1.0; those without a handler are answered
# with OperationNotSupported, so a client learns what it can rely on.
OSEO_OPERATIONS = ("GetCapabilities", "GetOptions", "GetQuotation", "Submit", "GetStatus",
                   "DescribeResultAccess", "Cancel")


def _answer(call: OseoCall, payload: etree._Element) -> bytes:
    return soap.wrap(call.message.encoding, payload)


def _notification(call: OseoCall, mode: StatusNotification) -> Notification:
    addressing = parse_addressing(call.message.headers)
    soap_version = {soap.Encoding.SOAP12: "1.2", soap.Encoding.SOAP11: "1.1"}.get(call.message.encoding)
    return Notification(mode=mode, reply_to=addressing.reply_to, message_id=addressing.message_id,
                        soap_version=soap_version)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


class OseoOperations:
    def __init__(self, *, ordering: OrderingService, capabilities: CapabilitiesPresenter,
                 options: OptionsPresenter, result_urls: Callable[[str, str, str], str],
                 status: StatusPresenter | None = None) -> None:
        self._ordering = ordering
        self._capabilities = capabilities
        self._options = options
        self._status = status or StatusPresenter()
        self._result_urls = result_urls
        self.handlers: dict[str, Handler] = {
            "GetCapabilities": self.get_capabilities,
            "GetOptions": self.get_options,
            "Submit": self.submit,
            "GetStatus": self.get_status,
            "DescribeResultAccess": self.describe_result_access,
            "Cancel": self.cancel,
        }

    @property
    def served(self) -> tuple[str, ...]:
        """The operations with a handler, in the standard's order (OperationsMetadata)."""
        return tuple(op for op in OSEO_OPERATIONS if op in self.handlers)

    async def run(self, operation: str, call: OseoCall) -> bytes:
        try:
            return await self.handlers[operation](call)
        except RequestRejected as e:
            raise OseoError(ExceptionCode(e.code), e.locator, e.text) from None

    async def get_capabilities(self, call: OseoCall) -> bytes:
        request = parse_get_capabilities(call.message.payload)
        negotiate(request)
        return self._capabilities.render(call.message.encoding, call.account, call.endpoint_url,
                                         request.sections, self.served)

    async def get_options(self, call: OseoCall) -> bytes:
        request = parse_get_options(call.message.payload)
        if request.tasking_request_id is not None:
            raise OseoError(ExceptionCode.OperationNotSupported, "taskingRequestId",
                            "options of tasking requests are not supported: this server offers no programming")
        option_sets = self._options.option_sets(call.user, request.collection_id, request.identifiers)
        return _answer(call, render_get_options_response(option_sets))

    async def submit(self, call: OseoCall) -> bytes:
        request = parse_submit(call.message.payload)
        if request.spec is None:
            raise OseoError(ExceptionCode.InvalidParameterValue, "quotationId",
                            "ordering by quotationId is not supported: send an orderSpecification")
        order = await self._ordering.submit(call.user, request.spec,
                                            _notification(call, request.status_notification))
        return _answer(call, render_submit_ack(order.order_id, order.spec.reference))

    async def get_status(self, call: OseoCall) -> bytes:
        request = parse_get_status(call.message.payload)
        if request.order_id is not None:
            orders = [await self._ordering.get(call.user, request.order_id)]
        else:
            criteria = request.criteria
            assert criteria is not None
            orders = await self._ordering.search(call.user, _epoch(criteria.last_update),
                                                 _epoch(criteria.last_update_end), criteria.statuses,
                                                 criteria.reference)
        return self._status.render(call.message.encoding, orders, request.full)

    async def describe_result_access(self, call: OseoCall) -> bytes:
        request = parse_describe_result_access(call.message.payload)
        ready = await self._ordering.ready_items(call.user, request.order_id, request.next_ready)
        urls = [
            ItemURL(item_id=item.spec.item_id, product_id=item.spec.product_id,
                    url=self._result_urls(protocol, request.order_id, item.spec.item_id),
                    expiration=datetime.fromtimestamp(expires, timezone.utc))
            for item, protocol, expires in ready
        ]
        return _answer(call, render_describe_result_access_response(urls))

    async def cancel(self, call: OseoCall) -> bytes:
        request = parse_cancel(call.message.payload)
        await self._ordering.cancel(call.user, request.order_id, _notification(call, request.status_notification))
        return _answer(call, render_cancel_ack())


