"""The avatar ids of the checkers. What a logged-in user is (:class:`Account`,
:class:`IAccount`) lives in :mod:`oseod.model.accounts`, which every room
reads; named here too for the auth package's own modules."""

from __future__ import annotations

import attrs

from ..model.accounts import Account, IAccount, account_of

__all__ = ["Account", "IAccount", "KnownUser", "account_of"]


@attrs.frozen
class KnownUser:
    """The avatar id of a checker that has just read the account it checked:
    the realm takes the account from it instead of reading it again."""

    account: Account

    def __str__(self) -> str:
        return self.account.name
