"""OAuth2 bearer tokens below HTTP (oseod.store.tokens, oseod.auth.bearer):
a real Redis, the checker in a LockoutPortal as oseod.tap wires it, time on
a Clock."""

from __future__ import annotations

import hashlib

import pytest
import pytest_twisted
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.task import Clock

from oseod.auth.account import Account, IAccount
from oseod.auth.bearer import BearerToken, BearerTokens
from oseod.auth.checkers import UserStoreChecker
from oseod.auth.lockout import LockedOut, LockoutLimits, LockoutPortal, LoginLockout
from oseod.auth.realm import AccountRealm
from oseod.core.accounts import AccountService
from oseod.model.logins import Client
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.lockouts import LockoutStore
from oseod.store.tokens import TokenStore
from oseod.store.users import UserStore
from tests.pools import POOLS


class Parts:
    def __init__(self, redis: Redis, *, cap: int = 3, per_address: int = 4) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.users = UserStore(redis, clock=self.clock)
        self.accounts = AccountService(self.users, reactor, threads=POOLS)
        self.store = TokenStore(redis)
        self.tokens = BearerTokens(self.store, self.users, self.clock, lifetime=600, max_per_user=cap)
        checkers = [UserStoreChecker(self.users, reactor, threads=POOLS),
                    self.tokens.checker()]
        self.lockout = LoginLockout(LockoutStore(redis), self.clock,
                                    LockoutLimits(per_user=5, per_address=per_address, seconds=900))
        self.portal = LockoutPortal(AccountRealm(self.users), checkers, self.lockout)

    async def login(self, token: str, address: str = "192.0.2.1") -> Account:
        _, account, _ = await self.portal.login(BearerToken(token), Client(address, "http"), IAccount)
        assert isinstance(account, Account)
        return account


@pytest_twisted.async_yield_fixture
async def parts(redis: Redis) -> Parts:
    await redis.conn.flushdb()
    made = Parts(redis)
    await made.accounts.add("alice", "alice-password", group="g1")
    await made.accounts.add("bob", "bob-password")
    yield made


@pytest_twisted.ensureDeferred
async def test_a_token_is_kept_only_as_its_digest_and_expires(parts: Parts, redis: Redis) -> None:
    issued = await parts.tokens.issue(Account("alice", group="g1"), grant="password", address="192.0.2.1")
    assert issued.expires_in == 600 and len(issued.token) >= 43
    digest = hashlib.sha256(issued.token.encode()).hexdigest()
    stored = await redis.conn.hgetall(keys.access_token(digest[:16]))
    assert stored["digest"] == digest and issued.token not in str(stored)
    assert 0 < await redis.conn.ttl(keys.access_token(digest[:16])) <= 600 + 60

    assert await parts.login(issued.token) == Account("alice", group="g1")
    parts.clock.advance(599)
    assert (await parts.login(issued.token)).name == "alice"
    parts.clock.advance(1)
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued.token)
    assert await parts.tokens.list("alice") == []


@pytest_twisted.ensureDeferred
async def test_the_cap_revokes_the_oldest(parts: Parts) -> None:
    issued = []
    for _ in range(4):
        issued.append(await parts.tokens.issue(Account("alice"), grant="password"))
        parts.clock.advance(1)
    assert issued[-1].revoked == (issued[0].record.token_id,)
    assert [t.token_id for t in await parts.tokens.list("alice")] == [i.record.token_id for i in issued[1:]]
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued[0].token)
    for kept in issued[1:]:
        assert (await parts.login(kept.token)).name == "alice"
    # Expired tokens do not count towards the cap.
    parts.clock.advance(600)
    fresh = await parts.tokens.issue(Account("alice"), grant="password")
    assert fresh.revoked == () and [t.token_id for t in await parts.tokens.list("alice")] == [fresh.record.token_id]


@pytest_twisted.ensureDeferred
async def test_revoke_by_id_by_token_and_by_user(parts: Parts) -> None:
    a1, a2, a3 = [await parts.tokens.issue(Account("alice"), grant="password") for _ in range(3)]
    b1 = await parts.tokens.issue(Account("bob"), grant="client_credentials")
    assert {t.user for t in await parts.tokens.list()} == {"alice", "bob"}
    for token in (a1, a2, a3):  # each now taken on trust for a second, unless revoked here
        assert (await parts.login(token.token)).name == "alice"

    revoked = await parts.tokens.revoke(a1.record.token_id)
    assert revoked is not None and (revoked.user, revoked.token_id) == ("alice", a1.record.token_id)
    assert await parts.tokens.revoke(a1.record.token_id) is None
    revoked = await parts.tokens.revoke(a2.token)  # the token itself, as a leak shows it
    assert revoked is not None and revoked.token_id == a2.record.token_id
    assert await parts.tokens.revoke("not-a-token-of-ours") is None
    for gone in (a1, a2):
        with pytest.raises(UnauthorizedLogin):
            await parts.login(gone.token)
    assert await parts.tokens.revoke_user("alice") == 1
    with pytest.raises(UnauthorizedLogin):
        await parts.login(a3.token)
    assert [t.user for t in await parts.tokens.list()] == ["bob"]
    assert (await parts.login(b1.token)).name == "bob"


@pytest_twisted.ensureDeferred
async def test_a_token_dies_with_its_users_password(parts: Parts) -> None:
    issued = await parts.tokens.issue(Account("alice"), grant="password")
    assert (await parts.login(issued.token)).name == "alice"  # now taken on trust for a second, but:
    await parts.accounts.set_password("alice", "new-password-1")
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued.token)

    issued = await parts.tokens.issue(Account("alice"), grant="password")
    assert (await parts.login(issued.token)).name == "alice"
    await parts.accounts.change("alice", disabled=True)
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued.token)

    issued = await parts.tokens.issue(Account("bob"), grant="password")
    await parts.accounts.remove("bob")
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued.token)


@pytest_twisted.ensureDeferred
async def test_a_directory_users_token_keeps_what_the_directory_said(parts: Parts) -> None:
    issued = await parts.tokens.issue(Account("carol", group="ldap-group", email="c@example.org"), grant="password")
    assert await parts.login(issued.token) == Account("carol", group="ldap-group", email="c@example.org")
    # A local account made since under that name is another account (a
    # token just checked is taken on trust for a second: SeenTokens).
    await parts.accounts.add("carol", "carol-password")
    parts.clock.advance(1)
    with pytest.raises(UnauthorizedLogin):
        await parts.login(issued.token)


@pytest_twisted.ensureDeferred
async def test_wrong_tokens_lock_out_the_address_only(parts: Parts) -> None:
    good = await parts.tokens.issue(Account("alice"), grant="password")
    for n in range(4):
        with pytest.raises(UnauthorizedLogin) as refused:
            await parts.login(f"wrong-token-{n:04d}-xxxxxxxxxxxxxxxx")
        assert not isinstance(refused.value, LockedOut)
    with pytest.raises(LockedOut) as locked:
        await parts.login(good.token)
    assert locked.value.scope == "addr" and "this address is locked out" in str(locked.value)
    # Another address, and alice's password logins, are not locked out.
    assert (await parts.login(good.token, address="192.0.2.2")).name == "alice"
    assert (await parts.lockout.check(b"alice", "192.0.2.2")).count == 0
    parts.clock.advance(901)  # the lock-out is over (and the token expired)
    good = await parts.tokens.issue(Account("alice"), grant="password")
    assert (await parts.login(good.token)).name == "alice"
