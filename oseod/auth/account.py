"""What a logged-in user is, whatever transport they came through."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from zope.interface import Interface

if TYPE_CHECKING:
    from ..store.users import UserRecord


class IAccount(Interface):
    """The avatar interface for "who is this": an :class:`Account`."""


@attrs.frozen
class Account:
    name: str
    group: str = "default"
    admin: bool = False
    email: str = ""


def account_of(record: UserRecord) -> Account:
    return Account(name=record.name, group=record.group, admin=record.admin, email=record.email)


@attrs.frozen
class KnownUser:
    """The avatar id of a checker that has just read the account it checked:
    the realm takes the account from it instead of reading it again."""

    account: Account

    def __str__(self) -> str:
        return self.account.name
