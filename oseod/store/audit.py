"""The audit log: every operator action, in a capped Redis stream.

An entry's id is its stream id (time-ordered, unique), so a page of the log
is an XREVRANGE from the entry before which it starts. The stream is
trimmed approximately (``MAXLEN ~``), which Redis does cheaply at whole
nodes: a little more than AUDIT_KEPT entries may stay.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from . import keys

AUDIT_KEPT = 100_000
_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


@attrs.frozen
class AuditRecord:
    id: str
    at: float
    actor: str
    via: str
    address: str
    action: str
    target: str
    detail: str


class AuditStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def append(self, at: float, actor: str, via: str, address: str, action: str, target: str,
                     detail: str) -> str:
        """Record one action; its id."""
        fields = ["at", repr(float(at)), "actor", actor, "via", via, "address", address, "action", action,
                  "target", target, "detail", detail[:2000]]
        return str(await self._redis.conn.execute_command("XADD", keys.audit_log(), "MAXLEN", "~", str(AUDIT_KEPT),
                                                          "*", *fields))

    async def page(self, limit: int, before: str | None = None) -> list[AuditRecord]:
        """Up to ``limit`` entries, newest first, older than entry ``before``
        (None: from the newest). ValueError when ``before`` is not an entry id."""
        if before is not None and not _STREAM_ID.match(before):
            raise ValueError(f"not an audit entry id: {before[:40]!r}")
        if limit <= 0:
            return []
        start = f"({before}" if before is not None else "+"
        rows = await self._redis.conn.execute_command("XREVRANGE", keys.audit_log(), start, "-", "COUNT", str(limit))
        records = []
        for entry_id, flat in rows or ():
            fields = dict(zip(flat[0::2], flat[1::2]))
            records.append(AuditRecord(
                id=str(entry_id), at=float(fields.get("at", 0)), actor=fields.get("actor", ""),
                via=fields.get("via", ""), address=fields.get("address", ""), action=fields.get("action", ""),
                target=fields.get("target", ""), detail=fields.get("detail", "")))
        return records
