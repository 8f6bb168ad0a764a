"""Which collections exist, and which of them a given caller may see."""

from __future__ import annotations

from ..config import CollectionConfig, Config
from ..model.accounts import Account


class Catalogue:
    def __init__(self, config: Config) -> None:
        self._config = config

    @property
    def collections(self) -> tuple[CollectionConfig, ...]:
        return self._config.collections

    def visible_to(self, account: Account | None) -> tuple[CollectionConfig, ...]:
        """Collections without a group restriction are public; restricted ones
        are shown to members of a listed group and to administrators."""
        return tuple(c for c in self._config.collections if self.may_see(account, c))

    @staticmethod
    def may_see(account: Account | None, collection: CollectionConfig) -> bool:
        if not collection.groups:
            return True
        return account is not None and (account.admin or account.group in collection.groups)

    def offers(self, order_type: str) -> bool:
        return any(order_type in c.order_types for c in self._config.collections)
