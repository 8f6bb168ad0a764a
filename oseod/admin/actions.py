"""What an operator can see and do: the one place behind the admin JSON API
(``oseoctl``) and the web console. Handlers of either only translate: every
rule, every audit record, every query lives here or below (core, store).

Each state-changing action takes the :class:`Actor` who asked and records
one :class:`AuditEntry`; a refusal raises :class:`ActionRefused` with a
one-line reason that the transports show as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
from twisted.logger import Logger

from ..auth.htpasswd import FileAccount
from ..config import Config
from ..core.accounts import AccountService, password_warnings
from ..core.ordering import OrderingService
from ..core.validation import subscription_period
from ..model.errors import RequestRejected
from ..model.orders import Order, OrderStatus, OrderType
from ..store.audit import AuditStore
from ..store.connection import Redis
from ..store.leader import LeaderLock, TaskRunRecord, TaskRuns
from ..store.orders import BadCursor, HistoryLine, OrderStore, Transfer
from ..store.outbox import ORDER_CHANNELS, OutboxStore
from ..store.stats import StatsStore
from ..store.users import Login, NoSuchUser, UserExists, UserRecord
from .masking import masked_config

T = TypeVar("T")


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
    # The search examined as many index entries as it may (SEARCH_BUDGET)
    # before filling the page: more orders may match after ``next``.
    truncated: bool = False


@attrs.frozen
class OutboxEvent:
    """One attempt to deliver an order's call-back or e-mail."""

    at: float
    channel: str  # "callback" or "mail"
    seq: int
    outcome: str  # "sent", "retry" or "given up"
    detail: str = ""


@attrs.frozen
class OrderDetail:
    order: Order
    history: tuple[HistoryLine, ...]  # oldest first
    outbox: tuple[OutboxEvent, ...]
    downloads: tuple[Transfer, ...]
    callback_failure: Mapping[str, Any] | None
    # Per item id: complete downloads of its files so far and when the last ended.
    item_downloads: Mapping[str, tuple[int, float]] = attrs.field(factory=dict)


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


class JobReport(Protocol):
    """The processing engine, as operators see it."""

    async def report(self) -> dict[str, Any]: ...


