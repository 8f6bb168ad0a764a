"""What an operator can see and do: the one place behind the admin JSON API
(``oseoctl``) and the web console. Handlers of either only translate: every
rule, every audit record, every query lives here or below (core, store).

Each state-changing action takes the :class:`Actor` who asked and records
one :class:`AuditEntry`; a refusal raises :class:`ActionRefused` with a
one-line reason that the transports show as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..model.orders import Order, OrderStatus


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
class OrderQuery:
    """A search of every user's orders. Empty criteria match everything;
    ``statuses`` matches any of them. ``updated_from``/``updated_to`` bound
    the last update (Unix time, inclusive). Pages come newest update first
    (``oldest_first``: the other way); ``after`` is the cursor an
    :class:`OrderPage` gave for the next page."""

    statuses: frozenset[OrderStatus] = frozenset()
    user: str | None = None
    collection: str | None = None
    # PRODUCT_ORDER, SUBSCRIPTION_ORDER, TASKING_ORDER, or MASSIVE_ORDER (a
    # PRODUCT_ORDER whose reference is "Massive order").
    order_type: str | None = None
    reference: str | None = None
    updated_from: float | None = None
    updated_to: float | None = None
    oldest_first: bool = False
    after: str | None = None
    limit: int = 50


@attrs.frozen
class OrderPage:
    orders: tuple[Order, ...]
    next: str | None  # the cursor of the next page; None: this is the last


@attrs.frozen
class HistoryEntry:
    """One change of an order's status, oldest first in a timeline."""

    at: float
    status: str
    info: str
    by: str = ""  # the operator who caused it ("" the service itself)


@attrs.frozen
class OutboxEvent:
    """One attempt to deliver an order's call-back or e-mail."""

    at: float
    channel: str  # "callback" or "mail"
    seq: int
    outcome: str  # "sent", "retry" or "given up"
    detail: str = ""


@attrs.frozen
class DownloadRecord:
    at: float
    item_id: str  # "" for the order's package
    file: str
    user: str
    via: str  # "ftp" or "http"
    address: str
    bytes: int
    complete: bool


@attrs.frozen
class OrderDetail:
    order: Order
    history: tuple[HistoryEntry, ...]
    outbox: tuple[OutboxEvent, ...]
    downloads: tuple[DownloadRecord, ...]
    callback_failure: Mapping[str, Any] | None


@attrs.frozen
class HourBucket:
    start: float  # Unix time of the hour's start
    completed: int
    failed: int
    downloads: int


@attrs.frozen
class TaskRun:
    name: str
    at: float | None  # the last run's start, None: never
    seconds: float | None
    outcome: str  # "ok", "failed", "never"


@attrs.frozen
class RedisHealth:
    up: bool
    latency_ms: float | None
    used_memory: int | None
    version: str
    address: str


@attrs.frozen
class Overview:
    orders_by_status: Mapping[str, int]
    items_by_status: Mapping[str, int]
    jobs: Mapping[str, Any]  # the engine's report: waiting by priority, delayed, running
    items_per_minute: float  # completed over the last 10 minutes, per minute
    downloads_last_hour: int
    outbox_pending: Mapping[str, int]  # per channel
    outbox_given_up: int
    leader: str | None
    task_runs: tuple[TaskRun, ...]
    redis: RedisHealth
    hours: tuple[HourBucket, ...]  # the last 24, oldest first, the current one last
    recent_orders: tuple[Order, ...]  # the last updated, newest first


@attrs.frozen
class UserView:
    name: str
    source: str  # "redis", "file" or "ldap"
    group: str
    admin: bool
    email: str
    disabled: bool
    created_at: float | None
    last_login: float | None
    editable: bool  # only Redis users are changed from here


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


@attrs.frozen
class SubscriptionView:
    """An active subscription. Timeslots come from outside (a provider's
    ingestion calls ``oseoctl subscription timeslot`` or the console's form),
    so there is no schedule to predict: the console shows the subscribed
    period and the last timeslot served."""

    order: Order
    collections: tuple[str, ...]
    starts_at: float | None  # the subscribed period (None: open)
    ends_at: float | None
    batches: int  # timeslots served so far
    last_timeslot: str | None  # the last served, ISO 8601


class OperatorActions:
    """See the module's docstring. Built once in ``oseod.tap`` and handed to
    the admin API and the console."""

    async def overview(self) -> Overview:
        raise NotImplementedError

    async def search_orders(self, query: OrderQuery) -> OrderPage:
        raise NotImplementedError

    async def order_detail(self, order_id: str) -> OrderDetail:
        raise NotImplementedError

    async def moderation_queue(self, limit: int = 100, after: str | None = None) -> OrderPage:
        """Orders waiting in Submitted, oldest first."""
        raise NotImplementedError

    async def approve(self, actor: Actor, order_id: str) -> Order:
        raise NotImplementedError

    async def approve_many(self, actor: Actor, order_ids: Sequence[str]) -> Mapping[str, str | None]:
        """Per order id: None when approved, else the refusal's reason."""
        raise NotImplementedError

    async def reject(self, actor: Actor, order_id: str, reason: str) -> Order:
        raise NotImplementedError

    async def cancel(self, actor: Actor, order_id: str, reason: str = "") -> Order:
        raise NotImplementedError

    async def retry_failed(self, actor: Actor, order_id: str) -> tuple[str, ...]:
        """Put the order's failed items back in the queue: their ids."""
        raise NotImplementedError

    async def users(self) -> tuple[UserView, ...]:
        raise NotImplementedError

    async def user(self, name: str) -> UserView:
        raise NotImplementedError

    async def add_user(self, actor: Actor, name: str, password: str, *, group: str = "default",
                       admin: bool = False, email: str = "") -> tuple[UserView, tuple[str, ...]]:
        """The new user and the password's warnings."""
        raise NotImplementedError

    async def set_user(self, actor: Actor, name: str, *, group: str | None = None, admin: bool | None = None,
                       email: str | None = None, disabled: bool | None = None) -> UserView:
        raise NotImplementedError

    async def set_password(self, actor: Actor, name: str, password: str) -> tuple[str, ...]:
        """The password's warnings."""
        raise NotImplementedError

    async def delete_user(self, actor: Actor, name: str) -> None:
        raise NotImplementedError

    async def audit(self, limit: int = 100, before: str | None = None) -> tuple[AuditEntry, ...]:
        """Newest first; ``before``: an entry id, for the next page."""
        raise NotImplementedError

    async def record(self, actor: Actor, action: str, target: str = "", detail: str = "") -> None:
        """Record something done outside these actions (a console login...)."""
        raise NotImplementedError

    def configuration(self) -> Mapping[str, Any]:
        """The running configuration, section by section, secrets masked."""
        raise NotImplementedError

    async def subscriptions(self) -> tuple[SubscriptionView, ...]:
        raise NotImplementedError

    async def timeslot(self, actor: Actor, collection_id: str, timestamp: str, force: bool = False) -> tuple[str, ...]:
        raise NotImplementedError
