"""The audit trail of operators' actions, and what every action shares: who
asked (:class:`Actor`) and how a refusal is said (:class:`ActionRefused`)."""

from __future__ import annotations

import enum

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ...store.audit import AuditStore

MAX_PAGE = 1000  # entries or orders per page


class Refusal(enum.Enum):
    """Why an action was refused: the admin API maps these to 404/409/400."""

    NOT_FOUND = "not found"
    CONFLICT = "conflict"
    INVALID = "invalid"


class ActionRefused(Exception):
    def __init__(self, kind: Refusal, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@attrs.frozen
class Actor:
    """Who asked: a console user (``via`` "console"), or the holder of the
    admin token (``via`` "api"; ``name`` is what oseoctl says its local
    user is, "admin-token" when it says nothing); ``address``: the client's
    IP address."""

    name: str
    via: str
    address: str = ""


@attrs.frozen
class AuditEntry:
    id: str
    at: float
    actor: str
    via: str
    address: str
    action: str  # "order.approve", "user.add", "console.login"...
    target: str  # an order id, a user name, a collection...
    detail: str


class AuditTrail:
    """One record per state-changing action (the other parts record through
    it), read back newest first."""

    log = Logger()

    def __init__(self, *, audit: AuditStore, clock: IReactorTime) -> None:
        self._audit = audit
        self._clock = clock

    async def audit(self, limit: int = 100, before: str | None = None) -> tuple[AuditEntry, ...]:
        """Newest first; ``before``: an entry id, for the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ActionRefused(Refusal.INVALID, f"limit must be from 1 to {MAX_PAGE}")
        try:
            records = await self._audit.page(limit, before or None)
        except ValueError as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        return tuple(AuditEntry(r.id, r.at, r.actor, r.via, r.address, r.action, r.target, r.detail)
                     for r in records)

    async def record(self, actor: Actor, action: str, target: str = "", detail: str = "") -> None:
        """Record something done outside these actions (a console login...)."""
        await self._audit.append(self._clock.seconds(), actor.name, actor.via, actor.address, action, target, detail)
        self.log.info("operator {actor} ({via} from {address}): {action} {target}", actor=actor.name, via=actor.via,
                      address=actor.address or "-", action=action, target=target, detail=detail)
