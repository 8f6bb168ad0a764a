"""The HTTP side's routes, in two doors: the clients' (OSEO, result
downloads, health) and the operators' (the console, the admin API and
/metrics). By default one listener serves both; with ``[server] admin`` the
operators' door is a listener of its own and the clients' listener knows
nothing of it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from klein import Klein
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from .. import __version__
from ..answers import allow_header, error_answer, unavailable_answer
from ..core.packages import is_package_name
from ..metrics import RequestMetrics, Sample
from ..model.errors import RedisUnavailable
from ..readiness import Readiness
from ..store.connection import Redis
from .downloads import Downloads
from .odata import ODataService
from .oseo import OseoEndpoint
from .oseo_door import OseoDoor

# The first path segments that belong to the operators' door.
# The console's favicon goes with it (browsers ask for /favicon.ico on any page).
OPERATOR_SEGMENTS = (b"console", b"admin", b"metrics", b"favicon.ico")
# The first path segment of the OData service's door (/odata/v1).
ODATA_SEGMENT = b"odata"
# The first path segment of the OSEO endpoint's door (/oseo).
OSEO_SEGMENT = b"oseo"


class ProcessingView(Protocol):
    """What /health and /metrics show of the processing engine."""

    async def health(self) -> dict[str, Any]: ...

    async def samples(self) -> list[Sample]: ...


class SampleSource(Protocol):
    """Anything else with series for /metrics (the outbox...)."""

    async def samples(self) -> list[Sample]: ...


# Seconds a load balancer is asked to wait before checking a daemon that is
# not ready again (its own check interval usually decides).
READY_RETRY_AFTER = 2


class Probes:
    """/health, /ready and /metrics: what monitoring and load balancers
    read, whichever door they knock at."""

    def __init__(self, *, redis: Redis, metrics: RequestMetrics, processing: ProcessingView,
                 sources: tuple[SampleSource, ...], readiness: Readiness | None = None,
                 ping_timeout: float = 2.0, clock: IReactorTime | None = None) -> None:
        self._redis = redis
        self._metrics = metrics
        self._processing = processing
        self._sources = sources
        self._readiness = readiness
        self._ping_timeout = ping_timeout
        self._clock = clock
        self._started = time.time()
        # More of what /health shows, set by the daemon's wiring (the SFTP host key...).
        self.details: dict[str, Any] = {}

    async def ready(self, request: IRequest) -> bytes:
        """200 while this daemon wants requests; 503 with one line saying why
        not (starting, draining, Redis not answering a PING within [redis]
        command_timeout) and a Retry-After. No Redis call while not ready:
        a draining daemon's answer does not depend on Redis."""
        reason = self._readiness.reason() if self._readiness is not None else None
        if reason is None and not await self._ping():
            reason = f"not ready: Redis does not answer at {self._redis.address.describe()}"
        request.setHeader(b"cache-control", b"no-store")
        if reason is not None:
            request.setHeader(b"retry-after", str(READY_RETRY_AFTER).encode())
            return error_answer(request, 503, reason)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"ready\n"

    async def _ping(self) -> bool:
        ping = Deferred.fromCoroutine(self._redis.ping())
        if self._clock is not None:
            ping.addTimeout(self._ping_timeout, self._clock)
        try:
            return await ping
        except TimeoutError:
            return False

    async def health(self, request: IRequest) -> bytes:
        redis_ok = await self._redis.ping()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        if not redis_ok:
            request.setResponseCode(503)
        return json.dumps({
            "status": "ok" if redis_ok else "degraded",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self._started, 3),
            "redis": {"reachable": redis_ok, "address": self._redis.address.describe(),
                      "primary": self._redis.primary},
            "jobs": await self._processing.health() if redis_ok else None,
            **self.details,
        }).encode() + b"\n"

    async def metrics(self, request: IRequest) -> bytes:
        redis_ok = await self._redis.ping()
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return self._metrics.render([
            Sample("oseod_redis_up", "1 when Redis answered a PING for this scrape.", 1.0 if redis_ok else 0.0),
            Sample("oseod_start_time_seconds", "When the daemon started, Unix time.", self._started),
            *(await self._processing.samples() if redis_ok else []),
            *[sample for source in (self._sources if redis_ok else ()) for sample in await source.samples()],
        ]).encode()


def _every_door(app: Klein) -> Klein:
    """What every door answers besides its own routes: /health and /ready
    (for whoever watches that listener), and one-line 404, 405 and 503
    (Redis away). The
    handlers take the door as ``self`` (it has ``_probes``), as Klein binds
    them on a class's app."""

    async def health(self: Any, request: IRequest) -> bytes:
        return await self._probes.health(request)  # type: ignore[no-any-return]

    async def ready(self: Any, request: IRequest) -> bytes:
        return await self._probes.ready(request)  # type: ignore[no-any-return]

    def not_found(self: Any, request: IRequest, failure: Failure) -> bytes:
        return error_answer(request, 404, "not found")

    def not_allowed(self: Any, request: IRequest, failure: Failure) -> bytes:
        allow_header(request, failure)
        return error_answer(request, 405, "method not allowed")

    def unavailable(self: Any, request: IRequest, failure: Failure) -> bytes:
        return unavailable_answer(request)

    app.route("/health", methods=["GET", "HEAD"])(health)
    app.route("/ready", methods=["GET", "HEAD"])(ready)
    app.handle_errors(NotFound)(not_found)
    app.handle_errors(MethodNotAllowed)(not_allowed)
    app.handle_errors(RedisUnavailable)(unavailable)
    return app


