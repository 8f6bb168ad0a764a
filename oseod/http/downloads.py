"""HTTP downloads of results: ``/results/<order>/<item>/`` (a listing),
``/results/<order>/<item>/<file>`` and, with packaging,
``/results/<order>/<package>``, for the order's owner, with HTTP Basic or a bearer token
through the one Portal. The file is answered by :class:`.files.SentFile`
(HEAD, Range requests and 206; the body with ``os.sendfile`` on plain TCP).
A GET that sent a whole file counts as a complete download (a Range, even a
resumed one, does not)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from ..answers import error_answer
from ..core.deliverables import Deliverables, NotDeliverable, log_transfer
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.accounts import Account
from ..model.errors import RedisUnavailable, RequestRejected
from ..model.logins import Client, LockedOut
from ..threads import ThreadPools
from .credentials import CHALLENGE, BadCredentials, request_account, too_many_requests
from .files import SentFile


class Refused(Exception):
    def __init__(self, status: int, reason: str, locked: LockedOut | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.locked = locked


class Downloads:
    log = Logger()

    def __init__(self, *, portal: Portal, deliverables: Deliverables, metrics: RequestMetrics, clock: IReactorTime,
                 threads: ThreadPools, clients: ClientAddresses = ClientAddresses()) -> None:
        self._portal = portal
        self._threads = threads
        self._clients = clients
        self._deliverables = deliverables
        self._metrics = metrics
        self._clock = clock

    async def listing(self, request: IRequest, order_id: str, item_id: str) -> bytes:
        started = self._clock.seconds()
        try:
            account = await self._account(request)
            files = await self._files(account, order_id, item_id)
        except Refused as e:
            return self._refuse(request, e, started)
        rows = "".join(f'<li><a href="{quote(f.name)}">{html.escape(f.name)}</a> ({f.size} bytes)</li>' for f in files)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        self._metrics.record("http", "results", "ok", self._clock.seconds() - started, account.name,
                             self._clients.of(request))
        title = html.escape(f"Order {order_id}, item {item_id}")
        page = (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
                f"<ul>{rows}</ul></body></html>\n")
        return page.encode()

    async def file(self, request: IRequest, order_id: str, item_id: str | None, name: str) -> IResource | bytes:
        """File ``name`` of the item; with ``item_id`` None, the order's
        package ``name`` (``/results/<order>/<package>``)."""
        started = self._clock.seconds()
        try:
            account = await self._account(request)
            try:
                found = await self._deliverables.file(account, order_id, item_id, name)
            except (RequestRejected, NotDeliverable) as e:
                raise _refusal(e) from None
        except Refused as e:
            return self._refuse(request, e, started)

        client = self._clients.of(request)

        def finished(_: object) -> None:
            whole = request.method == b"GET" and request.code == 200  # type: ignore[attr-defined]
            self._metrics.record("http", "download", "ok" if whole else "partial", self._clock.seconds() - started,
                                 account.name, client)
            if request.method == b"GET":
                log_transfer(self.log, "http", account.name, client, order_id, item_id, name,
                             getattr(request, "sentLength", 0), found.size, whole)
                self._transferred(account, order_id, item_id, name, client, getattr(request, "sentLength", 0), whole)
            if whole:
                self._deliverables_downloaded(account, order_id, item_id, name)

        def lost(_: object) -> None:
            self._metrics.record("http", "download", "aborted", self._clock.seconds() - started, account.name,
                                 client)
            log_transfer(self.log, "http", account.name, client, order_id, item_id, name,
                         getattr(request, "sentLength", 0), found.size, False)
            self._transferred(account, order_id, item_id, name, client, getattr(request, "sentLength", 0), False)

        request.notifyFinish().addCallbacks(finished, lost)  # type: ignore[attr-defined]
        # Its stat and open in the disk pool; its body sent from the reactor (sendfile).
        sent = await self._threads.on_disk(SentFile.prepared, str(found.path), defaultType="application/octet-stream")
        if getattr(request, "_disconnected", False):  # the client left meanwhile: nobody renders it
            sent.release()
        else:
            request.notifyFinish().addBoth(lambda _: sent.release())  # type: ignore[attr-defined]
        return sent

    def _transferred(self, account: Account, order_id: str, item_id: str | None, name: str, client: str | None,
                     sent: int, complete: bool) -> None:
        d = defer.ensureDeferred(self._deliverables.transferred(account, order_id, item_id, name, via="http",
                                                                address=client, sent=sent, complete=complete,
                                                                at=self._clock.seconds()))
        d.addErrback(self._not_recorded, "logging the transfer of {file} failed", name)

    def _deliverables_downloaded(self, account: Account, order_id: str, item_id: str | None, name: str) -> None:
        d = defer.ensureDeferred(self._deliverables.downloaded(account, order_id, item_id, name))
        d.addErrback(self._not_recorded, "recording the download of {file} failed", name)

    def _not_recorded(self, failure: Failure, what: str, name: str) -> None:
        if failure.check(RedisUnavailable):  # one line: the RedisWatch tells the outage itself
            self.log.warn(what + ": {error}", file=name, error=str(failure.value))
        else:
            self.log.failure(what, failure, file=name)

    async def _account(self, request: IRequest) -> Account:
        try:
            account = await request_account(self._portal, request, Client(self._clients.of(request), "http"))
        except BadCredentials as e:
            raise Refused(401, str(e)) from None
        except LockedOut as e:
            raise Refused(429, str(e), e) from None
        if account is None:
            raise Refused(401, "credentials required (HTTP Basic, your oseod user, or a bearer token)")
        return account

    async def _files(self, account: Account, order_id: str, item_id: str) -> Any:
        try:
            return await self._deliverables.files(account, order_id, item_id)
        except (RequestRejected, NotDeliverable) as e:
            raise _refusal(e) from None

    def _refuse(self, request: IRequest, refused: Refused, started: float) -> bytes:
        if refused.status == 401:
            request.setHeader(b"www-authenticate", CHALLENGE)
        self._metrics.record("http", "download", str(refused.status), self._clock.seconds() - started,
                             _tried(request), self._clients.of(request))
        answer = error_answer(request, refused.status, str(refused))
        if refused.locked is not None:
            too_many_requests(request, refused.locked)
        return answer


def _tried(request: IRequest) -> str | None:
    """The user name a refused request gave (HTTP Basic), for its log line:
    who was refused is what an operator looks for. Cut to a sane length; the
    log escapes what it must."""
    name = request.getUser().decode("utf-8", "replace") if request.getHeader(b"authorization") else ""
    return (name[:64] + "…" if len(name) > 64 else name) or None


def _refusal(error: Exception) -> Refused:
    # An order id the caller has no order under, another user's or none at
    # all: the same line (the core refuses both alike).
    return Refused(404, str(error) if isinstance(error, NotDeliverable) else "no such order")
