"""What an operator can see and do: the one place behind the admin JSON API
(``oseoctl``) and the web console. Handlers of either only translate: every
rule, every audit record, every query lives here or below (core, store).

Each state-changing action takes the :class:`Actor` who asked and records
one :class:`AuditEntry`; a refusal raises :class:`ActionRefused` with a
one-line reason that the transports show as it is.

The actions live by subject: :mod:`.orders`, :mod:`.users`, :mod:`.system`
and :mod:`.audit`. :class:`OperatorActions` is all of them behind one
object, the one the console and the admin API are handed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ...config import Config
from ...core.accounts import AccountService
from ...core.moderation import Moderation
from ...model.orders import Order
from ...model.users import FileAccount
from ...store.audit import AuditStore
from ...store.connection import Redis
from ...store.leader import LeaderLock, TaskRuns
from ...store.orders import OrderStore
from ...store.outbox import OutboxStore
from ...store.stats import StatsStore
from .audit import MAX_PAGE, ActionRefused, Actor, AuditEntry, AuditTrail, Refusal
from .orders import (
    MAX_BULK,
    MAX_SUBSCRIPTIONS,
    OrderActions,
    OrderDetail,
    OrderPage,
    OrderQuery,
    OutboxEvent,
    SubscriptionView,
)
from .system import RECENT_ORDERS, HourBucket, JobReport, Overview, RedisHealth, SystemActions, TaskRun
from .users import UserActions, UserView

__all__ = [
    "MAX_BULK", "MAX_PAGE", "MAX_SUBSCRIPTIONS", "RECENT_ORDERS", "ActionRefused", "Actor", "AuditEntry",
    "AuditTrail", "HourBucket", "JobReport", "OperatorActions", "OrderActions", "OrderDetail", "OrderPage",
    "OrderQuery", "OutboxEvent", "Overview", "RedisHealth", "Refusal", "SubscriptionView", "SystemActions",
    "TaskRun", "UserActions", "UserView",
]


class OperatorActions:
    """See the module's docstring. Built once in ``oseod.tap`` and handed to
    the admin API and the console; each method is its part's."""

    def __init__(self, *, config: Config, clock: IReactorTime, ordering: Moderation, orders: OrderStore,
                 accounts: AccountService, audit: AuditStore, stats: StatsStore, outbox: OutboxStore,
                 leader: LeaderLock, task_runs: TaskRuns, task_names: Sequence[str], processing: JobReport,
                 redis: Redis, file_accounts: Callable[[], Sequence[FileAccount]] | None = None) -> None:
        self._trail = AuditTrail(audit=audit, clock=clock)
        self._orders = OrderActions(ordering=ordering, orders=orders, outbox=outbox, trail=self._trail)
        self._users = UserActions(accounts=accounts, trail=self._trail, file_accounts=file_accounts)
        self._system = SystemActions(config=config, clock=clock, orders=orders, stats=stats, outbox=outbox,
                                    leader=leader, task_runs=task_runs, task_names=task_names,
                                    processing=processing, redis=redis)

    # ------------------------------------------------------------ system

    async def overview(self) -> Overview:
        return await self._system.overview()

    async def job_report(self) -> Mapping[str, Any]:
        return await self._system.job_report()

    def configuration(self) -> Mapping[str, Any]:
        return self._system.configuration()

    # ------------------------------------------------------------ orders

    async def search_orders(self, query: OrderQuery) -> OrderPage:
        return await self._orders.search_orders(query)

    async def order_detail(self, order_id: str) -> OrderDetail:
        return await self._orders.order_detail(order_id)

    async def moderation_queue(self, limit: int = 100, after: str | None = None) -> OrderPage:
        return await self._orders.moderation_queue(limit, after)

    async def approve(self, actor: Actor, order_id: str) -> Order:
        return await self._orders.approve(actor, order_id)

    async def approve_many(self, actor: Actor, order_ids: Sequence[str]) -> Mapping[str, str | None]:
        return await self._orders.approve_many(actor, order_ids)

    async def reject(self, actor: Actor, order_id: str, reason: str) -> Order:
        return await self._orders.reject(actor, order_id, reason)

    async def cancel(self, actor: Actor, order_id: str, reason: str = "") -> Order:
        return await self._orders.cancel(actor, order_id, reason)

    async def retry_failed(self, actor: Actor, order_id: str) -> tuple[str, ...]:
        return await self._orders.retry_failed(actor, order_id)

    async def subscriptions(self) -> tuple[SubscriptionView, ...]:
        return await self._orders.subscriptions()

    async def timeslot(self, actor: Actor, collection_id: str, timestamp: str, force: bool = False) -> tuple[str, ...]:
        return await self._orders.timeslot(actor, collection_id, timestamp, force)

    # ------------------------------------------------------------ users

    async def users(self) -> tuple[UserView, ...]:
        return await self._users.users()

    async def user(self, name: str) -> UserView:
        return await self._users.user(name)

    async def is_operator(self, name: str) -> bool:
        return await self._users.is_operator(name)

    async def add_user(self, actor: Actor, name: str, password: str, *, group: str = "default",
                       admin: bool = False, email: str = "") -> tuple[UserView, tuple[str, ...]]:
        return await self._users.add_user(actor, name, password, group=group, admin=admin, email=email)

    async def set_user(self, actor: Actor, name: str, *, group: str | None = None, admin: bool | None = None,
                       email: str | None = None, disabled: bool | None = None) -> UserView:
        return await self._users.set_user(actor, name, group=group, admin=admin, email=email, disabled=disabled)

    async def set_password(self, actor: Actor, name: str, password: str) -> tuple[str, ...]:
        return await self._users.set_password(actor, name, password)

    async def delete_user(self, actor: Actor, name: str) -> None:
        await self._users.delete_user(actor, name)

    # ------------------------------------------------------------ audit

    async def audit(self, limit: int = 100, before: str | None = None) -> tuple[AuditEntry, ...]:
        return await self._trail.audit(limit, before)

    async def record(self, actor: Actor, action: str, target: str = "", detail: str = "") -> None:
        await self._trail.record(actor, action, target, detail)
