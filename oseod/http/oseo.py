"""``/oseo``: the OSEO endpoint. A thin shell: unwrap the message, find out who
calls, run the operation, answer in the form the request came in."""

from __future__ import annotations

import contextlib
import io
import os
from typing import BinaryIO

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import DeferredSemaphore
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ..auth.tokens import login_with_token
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.accounts import Account
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.logins import Client, LockedOut
from ..oseo import soap
from ..oseo.capabilities import negotiate, parse_get_capabilities_kvp
from ..oseo.errors import ExceptionCode, OseoError
from ..oseo.kvp import requested_operation
from ..oseo.security import parse_username_token
from ..oseo.wsdl import WsdlDocuments
from ..oseo.xmlparse import XmlLimits
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .capabilities import CapabilitiesPresenter
from .credentials import CHALLENGE, BadCredentials, request_account, too_many_requests
from .operations import OFF_THREAD_BYTES, OseoCall, OseoOperations

# The operations a query string may run (the others need an XML body).
KVP_OPERATIONS = ("GetCapabilities",)

# A body over TURN_BYTES may build a tree of megabytes (up to the XML limits,
# some 20 MB), held until its sender is known: such bodies take turns, at most
# LARGE_PARSES at a time from the start of parsing to the end of
# authentication, so however many arrive at once, by whomever, they cost that
# many trees; the others wait (holding only their body, spooled to a file
# past 100 KB) while smaller requests go on. Over OFF_THREAD_BYTES a body is
# parsed in the thread pool, read in chunks from its file, never whole.
LARGE_PARSES = 2
TURN_BYTES = 64 * 1024


class LockedOutError(OseoError):
    """AuthenticationFailed for a locked-out user name or address: HTTP 429
    with Retry-After, the fault's text saying for how long."""

    def __init__(self, locked: LockedOut) -> None:
        super().__init__(ExceptionCode.AuthenticationFailed, "identity_token", str(locked))
        self.locked = locked


class StoreUnavailableError(OseoError):
    """Redis is away: a Receiver fault (NoApplicableCode: OWS and OSEO have
    no code for "try again later"), HTTP 503 with Retry-After. The request
    is not to blame, and may be sent again as it is."""

    def __init__(self) -> None:
        super().__init__(ExceptionCode.NoApplicableCode, None, UNAVAILABLE_TEXT, sender=False)


def http_status(error: OseoError) -> int:
    if isinstance(error, StoreUnavailableError):
        return 503
    if not error.sender:
        return 500
    if isinstance(error, LockedOutError):
        return 429
    if error.code is ExceptionCode.AuthenticationFailed:
        return 401
    if error.code is ExceptionCode.AuthorizationFailed:
        return 403
    return 400