MAX_PAGE = 1000  # orders per page of a search
MAX_BULK = 1000  # orders per approve_many
MAX_SUBSCRIPTIONS = 2000  # listed by subscriptions()
RECENT_ORDERS = 10
class OperatorActions:
    """See the module's docstring. Built once in ``oseod.tap`` and handed to
    the admin API and the console."""

    log = Logger()

    def __init__(self, *, config: Config, clock: Any, ordering: OrderingService, orders: OrderStore,
                 accounts: AccountService, audit: AuditStore, stats: StatsStore, outbox: OutboxStore,
                 leader: LeaderLock, task_runs: TaskRuns, task_names: Sequence[str], processing: JobReport,
                 redis: Redis, file_accounts: Callable[[], Sequence[FileAccount]] | None = None) -> None:
        self._config = config
        self._clock = clock
        self._ordering = ordering
        self._orders = orders
        self._accounts = accounts
        self._audit = audit
        self._stats = stats
        self._outbox = outbox
        self._leader = leader
        self._task_runs = task_runs
        self._task_names = tuple(task_names)
        self._processing = processing
        self._redis = redis
        self._file_accounts = file_accounts

    # ------------------------------------------------------------ overview

    async def overview(self) -> Overview:
        redis = await self._redis_health()
        if not redis.up:
            return Overview(orders_by_status={}, items_by_status={}, jobs={}, items_per_minute=0.0,
                            downloads_last_hour=0, outbox_pending={}, outbox_given_up=0, leader=None, task_runs=(),
                            redis=redis, hours=(), recent_orders=())
        now = self._clock.seconds()
        minutes = await self._stats.minutes(now, 60)
        counters = await self._outbox.counters()
        runs = await self._task_runs.last()
        recent = await self._orders.find(limit=RECENT_ORDERS, budget=RECENT_ORDERS)
        return Overview(
            orders_by_status=await self._stats.orders_by_status(),
            items_by_status=await self._stats.items_by_status(),
            jobs=await self._processing.report(),
            items_per_minute=sum(m.completed for m in minutes[-10:]) / 10.0,
            downloads_last_hour=sum(m.downloads for m in minutes),
            outbox_pending=await self._outbox.pending(),
            outbox_given_up=sum(n for k, n in counters.items() if k.endswith(":failed")),
            leader=await self._leader.current(),
            task_runs=tuple(_task_run(name, runs.get(name)) for name in self._task_names),
            redis=redis,
            hours=tuple(HourBucket(b.start, b.completed, b.failed, b.downloads)
                        for b in await self._stats.hours(now, 24)),
            recent_orders=tuple(await self._orders.get_many(recent.order_ids)),
        )

    async def job_report(self) -> Mapping[str, Any]:
        """The job queue and what this daemon's engine made (``oseoctl stats``)."""
        return await self._processing.report()

    async def _redis_health(self) -> RedisHealth:
        address = self._redis.address.describe()
        started = self._clock.seconds()
        try:
            await self._redis.conn.ping()
            latency = (self._clock.seconds() - started) * 1000.0
            info = _info_fields(str(await self._redis.conn.execute_command("INFO")))
        except Exception as e:
            self.log.warn("Redis health check failed: {error}", error=str(e) or repr(e))
            return RedisHealth(False, None, None, "", address)
        used = info.get("used_memory", "")
        return RedisHealth(True, latency, int(used) if used.isdigit() else None, info.get("redis_version", ""),
                           address)

    # ------------------------------------------------------------ orders

    async def search_orders(self, query: OrderQuery) -> OrderPage:
        if not 1 <= query.limit <= MAX_PAGE:
            raise ActionRefused(Refusal.INVALID, f"limit must be from 1 to {MAX_PAGE}")
        if query.order_type is not None and query.order_type not in {t.value for t in OrderType}:
            raise ActionRefused(Refusal.INVALID, f"order type must be one of {', '.join(t.value for t in OrderType)}")
        if (query.updated_from is not None and query.updated_to is not None
                and query.updated_from > query.updated_to):
            raise ActionRefused(Refusal.INVALID, "the date range ends before it starts")
        try:
            found = await self._orders.find(
                owner=query.user or None, statuses=query.statuses, reference=query.reference or None,
                collection=query.collection or None, order_type=query.order_type or None,
                updated_from=query.updated_from, updated_to=query.updated_to, oldest_first=query.oldest_first,
                after=query.after, limit=query.limit)
        except BadCursor as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        orders = await self._orders.get_many(found.order_ids)
        return OrderPage(tuple(orders), found.next, found.truncated)

    async def order_detail(self, order_id: str) -> OrderDetail:
        order = await self._orders.get(order_id)
        if order is None:
            raise ActionRefused(Refusal.NOT_FOUND, f"there is no order {_shown(order_id)}")
        history = tuple(await self._orders.history(order_id))
        events = [OutboxEvent(e.at, channel, e.seq, e.outcome, e.detail)
                  for channel in ORDER_CHANNELS for e in await self._outbox.log(channel, order_id)]
        downloads = tuple(await self._orders.transfers(order_id))
        failure = await self._orders.callback_failure(order_id)
        return OrderDetail(order, history, tuple(sorted(events, key=lambda e: e.at)), downloads,
                           None if failure is None else attrs.asdict(failure), await self._orders.downloads(order_id))

    async def moderation_queue(self, limit: int = 100, after: str | None = None) -> OrderPage:
        """Orders waiting in Submitted, oldest first."""
        return await self.search_orders(OrderQuery(statuses=frozenset({OrderStatus.Submitted}), oldest_first=True,
                                                   after=after, limit=limit))

    async def approve(self, actor: Actor, order_id: str) -> Order:
        order = await self._order_action(self._ordering.approve(order_id, by=actor.name))
        await self.record(actor, "order.approve", order_id)
        return order

    async def approve_many(self, actor: Actor, order_ids: Sequence[str]) -> Mapping[str, str | None]:
        """Per order id: None when approved, else the refusal's reason."""
        if len(order_ids) > MAX_BULK:
            raise ActionRefused(Refusal.INVALID, f"at most {MAX_BULK} orders at once")
        outcome: dict[str, str | None] = {}
        for order_id in order_ids:
            try:
                await self.approve(actor, order_id)
                outcome[order_id] = None
            except ActionRefused as e:
                outcome[order_id] = e.message
        return outcome

    async def reject(self, actor: Actor, order_id: str, reason: str) -> Order:
        reason = reason.strip()
        if not reason:
            raise ActionRefused(Refusal.INVALID, "give a reason: the client reads it in the order's status")
        order = await self._order_action(self._ordering.reject(order_id, reason, by=actor.name))
        await self.record(actor, "order.reject", order_id, reason)
        return order

    async def cancel(self, actor: Actor, order_id: str, reason: str = "") -> Order:
        order = await self._order_action(self._ordering.operator_cancel(order_id, reason.strip(), by=actor.name))
        await self.record(actor, "order.cancel", order_id, reason.strip())
        return order

    async def retry_failed(self, actor: Actor, order_id: str) -> tuple[str, ...]:
        """Put the order's failed items back in the queue: their ids."""
        items = await self._order_action(self._ordering.retry_failed(order_id, by=actor.name))
        await self.record(actor, "order.retry", order_id, f"{len(items)} failed items queued again")
        return tuple(items)

    @staticmethod
    async def _order_action(action: Awaitable[T]) -> T:
        try:
            return await action
        except RequestRejected as e:
            kind = Refusal.NOT_FOUND if e.code == "InvalidOrderIdentifier" else Refusal.CONFLICT
            raise ActionRefused(kind, e.text) from None

    # ------------------------------------------------------------ users

    async def users(self) -> tuple[UserView, ...]:
        logins = await self._accounts.logins()
        views = [_redis_user(record, logins.get(record.name)) for record in await self._accounts.list()]
        views += [_file_user(account, logins.get(account.name)) for account in self._file_users()]
        views += [_ldap_user(name, login) for name, login in sorted(logins.items()) if login.source == "ldap"]
        return tuple(sorted(views, key=lambda v: (v.name, v.source)))

    async def user(self, name: str) -> UserView:
        record = await self._accounts.get(name)
        login = await self._accounts.login(name)
        if record is not None:
            return _redis_user(record, login)
        for account in self._file_users():
            if account.name == name:
                return _file_user(account, login)
        if login is not None and login.source == "ldap":
            return _ldap_user(name, login)
        raise ActionRefused(Refusal.NOT_FOUND, f"no user {name[:80]}")

    async def is_operator(self, name: str) -> bool:
        """Whether ``name`` is still an operator, for a console session
        opened earlier: a Redis user must still exist, be an admin and not
        be disabled. A directory (LDAP) operator is taken at their login's word
        until the session ends: asking the directory on every page would
        cost a bind per page. (The password file makes no operators.)"""
        record = await self._accounts.get(name)
        if record is not None:
            return record.admin and not record.disabled
        login = await self._accounts.login(name)
        return login is not None and login.source == "ldap" and login.admin

    async def add_user(self, actor: Actor, name: str, password: str, *, group: str = "default",
                       admin: bool = False, email: str = "") -> tuple[UserView, tuple[str, ...]]:
        """The new user and the password's warnings."""
        try:
            record = await self._accounts.add(name, password, group=group, admin=admin, email=email)
        except UserExists:
            raise ActionRefused(Refusal.CONFLICT, f"user {name} already exists") from None
        except ValueError as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        await self.record(actor, "user.add", name, _changes(group=group, admin=admin, email=email))
        return _redis_user(record, None), tuple(password_warnings(password))

    async def set_user(self, actor: Actor, name: str, *, group: str | None = None, admin: bool | None = None,
                       email: str | None = None, disabled: bool | None = None) -> UserView:
        await self._editable(name)
        try:
            record = await self._accounts.change(name, group=group, admin=admin, email=email, disabled=disabled)
        except NoSuchUser:
            raise ActionRefused(Refusal.NOT_FOUND, f"no user {name[:80]}") from None
        except ValueError as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        action = "user.set"
        if disabled is not None and group is None and admin is None and email is None:
            action = "user.disable" if disabled else "user.enable"
        await self.record(actor, action, name, _changes(group=group, admin=admin, email=email, disabled=disabled))
        logins = await self._accounts.logins()
        return _redis_user(record, logins.get(name))

    async def set_password(self, actor: Actor, name: str, password: str) -> tuple[str, ...]:
        """The password's warnings."""
        await self._editable(name)
        try:
            await self._accounts.set_password(name, password)
        except NoSuchUser:
            raise ActionRefused(Refusal.NOT_FOUND, f"no user {name[:80]}") from None
        except ValueError as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        await self.record(actor, "user.password", name)
        return tuple(password_warnings(password))

    async def delete_user(self, actor: Actor, name: str) -> None:
        await self._editable(name)
        try:
            await self._accounts.remove(name)
        except NoSuchUser:
            raise ActionRefused(Refusal.NOT_FOUND, f"no user {name[:80]}") from None
        await self.record(actor, "user.delete", name)

    async def _editable(self, name: str) -> None:
        """Refuse, saying why, to change a user that is not a Redis account."""
        if await self._accounts.get(name) is not None:
            return
        try:
            found = await self.user(name)
        except ActionRefused:
            return  # the action says there is no such user
        where = "the password file" if found.source == "file" else "the LDAP directory"
        raise ActionRefused(Refusal.CONFLICT, f"user {name} comes from {where}: change it there")

    def _file_users(self) -> Sequence[FileAccount]:
        if self._file_accounts is None:
            return ()
        try:
            return self._file_accounts()
        except Exception as e:
            self.log.warn("cannot list the password file's accounts: {error}", error=str(e) or repr(e))
            return ()

    # ------------------------------------------------------------ audit

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

    # ------------------------------------------------------------ configuration, subscriptions

    def configuration(self) -> Mapping[str, Any]:
        """The running configuration, section by section, secrets masked."""
        shown = attrs.asdict(self._config, recurse=True)
        masked = masked_config(shown)
        assert isinstance(masked, dict)
        return masked

    async def subscriptions(self) -> tuple[SubscriptionView, ...]:
        views: list[SubscriptionView] = []
        after: str | None = None
        while len(views) < MAX_SUBSCRIPTIONS:
            found = await self._orders.find(order_type=OrderType.SUBSCRIPTION_ORDER.value,
                                            statuses=frozenset(s for s in OrderStatus if not s.is_final),
                                            after=after, limit=min(200, MAX_SUBSCRIPTIONS - len(views)))
            for order in await self._orders.get_many(found.order_ids):
                view = _subscription(order)
                if view.ends_at is None:  # no DateRange: the end the service gave it
                    view = attrs.evolve(view, ends_at=await self._orders.subscribed_until(order.order_id,
                                                                                        view.collections))
                views.append(view)
            if found.next is None:
                break
            after = found.next
        return tuple(views)

    async def timeslot(self, actor: Actor, collection_id: str, timestamp: str, force: bool = False) -> tuple[str, ...]:
        try:
            served = await self._ordering.timeslot(collection_id, timestamp, force)
        except RequestRejected as e:
            kind = Refusal.NOT_FOUND if e.code == "UnsupportedCollection" else Refusal.INVALID
            raise ActionRefused(kind, e.text) from None
        await self.record(actor, "subscription.timeslot", collection_id,
                          f"{timestamp}{' (forced)' if force else ''}: {len(served)} subscriptions served")
        return tuple(served)


