from __future__ import annotations

import base64
import calendar
import hashlib
import os
import stat
import time
from pathlib import Path

import attrs
import pytest
import pytest_twisted
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from oseod.auth.account import Account
from oseod.auth.checkers import UserStoreChecker
from oseod.auth.realm import AccountRealm
from oseod.auth.secrets import SecretBox
from oseod.auth.tokens import (
    DigestChecker,
    IUsernameDigest,
    IUsernamePasswordToken,
    TextTokenChecker,
    UsernameDigest,
    UsernamePasswordToken,
    login_with_token,
    parse_created,
)
from oseod.config import ConfigError, parse_config
from oseod.core.accounts import AccountService
from oseod.datadir import BadSecretKey, DataDir
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.nonces import NonceStore
from oseod.store.users import UserRecord, UserStore
from tests.pools import POOLS

NOW = calendar.timegm((2026, 5, 9, 12, 0, 0, 0, 0, 0))
PASSWORD = "correct hörse battery"


def created_at(offset: float = 0.0) -> str:
    """Created as a typical client writes it, independently of parse_created."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + offset))


def digest_of(nonce: bytes, created: str, password: str) -> str:
    """The UsernameToken Profile 1.0 digest, written out from the spec."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


@attrs.define
class Server:
    redis: Redis
    users: UserStore
    box: SecretBox
    clock: Clock
    portal: Portal
    accounts: AccountService
    digest_checker: DigestChecker
    text_checker: TextTokenChecker

    async def login(self, username: str, password: str, *, digest: bool = False, nonce: bytes | None = None,
                    created: str | None = None) -> Account:
        return await login_with_token(self.portal, username, password, digest, nonce, created)

    async def digest_login(self, username: str = "alice", password: str = PASSWORD, *, nonce: bytes | None = None,
                           created: str | None = None) -> Account:
        nonce = os.urandom(16) if nonce is None else nonce
        created = created_at() if created is None else created
        return await self.login(username, digest_of(nonce, created, password), digest=True, nonce=nonce,
                                created=created)


def make_server(redis: Redis, tmp_path: Path, *, digest: bool = True) -> Server:
    users = UserStore(redis)
    nonces = NonceStore(redis)
    box = SecretBox(DataDir(tmp_path).secret_key)
    clock = Clock()
    clock.advance(NOW)
    passwords = UserStoreChecker(users, reactor, clock=clock, threads=POOLS)
    digest_checker = DigestChecker(users, nonces, box if digest else None, clock, max_age=300)
    text_checker = TextTokenChecker(passwords, nonces, clock, max_age=300)
    portal = Portal(AccountRealm(users), [passwords, digest_checker, text_checker])
    accounts = AccountService(users, reactor, secrets=box if digest else None, threads=POOLS)
    return Server(redis, users, box, clock, portal, accounts, digest_checker, text_checker)


@pytest_twisted.async_fixture
async def server(redis: Redis, tmp_path: Path) -> Server:
    s = make_server(redis, tmp_path)
    await s.accounts.add("alice", PASSWORD, group="eo")
    return s


async def refused(call: object) -> str:
    with pytest.raises(UnauthorizedLogin) as caught:
        await call  # type: ignore[misc]
    return str(caught.value)


# --- PasswordText --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_password_text(server: Server) -> None:
    account = await server.login("alice", PASSWORD)
    assert account == Account(name="alice", group="eo")
    assert "wrong" in await refused(server.login("alice", "wrong"))
    assert "wrong" in await refused(server.login("nobody", PASSWORD))


@pytest_twisted.ensureDeferred
async def test_password_text_with_nonce_and_created_gets_the_same_rules(server: Server) -> None:
    nonce = os.urandom(16)
    # A wrong password does not burn the nonce...
    await refused(server.login("alice", "wrong", nonce=nonce, created=created_at()))
    assert (await server.login("alice", PASSWORD, nonce=nonce, created=created_at())).name == "alice"
    # ...the right one does.
    assert "already used" in await refused(server.login("alice", PASSWORD, nonce=nonce, created=created_at()))
    assert "stale" in await refused(server.login("alice", PASSWORD, nonce=os.urandom(16), created=created_at(-360)))
    assert "future" in await refused(server.login("alice", PASSWORD, created=created_at(360)))
    assert "xs:dateTime" in await refused(server.login("alice", PASSWORD, created="now"))
    assert "Nonce" in await refused(server.login("alice", PASSWORD, nonce=b""))
    # Created alone, or Nonce alone, are checked as far as they go.
    await server.login("alice", PASSWORD, created=created_at(-240))
    await server.login("alice", PASSWORD, nonce=os.urandom(16))


