"""The LDAP checker against a real OpenLDAP slapd on a loopback port (started
here; see tests/ldap_server.py), alone, in the password chain, and behind the
daemon's FTP and SOAP logins."""

from __future__ import annotations

import ftplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor, task

from oseod.auth.account import Account
from oseod.auth.checkers import PasswordChain, UnknownUser, UserStoreChecker
from oseod.auth.ldap import LdapChecker, LdapConfigError, escape_dn_value
from oseod.config import LdapConfig
from oseod.store.connection import Redis
from oseod.store.users import UserStore
from tests import ldap_server
from tests.daemon import Daemon
from tests.ldap_server import ADMINS, GOLD, GROUPS, PEOPLE, READER, Slapd
from tests.polling import eventually
from tests.test_daemon import oseo_call
from tests.pools import POOLS

pytestmark = pytest.mark.skipif(ldap_server.available() is not None, reason=str(ldap_server.available()))


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    yield server
    server.stop()


async def all_closed(slapd: Slapd) -> None:
    async def none_left() -> bool:
        return slapd.connections() == 0

    await eventually(none_left, 10, "every LDAP connection closed")


def searching(slapd: Slapd, **changes: Any) -> LdapConfig:
    """Search-then-bind with the service account, groups mapped."""
    return attrs.evolve(LdapConfig(url=slapd.url, user_base=PEOPLE, service_dn=READER, service_password="reader-pw",
                                   group_base=GROUPS, groups={GOLD: "gold"}, admin_groups=(ADMINS,), timeout=10.0),
                        **changes)


def checker(config: LdapConfig, clock: Any = None, cache: float = 0.0) -> LdapChecker:
    made = LdapChecker(config, reactor, cache_seconds=cache, clock=clock)
    made.start()
    return made


async def login(check: Any, name: str | bytes, password: str | bytes) -> Account:
    as_bytes = (lambda v: v if isinstance(v, bytes) else v.encode())
    found = await check.requestAvatarId(UsernamePassword(as_bytes(name), as_bytes(password)))
    return found.account


@pytest_twisted.ensureDeferred
async def test_search_then_bind_maps_groups_admins_and_mail(slapd: Slapd) -> None:
    ldap = checker(searching(slapd))
    assert await login(ldap, "alice", "alice-pw") == Account("alice", group="gold", admin=False,
                                                               email="alice@example.org")
    assert await login(ldap, "bob", "bob-pw") == Account("bob", group="default", admin=True)  # groupOfUniqueNames
    assert await login(ldap, "carol", "carol-pw") == Account("carol")
    await all_closed(slapd)


@pytest_twisted.ensureDeferred
async def test_wrong_passwords_unknown_names_and_filter_injection_are_refused(slapd: Slapd) -> None:
    ldap = checker(searching(slapd))
    with pytest.raises(UnauthorizedLogin) as refused:
        await login(ldap, "alice", "bob-pw")
    assert not isinstance(refused.value, UnknownUser)
    for name in ("mallory", "*", "a*", "alice)(uid=*", "*)(|(uid=*"):
        with pytest.raises(UnknownUser):
            await login(ldap, name, "alice-pw")
    with pytest.raises(UnauthorizedLogin, match="empty"):
        await login(ldap, "alice", "")  # an anonymous bind would succeed: never asked
    await all_closed(slapd)


@pytest_twisted.ensureDeferred
async def test_bind_with_a_dn_template_escapes_the_name(slapd: Slapd) -> None:
    ldap = checker(LdapConfig(url=slapd.url, user_dn_template=f"uid={{user}},{PEOPLE}", group_base=GROUPS,
                              groups={GOLD: "gold"}))
    assert escape_dn_value("dave, jr") == "dave\\, jr"
    assert await login(ldap, "dave, jr", "dave, jr-pw") == Account("dave, jr", group="gold")
    assert await login(ldap, "alice", "alice-pw") == Account("alice", group="gold", email="alice@example.org")
    with pytest.raises(UnauthorizedLogin):
        await login(ldap, "alice", "wrong")
    with pytest.raises(UnauthorizedLogin):
        await login(ldap, "alice,ou=people", "alice-pw")  # escaped: no such entry


@pytest_twisted.ensureDeferred
async def test_ldaps_verifies_the_certificate_and_the_host_name(slapd: Slapd) -> None:
    trusted = checker(searching(slapd, url=slapd.tls_url, ca_file=str(slapd.ca_pem)))
    assert (await login(trusted, "alice", "alice-pw")).group == "gold"
    untrusted = checker(searching(slapd, url=slapd.tls_url))  # the system's CAs do not know ours
    with pytest.raises(Exception, match="(?i)certificate|verif|ssl|tls"):
        await login(untrusted, "alice", "alice-pw")
    wrong_name = checker(searching(slapd, url=f"ldaps://127.0.0.1:{slapd.tls_port}", ca_file=str(slapd.ca_pem)))
    with pytest.raises(Exception, match="(?i)certificate|verif|ssl|tls|name|match"):
        await login(wrong_name, "alice", "alice-pw")
    await all_closed(slapd)