class OseoEndpoint:
    log = Logger()

    def __init__(self, *, portal: Portal, operations: OseoOperations, capabilities: CapabilitiesPresenter,
                 metrics: RequestMetrics, clock: IDaemonReactor, threads: ThreadPools, public_url: str,
                 anonymous_capabilities: bool, clients: ClientAddresses = ClientAddresses(),
                 max_items_per_order: int = 200) -> None:
        self._portal = portal
        self._threads = threads
        self._operations = operations
        self._capabilities = capabilities
        self._metrics = metrics
        self._clock = clock
        self._public_url = public_url
        self._anonymous_capabilities = anonymous_capabilities
        self._wsdl = WsdlDocuments()
        self._clients = clients
        self._xml_limits = XmlLimits.for_orders_of(max_items_per_order)
        self._large_parses = DeferredSemaphore(LARGE_PARSES)

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations served, as advertised in OperationsMetadata."""
        return self._operations.served

    def endpoint_url(self, request: IRequest) -> str:
        if self._public_url:
            return self._public_url
        scheme = "https" if self._clients.is_secure(request) else "http"
        host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
        return f"{scheme}://{host}/oseo"

    async def post(self, request: IRequest) -> bytes:
        started = self._clock.seconds()
        content_type = _header(request, b"content-type")
        soap_action = _header(request, b"soapaction")
        encoding = soap.guess_encoding(content_type)
        operation, account = "unknown", None
        try:
            size = _size(request.content)
            received = _take(request.content, size)
            try:
                async with self._large_parses if size > TURN_BYTES else contextlib.nullcontext():
                    message = await self._unwrap(received, content_type, soap_action)
                    encoding = message.encoding
                    operation = soap.body_operation(message.payload, self._operations.handlers)
                    account = await self._account(request, operation, message)
            finally:
                if not isinstance(received, bytes):
                    received.close()
            call = OseoCall(message, account, lambda: self.endpoint_url(request), size)
            body = await self._operations.run(operation, call)
        except Exception as e:
            return self._fail(request, encoding, operation, account, started, e)
        return self._succeed(request, encoding, operation, account, started, body)

    async def get(self, request: IRequest) -> bytes:
        """KVP: ``GET /oseo?service=OS&request=GetCapabilities``, bare XML;
        ``GET /oseo?wsdl``: this server's WSDL."""
        started = self._clock.seconds()
        encoding = soap.Encoding.BARE
        params = {k.decode("latin-1"): v[-1].decode("utf-8", "replace") for k, v in request.args.items() if v}
        if _asks_for_wsdl(request):
            return self._describe(request, started)
        operation, account = "unknown", None
        try:
            operation = requested_operation(params, served=self.operations, over_get=KVP_OPERATIONS,
                                            known=soap.OSEO_OPERATIONS)
            account = await self._account(request, operation)
            get_capabilities = parse_get_capabilities_kvp(params)
            negotiate(get_capabilities)
            body = self._capabilities.render(encoding, account, self.endpoint_url(request), get_capabilities.sections,
                                             self.operations)
        except Exception as e:
            return self._fail(request, encoding, operation, account, started, e)
        return self._succeed(request, encoding, operation, account, started, body)

    def _describe(self, request: IRequest, started: float) -> bytes:
        """The WSDL, to anyone: it tells no more than the Capabilities' OperationsMetadata."""
        body = self._wsdl.render(self.endpoint_url(request), self.operations)
        request.setHeader(b"content-type", b"text/xml; charset=utf-8")
        self._metrics.record("http", "WSDL", "ok", self._clock.seconds() - started, None)
        return body


    async def _unwrap(self, body: bytes | BinaryIO, content_type: str | None, soap_action: str | None) -> soap.Message:
        """The message of a body: parsed here when in memory, from its file
        in the thread pool when large."""
        if isinstance(body, bytes):
            return soap.unwrap(body, content_type, soap_action, self._xml_limits)
        message: soap.Message = await self._threads.on_cpu(soap.unwrap, body, content_type, soap_action,
                                                           self._xml_limits)
        return message

    async def _account(self, request: IRequest, operation: str, message: soap.Message | None = None) -> Account | None:
        """The caller: a wsse:UsernameToken in the SOAP header, else HTTP Basic
        credentials or a bearer token, else nobody (only GetCapabilities may be anonymous)."""
        token = parse_username_token(message.headers) if message is not None else None
        try:
            if token is not None:
                account: Account | None = await login_with_token(
                    self._portal, token.username, token.password, token.digest, token.nonce, token.created,
                    Client(self._clients.of(request), "soap"),
                )
            else:
                account = await request_account(self._portal, request, Client(self._clients.of(request), "http"))
        except LockedOut as e:
            raise LockedOutError(e) from None
        except (BadCredentials, UnauthorizedLogin) as e:
            raise OseoError(ExceptionCode.AuthenticationFailed, "identity_token",
                            str(e) or "wrong user name or password") from None
        if account is None and not (operation == "GetCapabilities" and self._anonymous_capabilities):
            raise OseoError(ExceptionCode.AuthenticationFailed, "identity_token",
                            f"{operation} needs credentials")
        return account

    def _succeed(self, request: IRequest, encoding: soap.Encoding, operation: str, account: Account | None,
                 started: float, body: bytes) -> bytes:
        request.setHeader(b"content-type", soap.content_type(encoding).encode())
        self._metrics.record("http", operation, "ok", self._clock.seconds() - started,
                             account.name if account else None, self._clients.of(request))
        return body

    def _fail(self, request: IRequest, encoding: soap.Encoding, operation: str, account: Account | None,
              started: float, exc: Exception) -> bytes:
        if isinstance(exc, OseoError):
            error = exc
        elif isinstance(exc, RedisUnavailable):
            # Logged once for all requests by the store's RedisWatch.
            self.log.debug("{operation}: {error}", operation=operation, error=str(exc))
            error = StoreUnavailableError()
        else:
            self.log.failure("internal error in {operation}", operation=operation)
            error = OseoError.internal()
        status = http_status(error)
        request.setResponseCode(status)
        request.setHeader(b"content-type", soap.content_type(encoding).encode())
        if status == 401:
            request.setHeader(b"www-authenticate", CHALLENGE)
        if isinstance(error, LockedOutError):
            too_many_requests(request, error.locked)
        if isinstance(error, StoreUnavailableError):
            request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
        outcome = error.code.value if error.sender else (
            "Unavailable" if isinstance(error, StoreUnavailableError) else "InternalError")
        self._metrics.record("http", operation, outcome, self._clock.seconds() - started,
                             account.name if account else None, self._clients.of(request))
        return soap.fault(encoding, error)


def _asks_for_wsdl(request: IRequest) -> bool:
    """Whether the query names ``wsdl`` (any case), as toolkits ask: ``?wsdl``.
    Read from the raw URI: ``request.args`` drops a name without ``=``."""
    _, _, query = request.uri.partition(b"?")
    names = (item.partition(b"=")[0] for item in query.replace(b";", b"&").split(b"&"))
    return any(name.lower() == b"wsdl" for name in names)


def _size(content: BinaryIO | None) -> int:
    """The body's size, leaving it to be read from its start."""
    if content is None:
        return 0
    content.seek(0, os.SEEK_END)
    size = content.tell()
    content.seek(0)
    return size


def _take(content: BinaryIO | None, size: int) -> bytes | BinaryIO:
    """The body, taken before it may have to wait for a turn (Twisted closes
    the request's file when the client hangs up): read when small, else a
    handle of our own on the file Twisted spooled it to, to parse it from."""
    if content is None:
        return b""
    if size <= OFF_THREAD_BYTES:
        return content.read()
    try:
        return os.fdopen(os.dup(content.fileno()), "rb")
    except (AttributeError, io.UnsupportedOperation):
        return io.BytesIO(content.read())  # a large body held in memory (not by Twisted's Request)


def _header(request: IRequest, name: bytes) -> str | None:
    value = request.getHeader(name)
    return value.decode("latin-1") if value is not None else None
