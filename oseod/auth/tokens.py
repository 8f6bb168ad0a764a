"""WS-Security UsernameTokens (UsernameToken Profile 1.0) through the one Portal.

The HTTP layer reads ``wsse:UsernameToken`` and calls :func:`login_with_token`,
which picks the credentials for the token's shape:

* PasswordText, no Nonce, no Created: the stock ``UsernamePassword``, checked
  by :class:`~oseod.auth.checkers.UserStoreChecker` like HTTP Basic and FTP.
* PasswordText with a Nonce and/or a Created: :class:`UsernamePasswordToken`,
  checked by :class:`TextTokenChecker`. The client asked for freshness and
  replay protection, so it gets them: refusing a stale or replayed token is
  the point of sending those elements. The rules live in a checker (not in
  the HTTP layer) because they need the clock and the nonce store, and so
  that every transport that ever passes a token gets them; the password
  itself is still checked by the one ``UserStoreChecker`` (delegation), with
  its scrypt cache and its decoy for unknown users.
* PasswordDigest (Base64(SHA-1(nonce + created + password))): :class:`UsernameDigest`,
  checked by :class:`DigestChecker` against the password kept encrypted as the
  account's digest secret (see :mod:`oseod.auth.secrets`).

Both token checkers refuse a Created older than ``max_age`` seconds or more
than ``max_age`` seconds ahead of our clock (skew), and a nonce already used
by the same user while it could still be fresh.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import math
import os
import re
from typing import Any

import attrs
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials, UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Attribute, implementer

from ..store.nonces import NonceStore
from ..store.users import USER_NAME, UserStore
from .account import Account, IAccount, KnownUser, account_of
from .checkers import NotAGuess
from .secrets import SecretBox

DEFAULT_MAX_AGE = 300.0
MAX_NONCE_BYTES = 256
MAX_CREATED_CHARS = 64
WRONG = "wrong user name or password"

log = Logger()


class IUsernameDigest(ICredentials):
    """A WS-Security UsernameToken with a PasswordDigest."""

    username = Attribute("The user name (str).")
    nonce = Attribute("The Nonce, base64-decoded (bytes).")
    created = Attribute("The Created timestamp exactly as sent (str): the digest covers its text.")
    digest = Attribute("The PasswordDigest as sent: base64 of 20 bytes (str).")


class IUsernamePasswordToken(ICredentials):
    """A WS-Security UsernameToken with a PasswordText and a Nonce and/or a Created.

    Deliberately not an ``IUsernamePassword``: the Portal would hand it to the
    first checker of that interface, which knows nothing of freshness."""

    username = Attribute("The user name (str).")
    password = Attribute("The password (str).")
    nonce = Attribute("The Nonce, base64-decoded (bytes), or None.")
    created = Attribute("The Created timestamp as sent (str), or None.")


@implementer(IUsernameDigest)
@attrs.frozen
class UsernameDigest:
    username: str
    nonce: bytes = attrs.field(repr=False)
    created: str
    digest: str = attrs.field(repr=False)


@implementer(IUsernamePasswordToken)
@attrs.frozen
class UsernamePasswordToken:
    username: str
    password: str = attrs.field(repr=False)
    nonce: bytes | None = attrs.field(default=None, repr=False)
    created: str | None = None


def password_digest(nonce: bytes, created: str, password: bytes) -> bytes:
    """The raw PasswordDigest of the profile (SHA-1 is what it specifies)."""
    return hashlib.sha1(nonce + created.encode("utf-8") + password).digest()


# xs:dateTime with a mandatory time zone: a Created without one means no
# definite instant. Explicitly ASCII: \d would match any Unicode digit.
_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)",
    re.ASCII,
)


def parse_created(text: str) -> float:
    """The instant (POSIX seconds) of an xs:dateTime such as
    ``2026-05-09T07:35:25.123Z`` or ``2026-05-09T09:35:25+02:00``;
    ValueError when it is not one, or has no time zone."""
    if len(text) > MAX_CREATED_CHARS:
        raise ValueError("too long")
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("not an xs:dateTime with a time zone")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = float(match.group(7)) if match.group(7) else 0.0
    zone = match.group(8)
    extra_day = 0
    if hour == 24:  # xs:dateTime allows 24:00:00, the end of the day
        if minute or second or fraction:
            raise ValueError("hour 24 is only allowed as 24:00:00")
        hour, extra_day = 0, 1
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60
            and second < 60):
        raise ValueError("field out of range")
    offset = 0
    if zone != "Z":
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_minutes >= 60 or zone_hours * 60 + zone_minutes > 14 * 60:
            raise ValueError("time zone out of range")
        offset = (zone_hours * 60 + zone_minutes) * 60 * (-1 if zone[0] == "-" else 1)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds + extra_day * 86400 - offset + fraction


class BadToken(NotAGuess):
    """A token refused for its form, freshness or reuse, not for its password:
    no failed login for the lock-out (a client with a skewed clock is not
    locked out, nor is a replay of a token whose password was right)."""


def _refuse(reason: str, user: str, *, wrong_password: bool = False) -> UnauthorizedLogin:
    # The user name is logged only when it is a valid one: anything else is
    # attacker-chosen text with nothing to tell the operator.
    log.info("UsernameToken login refused for {user}: {reason}",
             user=user if USER_NAME.match(user) else "(invalid name)", reason=reason)
    return UnauthorizedLogin(reason) if wrong_password else BadToken(reason)


class TokenRules:
    """Freshness of Created and single use of Nonce, shared by both token checkers."""

    def __init__(self, nonces: NonceStore, clock: IReactorTime, max_age: float = DEFAULT_MAX_AGE) -> None:
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self._nonces = nonces
        self._clock = clock
        self.max_age = max_age
        # A token whose Created is max_age ahead of our clock stays acceptable
        # until 2 * max_age from now: its nonce must be remembered that long
        # (plus one second, as Redis expiry is in whole seconds).
        self.nonce_ttl = math.ceil(2 * max_age) + 1

    def check_created(self, username: str, created: str) -> None:
        try:
            instant = parse_created(created.strip())
        except ValueError:
            raise _refuse("Created is not an xs:dateTime with a time zone", username) from None
        now = self._clock.seconds()
        if instant < now - self.max_age:
            raise _refuse(f"the token is stale: Created is more than {self.max_age:g} seconds ago", username)
        if instant > now + self.max_age:
            raise _refuse(f"Created is more than {self.max_age:g} seconds in the future: check the client's clock",
                          username)

    @staticmethod
    def check_nonce(username: str, nonce: bytes) -> None:
        if not 1 <= len(nonce) <= MAX_NONCE_BYTES:
            raise _refuse(f"the Nonce must have 1 to {MAX_NONCE_BYTES} bytes", username)

    async def claim_nonce(self, username: str, nonce: bytes) -> None:
        # Redis sees a hash of (user, nonce): bounded keys, no client bytes in
        # key names; nonces are per user, so no user can interfere with another's.
        nonce_id = hashlib.sha256(b"oseod nonce\0" + username.encode("utf-8") + b"\0" + nonce).hexdigest()
        if not await self._nonces.first_use(nonce_id, self.nonce_ttl):
            raise _refuse("the Nonce was already used: a replayed token", username)


@implementer(ICredentialsChecker)
class DigestChecker:
    """Checks PasswordDigest tokens against the accounts' digest secrets.
    ``secrets`` None means ``[auth] password_digest = false``: every digest
    token is refused, saying so."""

    credentialInterfaces = (IUsernameDigest,)

    def __init__(self, users: UserStore, nonces: NonceStore, secrets: SecretBox | None, clock: IReactorTime,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._users = users
        self._secrets = secrets
        self._rules = TokenRules(nonces, clock, max_age)
        self._decoy: str | None = None

    def requestAvatarId(self, credentials: IUsernameDigest) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernameDigest) -> KnownUser:
        name: str = credentials.username
        if self._secrets is None:
            raise _refuse("PasswordDigest is disabled on this server: send a PasswordText", name)
        if not name:
            raise _refuse("empty user name", name)
        if not credentials.nonce or not credentials.created:
            raise _refuse("a PasswordDigest token must carry a Nonce and a Created", name)
        self._rules.check_nonce(name, credentials.nonce)
        # Everything up to here depends on the token only, not on the account,
        # so telling the client exactly what is wrong reveals nothing.
        self._rules.check_created(name, credentials.created)
        try:
            given: bytes | None = base64.b64decode(credentials.digest.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = None

        # From here an unknown user, an account without a secret and a wrong
        # digest cost the same work (one HGETALL, one AES-GCM open, one SHA-1)
        # and get the same answer, so the digest path cannot enumerate accounts.
        record = await self._users.get(name)
        if self._decoy is None:
            self._decoy = self._secrets.seal("", "", os.urandom(16).hex())
        password: bytes | None = None
        if record is not None and record.digest_secret:
            password = self._secrets.unseal(name, record.password_hash, record.digest_secret)
            if password is None:
                log.warn("the digest secret of {user} cannot be opened (secret.key replaced, or the record "
                         "damaged): PasswordDigest fails for this account until its password is set again", user=name)
        else:
            self._secrets.unseal("", "", self._decoy)
        expected = password_digest(credentials.nonce, credentials.created, password or b"")
        matched = given is not None and hmac.compare_digest(expected, given)
        if password is None or not matched:
            if record is not None and not record.digest_secret:
                log.info("{user} has no digest secret (password set while password_digest was off): "
                         "PasswordText only, until the password is set again", user=name)
            raise _refuse(WRONG, name, wrong_password=True)

        # The nonce is claimed LAST, only once the digest has proved that the
        # sender knows the password. Claiming it earlier would let anybody who
        # sees (or guesses) a legitimate client's nonce burn it with a wrong
        # digest and make the real request fail as a replay.
        await self._rules.claim_nonce(name, credentials.nonce)
        assert record is not None  # password is None without one
        if record.disabled:  # as the password checker (oseod.auth.checkers) refuses it
            raise _refuse("the account is disabled", name, wrong_password=True)
        return KnownUser(account_of(record))


@implementer(ICredentialsChecker)
class TextTokenChecker:
    """PasswordText tokens that carry a Nonce and/or a Created: the freshness
    rules here, the password by ``passwords`` (the ``UserStoreChecker``)."""

    credentialInterfaces = (IUsernamePasswordToken,)

    def __init__(self, passwords: ICredentialsChecker, nonces: NonceStore, clock: IReactorTime,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._passwords = passwords
        self._rules = TokenRules(nonces, clock, max_age)

    def requestAvatarId(self, credentials: IUsernamePasswordToken) -> defer.Deferred[Any]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePasswordToken) -> Any:
        name: str = credentials.username
        nonce: bytes | None = credentials.nonce
        created: str | None = credentials.created
        if nonce is not None:
            self._rules.check_nonce(name, nonce)
        if created is not None:
            self._rules.check_created(name, created)
        try:
            plain = UsernamePassword(name.encode("utf-8"), credentials.password.encode("utf-8"))
        except UnicodeEncodeError:
            raise _refuse(WRONG, name, wrong_password=True) from None
        avatar_id = await self._passwords.requestAvatarId(plain)
        if nonce is not None:
            # Last, as in DigestChecker: a wrong password never burns a nonce.
            await self._rules.claim_nonce(name, nonce)
        return avatar_id


async def login_with_token(portal: Portal, username: str, password: str, digest: bool, nonce: bytes | None,
                           created: str | None, mind: object = None) -> Account:
    """Log in with a UsernameToken's parts, as the HTTP layer read them:
    ``password`` is the Password element's text (the base64 digest when
    ``digest``), ``nonce`` the Nonce base64-decoded, ``created`` Created's
    text; ``mind`` the Portal's (a :class:`oseod.auth.lockout.Client`).
    Raises UnauthorizedLogin whose message is a one-line reason fit for
    the client's AuthenticationFailed fault (LockedOut when locked out)."""
    credentials: object
    if digest:
        if not nonce or not created:
            raise UnauthorizedLogin("a PasswordDigest token must carry a Nonce and a Created")
        credentials = UsernameDigest(username=username, nonce=nonce, created=created, digest=password)
    elif nonce is None and created is None:
        try:
            credentials = UsernamePassword(username.encode("utf-8"), password.encode("utf-8"))
        except UnicodeEncodeError:
            raise UnauthorizedLogin(WRONG) from None
    else:
        credentials = UsernamePasswordToken(username=username, password=password, nonce=nonce, created=created)
    try:
        _, avatar, _ = await portal.login(credentials, mind, IAccount)
    except UnhandledCredentials:
        raise UnauthorizedLogin("this server does not accept this kind of UsernameToken") from None
    assert isinstance(avatar, Account)
    return avatar