def test_bad_settings_stop_the_start(tmp_path: Path) -> None:
    with pytest.raises(LdapConfigError, match="ldap.url"):
        checker(LdapConfig(url="http://example.org", user_base=PEOPLE))
    with pytest.raises(LdapConfigError, match="{user}"):
        checker(LdapConfig(url="ldap://127.0.0.1", user_dn_template="uid=x,dc=org"))
    with pytest.raises(LdapConfigError, match="ca_file"):
        checker(LdapConfig(url="ldaps://localhost", user_base=PEOPLE, ca_file=str(tmp_path / "none.pem")))
    (tmp_path / "empty.pem").write_text("not a certificate")
    with pytest.raises(LdapConfigError, match="no PEM"):
        checker(LdapConfig(url="ldaps://localhost", user_base=PEOPLE, ca_file=str(tmp_path / "empty.pem")))


@pytest_twisted.ensureDeferred
async def test_a_verified_login_is_remembered_and_a_dead_directory_does_not_block_local_users(
        tmp_path: Path, redis: Redis) -> None:
    own = Slapd(tmp_path).start()
    clock = task.Clock()
    try:
        ldap = checker(searching(own), clock=clock, cache=60.0)
        assert (await login(ldap, "alice", "alice-pw")).group == "gold"
    finally:
        own.stop()
    # The directory is gone: the login just verified is remembered...
    assert (await login(ldap, "alice", "alice-pw")).group == "gold"
    with pytest.raises(Exception):
        await login(ldap, "alice", "another-password")  # ...and nothing else.
    clock.advance(61)
    with pytest.raises(Exception):
        await login(ldap, "alice", "alice-pw")

    # In the chain, local accounts still log in and directory users are told to retry.
    users = UserStore(redis)
    from oseod.auth.passwords import hash_password
    from oseod.store.users import UserRecord
    await users.create(UserRecord(name="local", password_hash=hash_password("local-pw")))
    chain = PasswordChain([("redis", UserStoreChecker(users, reactor, 0.0, decoy=False, threads=POOLS)),
                           ("ldap", ldap)])
    assert str(await chain.requestAvatarId(UsernamePassword(b"local", b"local-pw"))) == "local"
    with pytest.raises(UnauthorizedLogin, match="cannot be checked now"):
        await chain.requestAvatarId(UsernamePassword(b"alice", b"alice-pw"))


@pytest_twisted.ensureDeferred
async def test_the_chain_asks_each_source_in_its_order(slapd: Slapd, redis: Redis) -> None:
    from oseod.auth.passwords import hash_password
    from oseod.store.users import UserRecord

    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("local-alice"), group="silver"))
    chain = PasswordChain([("redis", UserStoreChecker(users, reactor, 0.0, decoy=False, threads=POOLS)),
                           ("ldap", checker(searching(slapd)))])
    local = await chain.requestAvatarId(UsernamePassword(b"alice", b"local-alice"))
    assert local.account.group == "silver"  # Redis first
    directory = await chain.requestAvatarId(UsernamePassword(b"alice", b"alice-pw"))
    assert directory.account.group == "gold"  # refused by Redis, accepted by the directory
    with pytest.raises(UnauthorizedLogin, match="wrong user name or password"):
        await chain.requestAvatarId(UsernamePassword(b"alice", b"neither"))
    with pytest.raises(UnauthorizedLogin, match="wrong user name or password"):
        await chain.requestAvatarId(UsernamePassword(b"nobody", b"x"))


@pytest.mark.slow
def test_directory_users_log_in_to_ftp_and_soap(tmp_path: Path, slapd: Slapd) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text(f"""
[auth]
checkers = ["redis", "ldap"]

[ldap]
url = "{slapd.url}"
user_base = "{PEOPLE}"
service_dn = "{READER}"
service_password = "reader-pw"
group_base = "{GROUPS}"
admin_groups = ["{ADMINS}"]

[ldap.groups]
"{GOLD}" = "gold"
""")
    daemon = Daemon(tmp_path / "data", "--config", str(config)).start()
    try:
        with daemon.ftp() as client:
            client.login("carol", "carol-pw")
            assert client.nlst() == []
        with daemon.ftp() as client:
            with pytest.raises(ftplib.error_perm, match="530"):
                client.login("carol", "alice-pw")
        # SOAP: users log in with password USER-password in oseo_call; a
        # directory user made so would need its own: GetStatus of nothing.
        answer = _status_as(daemon, "alice", "alice-pw")
        assert answer.tag.endswith("GetStatusResponse")
        assert "alice-pw" not in daemon.log()
    finally:
        daemon.cleanup()


def _status_as(daemon: Daemon, user: str, password: str) -> Any:
    from tests.oseo_schema import assert_valid
    from tests.test_http_ordering import envelope, token

    payload = ('<GetStatus xmlns="http://www.opengis.net/oseo/1.0" service="OS" version="1.0.0">'
               "<filteringCriteria/><presentation>brief</presentation></GetStatus>")
    status, _, body = daemon.request("POST", "/oseo", envelope(payload, token(user, password)),
                                     {"Content-Type": "application/soap+xml"})
    assert status == 200, body
    return assert_valid(body)