def _task_run(name: str, run: TaskRunRecord | None) -> TaskRun:
    if run is None:
        return TaskRun(name, None, None, "never")
    return TaskRun(name, run.at, run.seconds, "ok" if run.ok else "failed")


def _info_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def _redis_user(record: UserRecord, login: Login | None) -> UserView:
    return UserView(name=record.name, source="redis", group=record.group, admin=record.admin, email=record.email,
                    disabled=record.disabled, created_at=record.created_at or None,
                    last_login=login.at if login is not None else None, editable=True)


def _file_user(account: FileAccount, login: Login | None) -> UserView:
    return UserView(name=account.name, source="file", group=account.group, admin=False, email="", disabled=False,
                    created_at=None, last_login=login.at if login is not None else None, editable=False)


def _ldap_user(name: str, login: Login) -> UserView:
    return UserView(name=name, source="ldap", group=login.group, admin=login.admin, email=login.email,
                    disabled=False, created_at=None, last_login=login.at, editable=False)


def _changes(**values: object) -> str:
    """What an action set, for the audit log: ``group=ops admin=yes``."""
    shown = []
    for name, value in values.items():
        if value is None:
            continue
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        shown.append(f"{name}={text}")
    return " ".join(shown)


def _subscription(order: Order) -> SubscriptionView:
    try:
        period = subscription_period(order.spec)
    except RequestRejected:
        period = None
    collections = sorted({i.collection_id for i in order.spec.items if i.subscription and i.collection_id})
    last_batch = max((item.batch for item in order.items), default=0)
    last_slot = next((item.spec.product_id for item in order.items if item.batch == last_batch), None)
    return SubscriptionView(order=order, collections=tuple(collections),
                            starts_at=period[0] if period else None, ends_at=period[1] if period else None,
                            batches=len({item.batch for item in order.items if item.batch > 0}),
                            last_timeslot=last_slot if last_batch > 0 else None)


def _shown(value: str) -> str:
    return f'"{value[:80]}"' + ("..." if len(value) > 80 else "")
