from __future__ import annotations

import pytest
import pytest_twisted
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface import Interface
from zope.interface.verify import verifyObject

from oseod.auth.account import Account, IAccount
from oseod.auth.checkers import UserStoreChecker
from oseod.auth.passwords import hash_password, verify_password
from oseod.auth.realm import AccountRealm
from oseod.store.connection import Redis
from oseod.store.users import UserRecord, UserStore
from tests.pools import POOLS


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("s3cret pässword"), hash_password("s3cret pässword")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert "s3cret" not in first
    assert verify_password("s3cret pässword".encode(), first)
    assert not verify_password(b"s3cret password", first)


@pytest.mark.parametrize("damaged", ["", "plain", "scrypt$1$2$3$!!$!!", "md5$x$y$z$a$b", "scrypt$x$8$1$AA==$AA=="])
def test_damaged_hash_never_verifies(damaged: str) -> None:
    assert verify_password(b"anything", damaged) is False


async def _login(portal: Portal, user: bytes | str, password: bytes | str) -> Account:
    _, avatar, _ = await portal.login(UsernamePassword(user, password), None, IAccount)
    assert isinstance(avatar, Account)
    return avatar


@pytest_twisted.ensureDeferred
async def test_portal_login_and_cache(redis: Redis) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("pässwörd1"), group="eo", admin=True))
    clock = Clock()
    checker = UserStoreChecker(users, reactor, cache_seconds=60, clock=clock, threads=POOLS)
    realm = AccountRealm(users)
    assert verifyObject(ICredentialsChecker, checker)
    assert verifyObject(IRealm, realm)
    portal = Portal(realm, [checker])

    with capturedLogs() as events:
        account = await _login(portal, b"alice", "pässwörd1".encode())
        assert account == Account(name="alice", group="eo", admin=True, email="")
        # str credentials (from XML) mean the same thing as their UTF-8 bytes
        await _login(portal, "alice", "pässwörd1")
        assert checker.verifications == 1

        with pytest.raises(UnauthorizedLogin):
            await _login(portal, b"alice", b"wrong")
        assert checker.verifications == 2

        clock.advance(61)
        await _login(portal, b"alice", "pässwörd1".encode())
        assert checker.verifications == 3

        # A password change invalidates the cached success at once.
        await users.update("alice", password_hash=hash_password("new password"))
        with pytest.raises(UnauthorizedLogin):
            await _login(portal, b"alice", "pässwörd1".encode())
        await _login(portal, b"alice", b"new password")

    logged = repr(events)
    assert "pässwörd1" not in logged and "new password" not in logged


@pytest.mark.parametrize(("user", "password"), [(b"nobody", b"x"), (b"", b"x"), (b"alice", b""), (b"*", b"pw123456"),
                                                 (b"\xff\xfe", b"pw123456")])
@pytest_twisted.ensureDeferred
async def test_refusals(redis: Redis, user: bytes, password: bytes) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("pw123456")))
    portal = Portal(AccountRealm(users), [UserStoreChecker(users, reactor, threads=POOLS)])
    with pytest.raises(UnauthorizedLogin):
        await _login(portal, user, password)


class IOther(Interface):
    pass


@pytest_twisted.ensureDeferred
async def test_realm_builds_registered_avatars(redis: Redis) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="bob", password_hash=hash_password("pw123456"), group="g"))
    realm = AccountRealm(users)
    realm.register(IOther, lambda account: ("avatar for", account.name, account.group))
    interface, avatar, logout = await realm.requestAvatar("bob", None, IOther)
    assert interface is IOther and avatar == ("avatar for", "bob", "g")
    logout()
    with pytest.raises(NotImplementedError):
        await realm.requestAvatar("bob", None, Interface)


@pytest_twisted.ensureDeferred
async def test_a_chain_of_one_answers_like_a_chain() -> None:
    from twisted.cred.credentials import UsernamePassword
    from twisted.cred.error import UnauthorizedLogin
    from twisted.internet import defer
    from zope.interface import implementer
    from twisted.cred.checkers import ICredentialsChecker

    from oseod.auth.checkers import PasswordChain, UnknownUser

    @implementer(ICredentialsChecker)
    class Answers:
        credentialInterfaces = ()

        def __init__(self, outcome: object) -> None:
            self.outcome = outcome

        def requestAvatarId(self, credentials: object) -> defer.Deferred[object]:
            return defer.fail(self.outcome) if isinstance(self.outcome, Exception) else defer.succeed(self.outcome)

    credentials = UsernamePassword(b"alice", b"pw")
    for chain in (lambda o: PasswordChain([("one", Answers(o))]),
                  lambda o: PasswordChain([("one", Answers(o)), ("two", Answers(UnknownUser("x")))])):
        assert await chain("alice").requestAvatarId(credentials) == "alice"
        with pytest.raises(UnauthorizedLogin, match="wrong user name or password"):
            await chain(UnknownUser("not here")).requestAvatarId(credentials)
        with pytest.raises(UnauthorizedLogin, match="bad password"):
            await chain(UnauthorizedLogin("bad password")).requestAvatarId(credentials)
        with pytest.raises(UnauthorizedLogin, match="cannot be checked now"):
            await chain(ConnectionError("directory down")).requestAvatarId(credentials)


@pytest_twisted.ensureDeferred
async def test_a_burst_of_logins_runs_one_password_check(redis: Redis) -> None:
    from twisted.internet import defer

    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("pw123456")))
    checker = UserStoreChecker(users, reactor, cache_seconds=60, clock=Clock(), threads=POOLS)
    # A busy client's concurrent requests, its cache entry missing: one scrypt, shared.
    right = await defer.gatherResults([checker.requestAvatarId(UsernamePassword(b"alice", b"pw123456"))
                                       for _ in range(12)])
    assert len(right) == 12 and checker.verifications == 1
    wrong = [checker.requestAvatarId(UsernamePassword(b"alice", b"guess")) for _ in range(12)]
    for attempt in wrong:
        with pytest.raises(UnauthorizedLogin):
            await attempt
    assert checker.verifications == 2


@pytest_twisted.ensureDeferred
async def test_a_password_in_use_is_checked_again_before_its_cache_entry_expires(redis: Redis) -> None:
    from tests.polling import eventually

    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("pw123456")))
    clock = Clock()
    checker = UserStoreChecker(users, reactor, cache_seconds=60, clock=clock, threads=POOLS)
    credentials = UsernamePassword(b"alice", b"pw123456")
    await checker.requestAvatarId(credentials)
    assert checker.verifications == 1
    clock.advance(40)  # not due yet
    await checker.requestAvatarId(credentials)
    assert checker.verifications == 1
    clock.advance(10)  # in its last quarter: answered from the cache, and checked again meanwhile
    await checker.requestAvatarId(credentials)

    async def checked_again() -> bool:
        return checker.verifications == 2

    await eventually(checked_again, 30, "the check ahead of expiry")
    await checker.requestAvatarId(credentials)  # (one check ahead, not one per request)
    clock.advance(20)  # past the first entry's life: the renewed one answers
    await checker.requestAvatarId(credentials)
    assert checker.verifications == 2
