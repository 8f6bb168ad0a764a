"""SFTP logins by public key: our own ``ISSHPrivateKey`` checker, since
conch's ``SSHPublicKeyChecker`` reads its key database synchronously (no
Redis) and answers PK_OK for any key."""

from __future__ import annotations

from typing import Any

from twisted.conch.error import ValidPublicKey
from twisted.conch.ssh.keys import BadKeyError, Key
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ..store.sshkeys import SshKeyStore, fingerprint
from ..store.users import UserStore
from .account import KnownUser, account_of
from .checkers import NotAGuess


@implementer(ICredentialsChecker)
class SshKeyChecker:
    """A key stored for the user (oseoctl user key add) and a signature
    made with it. A query without signature ("would this key do?") gets
    PK_OK (conch's ValidPublicKey) only for a stored key; an unknown key
    asked about is no guess of a secret, so it does not count towards the
    lock-out, but a bad signature does, like a wrong password."""

    credentialInterfaces = (ISSHPrivateKey,)
    log = Logger()

    def __init__(self, keys: SshKeyStore, users: UserStore) -> None:
        self._keys = keys
        self._users = users

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[object]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: Any) -> object:
        raw = credentials.username
        try:
            name = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            offered = Key.fromString(credentials.blob)
        except (UnicodeDecodeError, BadKeyError, ValueError):
            raise NotAGuess("not a key this server can check") from None
        stored = await self._keys.find(name, fingerprint(offered))
        if stored is None or Key.fromString(stored.line.encode("ascii")).blob() != offered.blob():
            if credentials.signature is None:
                raise NotAGuess("no such key for this user")
            raise UnauthorizedLogin("no such key for this user")
        if credentials.signature is None:
            raise ValidPublicKey()
        if not offered.verify(credentials.signature, credentials.sigData):
            raise UnauthorizedLogin("bad signature")
        record = await self._users.get(name)
        if record is None:
            return name.encode("utf-8")  # a directory's user with a key: the realm makes its account
        if record.disabled:
            self.log.info("SFTP key login refused for {user}: the account is disabled", user=name)
            raise UnauthorizedLogin("the account is disabled")
        return KnownUser(account_of(record))
