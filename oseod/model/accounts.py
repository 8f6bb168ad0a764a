"""What a logged-in user is, whatever transport they came through."""

from __future__ import annotations

import attrs
from zope.interface import Interface

from .users import UserRecord


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