class ClientRoutes:
    """The clients' door: /results/..., /health, /ready (/oseo and /odata are
    doors of their own beside it: see :class:`HttpFrontend`)."""

    app = _every_door(Klein())

    def __init__(self, *, downloads: Downloads, probes: Probes) -> None:
        self._downloads = downloads
        self._probes = probes

    def resource(self) -> IResource:
        return self.app.resource()

    @app.route("/results/<order_id>/<item_id>/", methods=["GET", "HEAD"])
    async def results(self, request: IRequest, order_id: str, item_id: str) -> bytes:
        return await self._downloads.listing(request, order_id, item_id)

    @app.route("/results/<order_id>/<name>", methods=["GET", "HEAD"])
    async def result_package(self, request: IRequest, order_id: str, name: str) -> IResource | bytes:
        if not is_package_name(order_id, name):  # an item's directory without its slash
            request.setResponseCode(308)
            request.setHeader(b"location", quote(name, safe="").encode() + b"/")
            return b""
        return await self._downloads.file(request, order_id, None, name)

    @app.route("/results/<order_id>/<item_id>/<name>", methods=["GET", "HEAD"])
    async def result_file(self, request: IRequest, order_id: str, item_id: str, name: str) -> IResource | bytes:
        return await self._downloads.file(request, order_id, item_id, name)




class OperatorRoutes:
    """The operators' door: /console/, /admin/api/, /metrics (and /health
    and /ready, for whoever watches this listener)."""

    app = _every_door(Klein())

    def __init__(self, *, admin: Any, console: Any, probes: Probes) -> None:
        self._admin = admin
        self._console = console
        self._probes = probes

    def resource(self) -> IResource:
        return self.app.resource()

    @app.route("/metrics", methods=["GET"])
    async def metrics(self, request: IRequest) -> bytes:
        return await self._probes.metrics(request)


    @app.route("/admin/api/", branch=True)
    def admin(self, request: IRequest) -> IResource:
        return self._admin.resource()  # type: ignore[no-any-return]

    @app.route("/console", methods=["GET", "HEAD"])
    def console_root(self, request: IRequest) -> bytes:
        request.setResponseCode(301)
        request.setHeader(b"location", b"/console/")
        return b""

    @app.route("/console/", branch=True)
    def console(self, request: IRequest) -> IResource:
        if self._console is None:
            raise NotFound()
        return self._console.resource()  # type: ignore[no-any-return]

    @app.route("/favicon.ico", methods=["GET", "HEAD"])
    def favicon(self, request: IRequest) -> bytes:
        """Browsers ask for it on any page they show (/health or the WSDL in a
        tab, too): point them at the console's icon, or say there is none
        (204) rather than fill access logs with 404s."""
        request.setHeader(b"cache-control", b"public, max-age=86400")
        if self._console is None:
            request.setResponseCode(204)
            return b""
        request.setResponseCode(301)
        request.setHeader(b"location", b"/console/static/favicon.svg")
        return b""



class Doors(Resource):
    """One listener's root serving several doors: a request goes to the door
    its first path segment names (``default`` for the rest), which sees the
    whole path, as if it were the root itself."""

    def __init__(self, doors: Mapping[bytes, IResource], default: IResource) -> None:
        super().__init__()
        self._doors = dict(doors)
        self._default = default

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        # twisted.web moved the segment to prepath; a Klein resource routes
        # on the path below prepath, so it goes back.
        request.postpath.insert(0, request.prepath.pop())  # type: ignore[attr-defined]
        return self._doors.get(path, self._default)


class HttpFrontend:
    """The HTTP side's resources: ``resource()`` for one listener serving
    both doors, or ``client_resource()`` and ``operator_resource()`` for two.
    The clients' side holds /odata (when served) as a door of its own."""

    def __init__(self, *, oseo: OseoEndpoint, admin: Any, redis: Redis, metrics: RequestMetrics,
                 processing: ProcessingView, downloads: Downloads, sources: tuple[SampleSource, ...] = (),
                 console: Any = None, readiness: Readiness | None = None, ping_timeout: float = 2.0,
                 clock: IReactorTime | None = None, odata: ODataService | None = None) -> None:
        """``readiness``: the daemon's state for /ready (None: always ready
        once Redis answers); ``ping_timeout``: how long /ready waits for
        Redis's PING on ``clock``; ``odata``: /odata/v1 (None: [odata] off)."""
        self._console = console
        probes = Probes(redis=redis, metrics=metrics, processing=processing, sources=sources, readiness=readiness,
                        ping_timeout=ping_timeout, clock=clock)
        self.probes = probes
        self.clients = ClientRoutes(downloads=downloads, probes=probes)
        self.oseo = OseoDoor(oseo)
        self.odata = odata
        self.operators = OperatorRoutes(admin=admin, console=console, probes=probes)

    def resource(self) -> IResource:
        operators = self.operators.resource()
        return Doors({**{segment: operators for segment in OPERATOR_SEGMENTS}, **self._client_doors()},
                     self.clients.resource())

    def client_resource(self) -> IResource:
        return Doors(self._client_doors(), self.clients.resource())

    def operator_resource(self) -> IResource:
        return self.operators.resource()

    def _client_doors(self) -> dict[bytes, IResource]:
        """/oseo, and /odata when served: doors of their own rather than
        routes or branches of the clients' Klein app, so a request is routed
        once (some 15 % of an OData read's cost), or for /oseo not by Klein
        at all (see :mod:`.oseo_door`)."""
        doors: dict[bytes, IResource] = {OSEO_SEGMENT: self.oseo}
        if self.odata is not None:
            doors[ODATA_SEGMENT] = self.odata.resource()
        return doors