# --- PasswordDigest ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_password_digest(server: Server) -> None:
    account = await server.digest_login()
    assert account == Account(name="alice", group="eo")
    # A client sending a fractional, offset Created (the digest covers its exact text).
    await server.digest_login(created=time.strftime("%Y-%m-%dT%H:%M:%S.123456+02:00", time.gmtime(NOW + 7200)))


@pytest_twisted.ensureDeferred
async def test_wrong_digest_and_unknown_user_look_alike(server: Server) -> None:
    wrong = await refused(server.digest_login(password="not it"))
    unknown = await refused(server.digest_login(username="nobody"))
    invalid = await refused(server.digest_login(username="*"))
    assert wrong == unknown == invalid == "wrong user name or password"
    nonce, created = os.urandom(16), created_at()
    for garbage in ("", "!!!", base64.b64encode(b"x" * 20).decode()):
        await refused(server.login("alice", garbage, digest=True, nonce=nonce, created=created))


@pytest_twisted.ensureDeferred
async def test_replayed_nonce_refused_but_a_wrong_guess_does_not_burn_it(server: Server) -> None:
    nonce, created = os.urandom(16), created_at()
    # Somebody who saw the nonce sends it first with a wrong digest...
    await refused(server.login("alice", digest_of(nonce, created, "guess"), digest=True, nonce=nonce,
                               created=created))
    # ...the real client still gets in,
    await server.digest_login(nonce=nonce, created=created)
    # and a replay of its token is refused.
    assert "already used" in await refused(server.digest_login(nonce=nonce, created=created))
    # The nonce is remembered long enough to cover Created up to max_age in the future.
    ttls = [int(await server.redis.conn.ttl(k)) for k in await server.redis.conn.keys(keys.nonce("*"))]
    assert ttls and all(590 < ttl <= 601 for ttl in ttls)


@pytest.mark.parametrize(("offset", "accepted"), [(-360, False), (-240, True), (240, True), (360, False)])
@pytest_twisted.ensureDeferred
async def test_freshness_window(server: Server, offset: float, accepted: bool) -> None:
    login = server.digest_login(created=created_at(offset))
    if accepted:
        await login
    else:
        assert ("stale" if offset < 0 else "future") in await refused(login)


@pytest.mark.parametrize("created", ["yesterday", "2026-05-09T12:00:00", "2026-05-09 12:00:00Z",
                                     "2026-13-09T12:00:00Z", "2026-02-30T12:00:00Z", "2026-05-09T12:00:60Z",
                                     "2026-05-09T12:00:00+15:00", "2026-05-09T12:00Z", "٢٠٢٦-05-09T12:00:00Z",
                                     "2026-05-09T12:00:00.Z", "2026-05-09T12:00:00Z" + "0" * 100])
@pytest_twisted.ensureDeferred
async def test_malformed_created(server: Server, created: str) -> None:
    assert "xs:dateTime" in await refused(server.digest_login(created=created))


def test_parse_created() -> None:
    assert parse_created("2026-05-09T12:00:00Z") == NOW
    assert parse_created("2026-05-09T12:00:00.25Z") == NOW + 0.25
    assert parse_created("2026-05-09T14:30:00+02:30") == NOW
    assert parse_created("2026-05-09T08:00:00-04:00") == NOW
    assert parse_created("2026-05-08T24:00:00Z") == NOW - 12 * 3600
    with pytest.raises(ValueError):
        parse_created("2026-05-08T24:00:01Z")


@pytest_twisted.ensureDeferred
async def test_digest_needs_nonce_and_created(server: Server) -> None:
    digest = digest_of(b"n" * 16, created_at(), PASSWORD)
    for nonce, created in ((None, created_at()), (b"n" * 16, None), (b"", created_at()), (None, None)):
        assert "Nonce and a Created" in await refused(server.login("alice", digest, digest=True, nonce=nonce,
                                                                   created=created))
    # Straight to the checker too, without the helper's check.
    for credentials in (UsernameDigest("alice", b"", created_at(), digest), UsernameDigest("alice", b"n", "", digest)):
        with pytest.raises(UnauthorizedLogin):
            await server.digest_checker.requestAvatarId(credentials)
    assert "Nonce must" in await refused(server.digest_login(nonce=b"n" * 257))


