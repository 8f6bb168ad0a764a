"""Accounts in a password file ([auth] password_file), htpasswd style.

One account per line, ``name:hash`` with an optional ``:group`` (the oseod
group of the account; "default" without one); blank lines and lines starting
with ``#`` are skipped. The hash is either bcrypt, as ``htpasswd -B`` writes
it (``$2y$``, ``$2b$``, ``$2a$``), or oseod's own scrypt encoding
(``oseoctl user hash`` prints one). Weak schemes that htpasswd also knows
(MD5 ``$apr1$``, ``{SHA}``, crypt, plain text) are refused when the file is
read, naming the line: anybody who reads such a file can recover the
passwords.

The file is read again when it changes (its size or modification time), so
an operator edits it without a restart; a file that became unreadable or
malformed keeps the accounts last read, and says why in the log once.
"""

from __future__ import annotations

import os
import re

import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..model.users import FileAccount
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .account import Account, KnownUser
from .checkers import LoginRecorder, SuccessCache, UnknownUser, login_name, record_login
from .passwords import verify_password

_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_SCRYPT = re.compile(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PasswordFileError(ValueError):
    """The file cannot be used; the text names the line."""


def parse_password_file(text: str, path: str = "password file") -> dict[str, FileAccount]:
    accounts: dict[str, FileAccount] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        name, sep, rest = line.partition(":")
        if not sep or not name:
            raise PasswordFileError(f"{where}: not NAME:HASH[:GROUP]")
        # A bcrypt or scrypt hash holds no colon, so the group is what follows it.
        hashed, _, group = rest.partition(":")
        if not (_BCRYPT.fullmatch(hashed) or _SCRYPT.fullmatch(hashed)):
            raise PasswordFileError(f"{where}: the password of {name!r} is not a bcrypt (htpasswd -B) or oseod "
                                    f"scrypt hash; weaker schemes are refused")
        if group and not _GROUP.fullmatch(group):
            raise PasswordFileError(f"{where}: group {group!r} must be letters, digits, _ . or -")
        if name in accounts:
            raise PasswordFileError(f"{where}: {name!r} is listed twice")
        accounts[name] = FileAccount(name, hashed, group or "default")
    return accounts


def check_hash(password: bytes, hashed: str) -> bool:
    if hashed.startswith("scrypt$"):
        return verify_password(password, hashed)
    try:
        # bcrypt reads no more than 72 bytes; htpasswd -B cut the password there too.
        return bcrypt.checkpw(password[:72], hashed.encode("ascii"))
    except ValueError:
        return False


@implementer(ICredentialsChecker)
class PasswordFileChecker:
    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, path: str, reactor: IDaemonReactor, cache_seconds: float = 60.0, clock: IReactorTime | None = None, *,
                 threads: ThreadPools, logins: LoginRecorder | None = None) -> None:
        self._path = path
        self._reactor = reactor
        self._threads = threads
        self._clock = clock if clock is not None else reactor
        self._logins = logins
        self._cache: SuccessCache[str] = SuccessCache(cache_seconds, self._clock)
        self._accounts: dict[str, FileAccount] = {}
        self._seen: tuple[int, int] | None = None
        self._complaint: str | None = None

    def start(self) -> None:
        """Read the file; PasswordFileError when it cannot be used (this
        stops the daemon's start, naming the line)."""
        self.load()

    def load(self) -> None:
        try:
            stat = os.stat(self._path)
            with open(self._path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise PasswordFileError(f"cannot read {self._path}: {getattr(e, 'strerror', None) or e}") from None
        self._accounts = parse_password_file(text, self._path)
        self._seen = (stat.st_mtime_ns, stat.st_size)

    def _refresh(self) -> None:
        try:
            stat = os.stat(self._path)
            if (stat.st_mtime_ns, stat.st_size) == self._seen:
                return
            self.load()
        except (OSError, PasswordFileError) as e:
            text = str(e)
            if text != self._complaint:
                self._complaint = text
                self.log.error("password file not reloaded, the accounts last read stay: {problem}", problem=text)
            return
        self._complaint = None
        self.log.info("password file {path} reloaded: {count} accounts", path=self._path, count=len(self._accounts))

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> KnownUser:
        name, name_bytes, password = login_name(credentials)
        self._refresh()
        account = self._accounts.get(name)
        if account is None:
            raise UnknownUser("wrong user name or password")
        if self._cache.get(name_bytes, password) != account.hash:
            matched = await self._cache.once(name_bytes, password, lambda: self._threads.on_cpu(
                check_hash, password, account.hash))
            if not matched:
                self.log.info("login refused for {user} (password file)", user=name)
                raise UnauthorizedLogin("wrong user name or password")
            self._cache.remember(name_bytes, password, account.hash)
            await record_login(self._logins, name, "file", self._clock.seconds(), self.log)
        return KnownUser(Account(name=name, group=account.group))

    def accounts(self) -> list[FileAccount]:
        """The accounts of the file (read again if it changed), by name."""
        self._refresh()
        return sorted(self._accounts.values(), key=lambda a: a.name)
