"""Managing user accounts: the one place that the admin API, oseoctl and
(later) the console go through to add, change or remove a user."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorThreads

from ..auth.passwords import hash_password
from ..auth.secrets import SecretBox
from ..model.users import Login, UserRecord, check_group_name, check_user_name
from ..store.users import UserStore
from ..threads import ThreadPools

RECOMMENDED_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def password_warnings(password: str) -> list[str]:
    """Advice for the operator who sets ``password``; it is accepted all the same."""
    if len(password) < RECOMMENDED_PASSWORD_LENGTH:
        return [f"the password is shorter than {RECOMMENDED_PASSWORD_LENGTH} characters"]
    return []


def check_email(email: str) -> str:
    if email and ("@" not in email or any(c.isspace() for c in email) or len(email) > 254):
        raise ValueError(f"invalid e-mail address {email!r}")
    return email


class AccountService:
    """``secrets``: when given (``[auth] password_digest = true``), every password
    set here is also stored sealed, for PasswordDigest logins; when None, none
    is, and setting a password removes the account's old secret."""

    def __init__(self, users: UserStore, reactor: IReactorThreads, min_password_length: int = 1,
                 secrets: SecretBox | None = None, *, threads: ThreadPools) -> None:
        self._users = users
        self._reactor = reactor
        self._threads = threads
        self._min_password_length = min_password_length
        self._secrets = secrets

    def check_password(self, password: str) -> str:
        if len(password) < self._min_password_length:
            raise ValueError(f"password too short: at least {self._min_password_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")
        if any(c in password for c in "\r\n\0"):
            raise ValueError("the password contains a line break or NUL character")
        return password

    async def _hash(self, password: str) -> str:
        # scrypt takes tens of milliseconds of CPU: keep it off the reactor.
        return await self._threads.on_cpu(hash_password, self.check_password(password))

    def _digest_secret(self, name: str, password_hash: str, password: str) -> str:
        return self._secrets.seal(name, password_hash, password) if self._secrets is not None else ""

    async def add(self, name: str, password: str, *, group: str = "default", admin: bool = False,
                  email: str = "") -> UserRecord:
        check_user_name(name)
        check_group_name(group)
        check_email(email)
        password_hash = await self._hash(password)
        record = UserRecord(name=name, password_hash=password_hash, group=group, admin=admin, email=email,
                            digest_secret=self._digest_secret(name, password_hash, password))
        await self._users.create(record)
        created = await self._users.get(name)
        assert created is not None
        return created

    async def set_password(self, name: str, password: str) -> None:
        password_hash = await self._hash(password)
        # Hash and secret change in one atomic update; with no secret, the old one goes.
        await self._users.update(name, password_hash=password_hash,
                                 digest_secret=self._digest_secret(name, password_hash, password))

    async def change(self, name: str, *, group: str | None = None, admin: bool | None = None,
                     email: str | None = None, disabled: bool | None = None) -> UserRecord:
        if email is not None:
            check_email(email)
        await self._users.update(name, group=group, admin=admin, email=email, disabled=disabled)
        record = await self._users.get(name)
        assert record is not None
        return record

    async def remove(self, name: str) -> None:
        await self._users.delete(name)
        await self._users.forget_login(name)

    async def logins(self) -> dict[str, Login]:
        """The last real login of each user who has logged in (any source)."""
        return await self._users.logins()

    async def login(self, name: str) -> Login | None:
        """The last real login of ``name``, if any."""
        return await self._users.login(name)

    async def get(self, name: str) -> UserRecord | None:
        return await self._users.get(name)

    async def list(self) -> list[UserRecord]:
        return await self._users.list()
