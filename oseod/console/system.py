"""The console's view of the daemon, as :mod:`oseod.admin.actions.system`
has it: the overview (and its live event stream) and the configuration."""

from __future__ import annotations

from typing import Any, ClassVar

from klein import Klein
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from ..admin.actions import OperatorActions
from ..model.sessions import SessionRecord
from .forms import Form
from .frame import Frame, Part, error_pages, secure
from .live import EventStream, Recent
from .pages import charts, overview_values


class SystemPages(Part):
    app: ClassVar[Klein] = Klein()
    segments = ("", "events", "config")
    error_pages(app)

    def __init__(self, frame: Frame, actions: OperatorActions, *, live_interval: float = 3.0) -> None:
        super().__init__(frame, actions)
        self._interval = live_interval
        # Every open console's stream asks each tick: one overview per half interval serves them all.
        self._live_overview = Recent(self._overview_event, frame.clock, live_interval / 2)

    @app.route("/", methods=["GET", "HEAD"])
    async def overview(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            found = await self.actions.overview()
            return "overview.html", {"overview": found, "values": overview_values(found), "charts": charts(found),
                                     "now": self.frame.clock.seconds()}

        return await self.frame.page(request, "overview", build)

    @app.route("/events", methods=["GET"])
    async def events(self, request: IRequest) -> IResource | bytes:
        secure(request)
        record = await self.frame.gate.session(request, touch=False)
        if record is None:
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"log in first\n"

        async def produce() -> str | None:
            if not await self.frame.gate.still_open(record):
                return None
            return await self._live_overview.get()

        return EventStream("overview", produce, self.frame.clock, self._interval)

    async def _overview_event(self) -> str:
        return self.frame.pages.live_event(await self.actions.overview(), self.frame.clock.seconds())

    @app.route("/config", methods=["GET", "HEAD"])
    async def config(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            Form(request, ())
            return "config.html", {"config": self.actions.configuration()}

        return await self.frame.page(request, "config", build)
