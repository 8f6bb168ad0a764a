"""The console's audit trail, as :mod:`oseod.admin.actions.audit` has it:
what operators did, newest first, a hundred entries a page."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from klein import Klein
from twisted.web.iweb import IRequest

from ..model.sessions import SessionRecord
from .forms import Form
from .frame import BASE, MAX_ID, Part, error_pages


class AuditPages(Part):
    app: ClassVar[Klein] = Klein()
    segments = ("audit",)
    error_pages(app)

    @app.route("/audit", methods=["GET", "HEAD"])
    async def audit(self, request: IRequest) -> bytes:
        async def build(record: SessionRecord) -> tuple[str, dict[str, Any]]:
            form = Form(request, {"before"})
            entries = await self.actions.audit(limit=100, before=form.optional("before", max_length=MAX_ID))
            older = f"{BASE}audit?{urlencode([('before', entries[-1].id)])}" if len(entries) == 100 else None
            return "audit.html", {"entries": entries, "older": older}

        return await self.frame.page(request, "audit", build)