@pytest_twisted.ensureDeferred
async def test_digest_disabled(redis: Redis, tmp_path: Path) -> None:
    s = make_server(redis, tmp_path, digest=False)
    record = await s.accounts.add("alice", PASSWORD)
    assert record.digest_secret == ""
    assert "disabled" in await refused(s.digest_login())
    assert (await s.login("alice", PASSWORD)).name == "alice"


@pytest_twisted.ensureDeferred
async def test_password_set_while_disabled_is_text_only_until_set_again(redis: Redis, tmp_path: Path) -> None:
    enabled = make_server(redis, tmp_path)
    disabled_accounts = AccountService(enabled.users, reactor, secrets=None, threads=POOLS)
    await disabled_accounts.add("bob", PASSWORD)
    assert await refused(enabled.digest_login("bob")) == "wrong user name or password"
    await enabled.login("bob", PASSWORD)
    await enabled.accounts.set_password("bob", PASSWORD)
    await enabled.digest_login("bob")
    # Set again while disabled: the secret goes with the old hash.
    await disabled_accounts.set_password("bob", PASSWORD)
    record = await enabled.users.get("bob")
    assert record is not None and record.digest_secret == ""
    await refused(enabled.digest_login("bob"))


@pytest_twisted.ensureDeferred
async def test_password_change(server: Server) -> None:
    await server.accounts.set_password("alice", "a new password")
    await refused(server.digest_login(password=PASSWORD))
    await server.digest_login(password="a new password")
    # A hash changed behind AccountService's back takes the secret with it.
    await server.users.update("alice", password_hash="scrypt$x")
    record = await server.users.get("alice")
    assert record is not None and record.digest_secret == ""
    await refused(server.digest_login(password="a new password"))


@pytest_twisted.ensureDeferred
async def test_secret_is_bound_to_account_and_hash(server: Server) -> None:
    await server.accounts.add("mallory", "mallory's password")
    alice, mallory = await server.users.get("alice"), await server.users.get("mallory")
    assert alice is not None and mallory is not None
    assert server.box.unseal("alice", alice.password_hash, alice.digest_secret) == PASSWORD.encode()
    # Alice's secret copied onto mallory's record does not open.
    assert server.box.unseal("mallory", mallory.password_hash, alice.digest_secret) is None
    assert server.box.unseal("alice", mallory.password_hash, alice.digest_secret) is None
    await server.redis.conn.hset(keys.user("mallory"), "digest_secret", alice.digest_secret)
    await refused(server.digest_login("mallory", PASSWORD))
    for damaged in ("", "aesgcm1$", "aesgcm1$!!", "other$AAAA", alice.digest_secret[:-4] + "AAAA"):
        assert server.box.unseal("alice", alice.password_hash, damaged) is None


@pytest_twisted.ensureDeferred
async def test_stored_secret_is_not_the_password(server: Server, tmp_path: Path) -> None:
    stored = await server.redis.conn.hgetall(keys.user("alice"))
    secret = stored["digest_secret"]
    assert secret.startswith("aesgcm1$")
    everything = repr(stored)
    for form in (PASSWORD, PASSWORD.encode().hex(), base64.b64encode(PASSWORD.encode()).decode()):
        assert form not in everything
    assert secret not in repr(await server.users.get("alice"))
    # Without the key (another one), nothing comes out.
    other = SecretBox(os.urandom(32))
    assert other.unseal("alice", stored["password"], secret) is None
    assert repr(server.box) == "<SecretBox>"


@pytest_twisted.ensureDeferred
async def test_nothing_secret_is_logged(server: Server, tmp_path: Path) -> None:
    nonce, created = os.urandom(16), created_at()
    digest = digest_of(nonce, created, PASSWORD)
    key = (tmp_path / "secret.key").read_text().strip()
    with capturedLogs() as events:
        await server.digest_login(nonce=nonce, created=created)
        await refused(server.digest_login(nonce=nonce, created=created))
        await refused(server.digest_login(password="bad"))
        await server.login("alice", PASSWORD, nonce=os.urandom(16), created=created)
        await refused(server.login("alice", "bad", nonce=os.urandom(16), created=created))
    logged = repr(events)
    assert events  # refusals are logged...
    for secret in (PASSWORD, digest, base64.b64encode(nonce).decode(), nonce.hex(), key):
        assert secret not in logged  # ...without anything an attacker could use


