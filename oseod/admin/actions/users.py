"""Operators' actions on users: the Redis accounts they manage, and the
password-file and LDAP users they can see but change elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from twisted.logger import Logger

from ...core.accounts import AccountService, password_warnings
from ...model.users import FileAccount, Login, NoSuchUser, UserExists, UserRecord
from .audit import ActionRefused, Actor, AuditTrail, Refusal


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


class UserActions:
    log = Logger()

    def __init__(self, *, accounts: AccountService, trail: AuditTrail,
                 file_accounts: Callable[[], Sequence[FileAccount]] | None = None) -> None:
        self._accounts = accounts
        self._trail = trail
        self._file_accounts = file_accounts

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
        await self._trail.record(actor, "user.add", name, _changes(group=group, admin=admin, email=email))
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
        await self._trail.record(actor, action, name, _changes(group=group, admin=admin, email=email, disabled=disabled))
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
        await self._trail.record(actor, "user.password", name)
        return tuple(password_warnings(password))

    async def delete_user(self, actor: Actor, name: str) -> None:
        await self._editable(name)
        try:
            await self._accounts.remove(name)
        except NoSuchUser:
            raise ActionRefused(Refusal.NOT_FOUND, f"no user {name[:80]}") from None
        await self._trail.record(actor, "user.delete", name)

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
