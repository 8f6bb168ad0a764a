"""Accounts in an LDAP directory ([ldap]), checked with ldaptor's client.

ldaptor's own ``LDAPBindingChecker`` is not used: it pastes the user name
into a filter string unescaped (the name ``*`` logs in as somebody), never
unbinds, and breaks on Python 3.12 (notes/twisted-stack.md §1.2). Here:

- an empty password is refused before the directory is asked (an LDAP bind
  with a DN and no password is an anonymous bind, which succeeds);
- the user's entry is found either from a DN template (``uid={user},ou=...``,
  the name escaped as RFC 4514 asks) or by a search for
  ``user_attribute=name`` built as a filter object, never as text, bound as
  the service account (or anonymously); exactly one entry must match;
- the password is proved by binding as that entry;
- the oseod group comes from the directory groups (groupOfNames or
  groupOfUniqueNames under ``group_base``) that list the entry as a member:
  the first of ``[ldap.groups]`` (group DN = oseod group) that does; members
  of an ``admin_groups`` group are oseod administrators;
- ``ldaps://`` verifies the server's certificate and host name
  (service-identity), against ``ca_file`` or the system's CAs;
- every connection is unbound and closed, whatever happened, and the whole
  check is bounded by ``timeout``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, endpoints, ssl
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from ..config import LdapConfig
from ..reactors import IDaemonReactor
from ..trust import trust_root
from .account import Account, KnownUser
from .checkers import LoginRecorder, SuccessCache, UnknownUser, login_name, record_login

with warnings.catch_warnings():
    # ldaptor 21.2 still uses pyparsing's camelCase names and imports crypt.
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldaptor.protocols import pureldap
    from ldaptor.protocols.ldap import ldapclient, ldaperrors, ldapsyntax

_REFUSED = (ldaperrors.LDAPInvalidCredentials, ldaperrors.LDAPUnwillingToPerform,
            ldaperrors.LDAPInappropriateAuthentication, ldaperrors.LDAPNoSuchObject,
            ldaperrors.LDAPInvalidDNSyntax)


class LdapConfigError(ValueError):
    pass


def escape_dn_value(value: str) -> str:
    """``value`` as one attribute value of a DN (RFC 4514 §2.4)."""
    out = []
    for i, char in enumerate(value):
        if char in ',+"\\<>;=' or (char == "#" and i == 0) or (char == " " and i in (0, len(value) - 1)):
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)


def _equal(attribute: str, value: str) -> Any:
    return pureldap.LDAPFilter_equalityMatch(
        attributeDesc=pureldap.LDAPAttributeDescription(value=attribute),
        assertionValue=pureldap.LDAPAssertionValue(value=value))


def _texts(values: Iterable[Any]) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def _same_dn(a: str, b: str) -> bool:
    # Enough for DNs written the same way up to case and blanks after commas,
    # which is how operators copy them from their directory.
    def norm(dn: str) -> str:
        return ",".join(part.strip().lower() for part in dn.split(","))

    return norm(a) == norm(b)


@implementer(ICredentialsChecker)
class LdapChecker:
    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, settings: LdapConfig, reactor: IDaemonReactor, cache_seconds: float = 60.0, clock: IReactorTime | None = None, *,
                 logins: LoginRecorder | None = None) -> None:
        self._settings = settings
        self._logins = logins
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        self._cache: SuccessCache[Account] = SuccessCache(cache_seconds, self._clock)
        self._endpoint: IStreamClientEndpoint | None = None

    def start(self) -> None:
        """Check the settings and read the CA file: LdapConfigError stops the
        daemon's start. The directory itself is not asked: a directory down
        must not keep local accounts from logging in."""
        self._endpoint = self._make_endpoint()

    def _make_endpoint(self) -> IStreamClientEndpoint:
        parts = urlsplit(self._settings.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise LdapConfigError(f"ldap.url must be ldap://HOST[:PORT] or ldaps://HOST[:PORT] "
                                  f"(got {self._settings.url!r})")
        if self._settings.user_dn_template and "{user}" not in self._settings.user_dn_template:
            raise LdapConfigError("ldap.user_dn_template must contain {user}")
        host = parts.hostname
        port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        endpoint: IStreamClientEndpoint = endpoints.HostnameEndpoint(self._reactor, host, port,
                                                                     timeout=self._settings.timeout)
        if parts.scheme == "ldaps":
            endpoint = endpoints.wrapClientTLS(ssl.optionsForClientTLS(host, trustRoot=self._trust_root()), endpoint)
        return endpoint

    def _trust_root(self) -> Any:
        try:
            return trust_root(self._settings.ca_file, "ldap.ca_file")
        except ValueError as e:
            raise LdapConfigError(str(e)) from None

    def requestAvatarId(self, credentials: IUsernamePassword) -> defer.Deferred[KnownUser]:  # type: ignore[override]
        return defer.Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> KnownUser:
        name, name_bytes, password = login_name(credentials)
        cached = self._cache.get(name_bytes, password)
        if cached is not None:
            return KnownUser(cached)
        checking = defer.Deferred.fromCoroutine(self._ask_directory(name, password))
        checking.addTimeout(self._settings.timeout, self._clock)
        try:
            account = await checking
        except defer.TimeoutError:
            raise ConnectionError(f"no answer from {self._settings.url} within {self._settings.timeout:g} s") from None
        self._cache.remember(name_bytes, password, account)
        await record_login(self._logins, name, "ldap", self._clock.seconds(), self.log, account)
        return KnownUser(account)

    async def _ask_directory(self, name: str, password: bytes) -> Account:
        settings = self._settings
        if self._endpoint is None:
            raise ConnectionError("the LDAP checker was not started")
        client = await endpoints.connectProtocol(self._endpoint, ldapclient.LDAPClient())
        try:
            if settings.user_dn_template:
                dn = settings.user_dn_template.replace("{user}", escape_dn_value(name))
                await self._bind(client, dn, password, name)
                entry = await self._one(client, dn, pureldap.LDAPFilterMatchAll, pureldap.LDAP_SCOPE_baseObject)
            else:
                if settings.service_dn:
                    try:
                        await client.bind(settings.service_dn, settings.service_password)
                    except _REFUSED:
                        raise ConnectionError(f"the service account {settings.service_dn} cannot bind") from None
                entry = await self._one(client, settings.user_base, _equal(settings.user_attribute, name),
                                        pureldap.LDAP_SCOPE_wholeSubtree)
                if entry is None:
                    raise UnknownUser("wrong user name or password")
                dn = entry.dn.getText()
            groups = await self._groups(client, dn) if settings.group_base else []
            if not settings.user_dn_template:
                # Last: the groups were read with the service account's rights.
                await self._bind(client, dn, password, name)
        finally:
            await self._close(client)
        email = _texts(entry.get(settings.email_attribute, ())) if entry is not None else []
        group = next((oseod for directory, oseod in settings.groups.items()
                      if any(_same_dn(directory, g) for g in groups)), "default")
        admin = any(_same_dn(a, g) for a in settings.admin_groups for g in groups)
        return Account(name=name, group=group, admin=admin, email=email[0] if email else "")

    async def _bind(self, client: Any, dn: str, password: bytes, name: str) -> None:
        try:
            await client.bind(dn, password)
        except _REFUSED:
            self.log.info("login refused for {user} (LDAP)", user=name)
            raise UnauthorizedLogin("wrong user name or password") from None

    async def _one(self, client: Any, base: str, what: Any, scope: int) -> Any:
        try:
            found = await ldapsyntax.LDAPEntry(client, base).search(
                filterObject=what, scope=scope, sizeLimit=2, attributes=[self._settings.email_attribute])
        except ldaperrors.LDAPNoSuchObject:
            return None
        except ldaperrors.LDAPSizeLimitExceeded:
            raise UnauthorizedLogin("the user name matches several directory entries") from None
        if len(found) > 1:
            raise UnauthorizedLogin("the user name matches several directory entries")
        return found[0] if found else None

    async def _groups(self, client: Any, dn: str) -> list[str]:
        member_of = pureldap.LDAPFilter_or([_equal("member", dn), _equal("uniqueMember", dn)])
        try:
            found = await ldapsyntax.LDAPEntry(client, self._settings.group_base).search(
                filterObject=member_of, attributes=["1.1"], sizeLimit=1000)
        except ldaperrors.LDAPNoSuchObject:
            return []
        return [entry.dn.getText() for entry in found]

    @staticmethod
    async def _close(client: Any) -> None:
        try:
            if client.connected:
                client.unbind()
        except Exception:
            pass
        if client.transport is not None:
            client.transport.loseConnection()
