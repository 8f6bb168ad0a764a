"""The realm behind the one Portal: turns an authenticated name into the
avatar each transport asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer
from zope.interface.interface import InterfaceClass

from ..store.users import UserStore
from .account import Account, IAccount, KnownUser, account_of

AvatarFactory = Callable[[Account], Any]


def _no_logout() -> None:
    pass


@implementer(IRealm)
class AccountRealm:
    """Every transport gets its avatar from the same :class:`Account`. The
    transports register their own avatar factories (FTP a shell, ...), so
    this package does not depend on them."""

    def __init__(self, users: UserStore) -> None:
        self._users = users
        self._factories: dict[InterfaceClass, AvatarFactory] = {}

    def register(self, interface: InterfaceClass, factory: AvatarFactory) -> None:
        self._factories[interface] = factory

    async def account(self, name: str) -> Account:
        record = await self._users.get(name)
        if record is None:
            # Authenticated by a checker with no local record (e.g. a directory).
            return Account(name=name)
        return account_of(record)

    def requestAvatar(self, avatarId: Any, mind: object, *interfaces: InterfaceClass) -> Any:
        """The avatar's (interface, avatar, logout), or a Deferred of it (IRealm allows either)."""
        if isinstance(avatarId, KnownUser):
            # The checker read the account: nothing to wait for, and the
            # Portal's chain goes on without a Deferred of this one's.
            return self._for(avatarId.account, interfaces)
        return defer.Deferred.fromCoroutine(self._avatar(avatarId, interfaces))

    async def _avatar(self, avatar_id: Any, interfaces: tuple[InterfaceClass, ...]) -> tuple[Any, Any, Callable[[], None]]:
        account = await self.account(avatar_id.decode("utf-8") if isinstance(avatar_id, bytes) else str(avatar_id))
        return self._for(account, interfaces)

    def _for(self, account: Account, interfaces: tuple[InterfaceClass, ...]) -> tuple[Any, Any, Callable[[], None]]:
        for interface in interfaces:
            if interface is IAccount:
                return IAccount, account, _no_logout
            factory = self._factories.get(interface)
            if factory is not None:
                avatar = factory(account)
                return interface, avatar, getattr(avatar, "logout", _no_logout)
        raise NotImplementedError(f"no avatar for {interfaces}")