def test_interfaces() -> None:
    box = SecretBox(os.urandom(32))
    users, nonces = UserStore(None), NonceStore(None)
    digest = DigestChecker(users, nonces, box, Clock())
    assert verifyObject(ICredentialsChecker, digest)
    assert verifyObject(ICredentialsChecker, TextTokenChecker(UserStoreChecker(users, reactor, threads=POOLS), nonces,
                                                              Clock()))
    assert verifyObject(IUsernameDigest, UsernameDigest("alice", b"nonce", "2026-05-09T12:00:00Z", "ZGlnZXN0"))
    assert verifyObject(IUsernamePasswordToken, UsernamePasswordToken("alice", "pw", b"nonce", None))
    assert "pw" not in repr(UsernamePasswordToken("alice", "pw"))
    assert "ZGlnZXN0" not in repr(UsernameDigest("alice", b"nonce", "2026-05-09T12:00:00Z", "ZGlnZXN0"))


# --- the key file and the nonce store ------------------------------------------------


def test_secret_key_file(tmp_path: Path) -> None:
    first = DataDir(tmp_path).secret_key()
    path = tmp_path / "secret.key"
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == first
    assert DataDir(tmp_path).secret_key() == first  # made once, then reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]  # no temporary left behind

    path.chmod(0o640)
    with pytest.raises(BadSecretKey, match="chmod 600") as caught:
        DataDir(tmp_path).secret_key()
    assert base64.b64encode(first).decode() not in str(caught.value)
    path.chmod(0o600)
    path.write_text("c2hvcnQ=\n")
    with pytest.raises(BadSecretKey, match="damaged"):
        DataDir(tmp_path).secret_key()
    # A box reads its key lazily, once: the daemon builds it before the data dir exists.
    calls: list[int] = []

    def read_key() -> bytes:
        calls.append(1)
        return first

    box = SecretBox(read_key)
    box.load()
    box.unseal("a", "h", box.seal("a", "h", "pw"))
    assert calls == [1]
    with pytest.raises(ValueError):
        SecretBox(b"short").load()


@pytest_twisted.ensureDeferred
async def test_nonce_store(redis: Redis) -> None:
    nonces = NonceStore(redis)
    assert await nonces.first_use("n1", 10) is True
    assert await nonces.first_use("n1", 10) is False
    assert await nonces.first_use("n2", 10) is True
    assert 0 < int(await redis.conn.ttl(keys.nonce("n1"))) <= 10
    for bad_nonce, bad_ttl in (("", 10), ("x" * 257, 10), ("n3", 0)):
        with pytest.raises(ValueError):
            await nonces.first_use(bad_nonce, bad_ttl)


@pytest_twisted.ensureDeferred
async def test_record_round_trip_keeps_the_secret(redis: Redis) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="carol", password_hash="h1", digest_secret="aesgcm1$abc"))
    record = await users.get("carol")
    assert record is not None and record.digest_secret == "aesgcm1$abc"
    assert "aesgcm1$abc" not in repr(record)
    await users.update("carol", password_hash="h2", digest_secret="aesgcm1$def", group="g")
    record = await users.get("carol")
    assert record is not None and (record.password_hash, record.digest_secret, record.group) == ("h2", "aesgcm1$def", "g")
    await users.update("carol", email="c@x.org")  # no password change: the secret stays
    record = await users.get("carol")
    assert record is not None and record.digest_secret == "aesgcm1$def"
    with pytest.raises(ValueError):
        await users.update("carol", digest_secret="aesgcm1$ghi")


def test_config_keys() -> None:
    assert parse_config({}).auth.password_digest is True
    assert parse_config({}).auth.token_max_age_seconds == 300
    assert parse_config({"auth": {"password_digest": False, "token_max_age_seconds": 60}}).auth.password_digest is False
    for bad in ({"password_digest": "yes"}, {"token_max_age_seconds": 0}, {"token_max_age_seconds": 1.5}):
        with pytest.raises(ConfigError, match="auth."):
            parse_config({"auth": bad})
