"""One lock-out for every way in (oseod.auth.lockout): the daemon's parts as
oseod.tap wires them, a real Redis, real clients over loopback (treq for SOAP,
HTTP Basic and the console, ftplib for FTP); SOAP answers validated against
the official schemas. The lock-out's window runs on a Clock where a test
needs time to pass."""

from __future__ import annotations

import base64
import ftplib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor, threads
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from oseod.auth.account import IAccount
from oseod.auth.checkers import IRememberingChecker, UserStoreChecker
from oseod.auth.lockout import AUDIT_ACTION, Client, LockedOut, LockoutLimits, LockoutPortal, LoginLockout
from oseod.auth.realm import AccountRealm
from oseod.auth.secrets import SecretBox
from oseod.auth.tokens import login_with_token
from oseod.config import Config, parse_config
from oseod.core.accounts import AccountService
from oseod.ftp.factory import make_ftp_factory
from oseod.http.site import OseodSite
from oseod.metrics import RequestMetrics
from oseod.oseo.namespaces import OWS
from oseod.store.audit import AuditStore
from oseod.store.connection import Redis
from oseod.store.lockouts import LockoutStore
from oseod.store.users import UserStore
from tests.oseo_schema import assert_valid, requires_schemas
from tests.parts import make_parts
from tests.test_http_ordering import envelope, get_status, token
from tests.pools import POOLS

PASSWORD = "alice-password"
CLIENT_TIMEOUT = 20.0  # only bounds a hung test; nothing asserts on time
LOCKED = "too many failed logins: this user name is locked out; try again in 15 minutes"


class Daemon:
    """One daemon's parts with an HTTP and an FTP listener on loopback."""

    def __init__(self, redis: Redis, config: Config, secrets: SecretBox) -> None:
        self.redis = redis
        self.parts = make_parts(config, redis, admin_token=lambda: "t", digest_secrets=secrets)
        self.accounts = AccountService(self.parts.users, reactor, secrets=secrets, threads=POOLS)
        self.http: Any = reactor.listenTCP(0, OseodSite(self.parts.frontend.resource(), 1 << 20),
                                           interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.http.getHost().port}"
        self.ftp_factory = make_ftp_factory(self.parts.portal)
        self.ftp: Any = reactor.listenTCP(0, self.ftp_factory, interface="127.0.0.1")

    async def stop(self) -> None:
        await self.http.stopListening()
        await self.ftp.stopListening()

    # --- one login attempt per transport; each gives (refused?, what the client saw) -------

    async def soap(self, user: str, password: str, *, digest: bool = False,
                   forwarded_for: str | None = None) -> tuple[int, Any, str]:
        headers = {"Content-Type": "application/soap+xml"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        response = await treq.post(f"{self.base}/oseo", data=envelope(get_status("1"),
                                                                       token(user, password, digest=digest)),
                                   headers=headers, persistent=False)
        answer = await response.content()
        assert response.code < 500, answer
        assert response.code != 429 or response.phrase == b"Too Many Requests"
        report = assert_valid(answer)
        exception = report.find(f".//{{{OWS}}}Exception")
        text = "" if exception is None else "".join(exception.itertext()).strip()
        code = None if exception is None else (exception.get("exceptionCode"), exception.get("locator"))
        return response.code, (code, response.headers.getRawHeaders("retry-after")), text

    async def basic(self, user: str, password: str, path: str = "/results/1/i1/") -> tuple[int, Any, str]:
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        response = await treq.get(self.base + path, headers={"Authorization": auth}, persistent=False)
        body = (await response.content()).decode()
        assert response.code < 500 and "Traceback" not in body, body
        assert response.code != 429 or response.phrase == b"Too Many Requests"
        return response.code, response.headers.getRawHeaders("retry-after"), body.strip()

    async def console(self, user: str, password: str) -> tuple[int, Any, str]:
        response = await treq.post(self.base + "/console/login", data={"user": user, "password": password},
                                   allow_redirects=False, persistent=False)
        body = (await response.content()).decode()
        assert response.code < 500, body
        assert response.code != 429 or response.phrase == b"Too Many Requests"
        return response.code, response.headers.getRawHeaders("retry-after"), body

    async def ftp_login(self, user: str, password: str) -> tuple[str, bool]:
        """The reply to PASS, and whether the server closed the connection after it."""
        port = self.ftp.getHost().port

        def talk() -> tuple[str, bool]:
            client = ftplib.FTP(timeout=CLIENT_TIMEOUT)
            try:
                client.connect("127.0.0.1", port)
                try:
                    reply = client.login(user, password)
                except ftplib.Error as e:
                    reply = str(e)
                return reply, reply.startswith("421") and _closed_by_server(client.sock)
            finally:
                client.close()

        return await threads.deferToThread(talk)

    async def audit(self) -> list[Any]:
        return [r for r in await AuditStore(self.redis).page(100) if r.action == AUDIT_ACTION]


def _closed_by_server(sock: socket.socket | None) -> bool:
    if sock is None:
        return True
    sock.settimeout(CLIENT_TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest_twisted.async_yield_fixture
async def daemons(redis: Redis) -> AsyncIterator[Callable[..., Any]]:
    made: list[Daemon] = []
    secrets = SecretBox(os.urandom(32))  # one secret key: daemons sharing a Redis share it

    async def make(config: Config = Config()) -> Daemon:
        daemon = Daemon(redis, config, secrets)
        made.append(daemon)
        if len(made) == 1:
            await daemon.accounts.add("alice", PASSWORD)
            await daemon.accounts.add("bob", "bob-password")
            await daemon.accounts.add("root", "root-password", admin=True)
        return daemon

    yield make
    for daemon in made:
        await daemon.stop()


# --- the same number of failures on every transport ---------------------------------------


async def _attempt(daemon: Daemon, transport: str, user: str, password: str) -> tuple[bool, str]:
    """One login over ``transport``: (locked out?, the text the client got);
    a wrong password is checked to be answered as one."""
    if transport in ("soap", "digest"):
        status, (code, retry), text = await daemon.soap(user, password, digest=transport == "digest")
        if status == 429:
            assert code == ("AuthenticationFailed", "identity_token") and retry and int(retry[0]) > 0, text
            return True, text
        assert status == 401 and code == ("AuthenticationFailed", "identity_token"), (status, text)
        return False, text
    if transport in ("basic", "bare"):
        if transport == "basic":
            status, retry, text = await daemon.basic(user, password)
        else:  # bare XML to /oseo with HTTP Basic
            auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            response = await treq.post(f"{daemon.base}/oseo", data=get_status("1").encode(),
                                       headers={"Content-Type": "application/xml", "Authorization": auth},
                                       persistent=False)
            answer = await response.content()
            assert_valid(answer)
            status, retry = response.code, response.headers.getRawHeaders("retry-after")
            text = "".join(etree.fromstring(answer).itertext()).strip()
        if status == 429:
            assert retry and int(retry[0]) > 0 and "\n" not in text, text
            return True, text
        assert status == 401, (status, text)
        return False, text
    if transport == "ftp":
        reply, closed = await daemon.ftp_login(user, password)
        if reply.startswith("421"):
            assert closed, reply
            return True, reply
        assert reply.startswith("530"), reply
        return False, reply
    assert transport == "console"
    status, retry, body = await daemon.console(user, password)
    if status == 429:
        assert retry and int(retry[0]) > 0
        return True, body
    assert status == 401, status
    return False, body


@requires_schemas
@pytest.mark.parametrize("transport", ["soap", "digest", "basic", "bare", "ftp", "console"])
@pytest_twisted.ensureDeferred
async def test_every_transport_locks_out_after_five_failures(daemons: Any, transport: str) -> None:
    daemon = await daemons()
    for _ in range(5):
        locked, text = await _attempt(daemon, transport, "alice", "wrong")
        assert not locked, text
    # The right password is refused now, saying why and for how long.
    locked, text = await _attempt(daemon, transport, "alice", PASSWORD)
    assert locked and LOCKED in text, text
    # Recorded once, with the transport and the address, and counted.
    [record] = await daemon.audit()
    via = {"digest": "soap", "bare": "http", "basic": "http"}.get(transport, transport)
    assert (record.actor, record.via, record.address, record.target) == ("alice", via, "127.0.0.1", "alice")
    metrics: RequestMetrics = daemon.parts.metrics
    assert metrics.lockouts(via, "user") == 1
    response = await treq.get(daemon.base + "/metrics", persistent=False)
    exposition = (await response.content()).decode()
    assert f'oseod_login_lockouts_total{{via="{via}",scope="user"}} 1' in exposition
    assert f'oseod_login_failures_total{{via="{via}"}} 5' in exposition
    # Another user from the same address is still let in (5 < 20 failures for the address).
    locked, text = await _attempt(daemon, transport, "bob", "wrong")
    assert not locked, text


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_locked_out_of_the_console_means_locked_out_everywhere(daemons: Any) -> None:
    daemon = await daemons()
    for _ in range(5):
        assert (await daemon.console("alice", "wrong"))[0] == 401
    reply, closed = await daemon.ftp_login("alice", PASSWORD)
    assert reply == f"421 {LOCKED}" and closed
    status, (code, retry), text = await daemon.soap("alice", PASSWORD)
    assert (status, code) == (429, ("AuthenticationFailed", "identity_token")) and LOCKED in text
    assert retry is not None and 840 < int(retry[0]) <= 900
    status, (code, _), text = await daemon.soap("alice", PASSWORD, digest=True)
    assert (status, code) == (429, ("AuthenticationFailed", "identity_token")) and LOCKED in text
    status, retry, text = await daemon.basic("alice", PASSWORD)
    assert (status, text) == (429, LOCKED) and retry is not None


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_locked_unknown_name_is_answered_like_a_locked_account(daemons: Any) -> None:
    daemon = await daemons()
    answers = {}
    for name in ("alice", "nobody"):
        wrong = [await daemon.soap(name, "wrong") for _ in range(5)]
        assert {w[:2] for w in wrong} == {(401, (("AuthenticationFailed", "identity_token"), None))}
        seen: list[Any] = []
        for password in (PASSWORD, "wrong"):
            status, (code, retry), text = await daemon.soap(name, password)
            seen.append((status, code, bool(retry), text))
        for status, retry, text in (await daemon.basic(name, PASSWORD), await daemon.console(name, PASSWORD)):
            seen.append((status, bool(retry), text.replace(name, "NAME")))  # the login page repeats the name
        seen.append(await daemon.ftp_login(name, PASSWORD))
        answers[name] = seen
    assert answers["alice"] == answers["nobody"]
    assert answers["alice"][0] == (429, ("AuthenticationFailed", "identity_token"), True, LOCKED)


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_the_address_limit_counts_every_name_and_believes_only_trusted_proxies(daemons: Any) -> None:
    daemon = await daemons(parse_config({"server": {"trusted_proxies": ["127.0.0.1/32"]}}))
    for n in range(20):
        status, _, _ = await daemon.soap(f"guess{n}", "wrong", forwarded_for="203.0.113.7")
        assert status == 401
    status, (code, _), text = await daemon.soap("alice", PASSWORD, forwarded_for="203.0.113.7")
    assert (status, code) == (429, ("AuthenticationFailed", "identity_token"))
    assert "too many failed logins: this address is locked out; try again in 15 minutes" in text
    # Another client behind the same proxy is not concerned.
    status, (code, _), _ = await daemon.soap("alice", PASSWORD, forwarded_for="203.0.113.8")
    assert code != ("AuthenticationFailed", "identity_token")
    records = await daemon.audit()
    assert [(r.target, r.address) for r in records] == [("203.0.113.7", "203.0.113.7")]
    assert daemon.parts.metrics.lockouts("soap", "address") == 1


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_daemons_sharing_a_redis_count_together(daemons: Any) -> None:
    first, second = await daemons(), await daemons()
    for _ in range(3):
        assert (await first.soap("alice", "wrong", digest=True))[0] == 401
    for _ in range(2):
        assert (await second.ftp_login("alice", "wrong"))[0].startswith("530")
    assert (await first.basic("alice", PASSWORD))[0] == 429
    assert (await second.console("alice", PASSWORD))[0] == 429


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_good_login_clears_the_user_names_failures(daemons: Any) -> None:
    daemon = await daemons()
    for _ in range(2):
        for _ in range(4):
            assert (await daemon.basic("alice", "wrong"))[0] == 401
        status, _, _ = await daemon.basic("alice", PASSWORD)
        assert status == 404  # logged in: no such order
    assert await daemon.audit() == []


# --- the window, on a Clock ---------------------------------------------------------------------


class CountedReads(LockoutStore):
    """The real store, counting the reads of the counters."""

    reads = 0

    async def read(self, subjects: Any) -> Any:
        self.reads += 1
        return await super().read(subjects)


class ReadsAgain(LoginLockout):
    """The real lock-out, holding the background reads it starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[defer.Deferred[None]] = []

    def keep_clean(self, user: bytes, address: str) -> defer.Deferred[None] | None:
        reading = super().keep_clean(user, address)
        if reading is not None:
            self.started.append(reading)
        return reading


class Door:
    """A LockoutPortal over the Redis password checker, the lock-out on a Clock."""

    def __init__(self, redis: Redis, clock: Clock, **limits: Any) -> None:
        users = UserStore(redis, clock=reactor)
        self.accounts = AccountService(users, reactor, threads=POOLS)
        self.store = CountedReads(redis)
        self.lockout = ReadsAgain(self.store, clock, LockoutLimits(**limits), audit=AuditStore(redis))
        self.portal = LockoutPortal(AccountRealm(users), [UserStoreChecker(users, reactor, threads=POOLS)],
                                    self.lockout)

    async def login(self, user: str, password: str, address: str = "192.0.2.1") -> str:
        try:
            await self.portal.login(UsernamePassword(user.encode(), password.encode()), Client(address, "ftp"),
                                    IAccount)
        except LockedOut as e:
            return f"locked:{e.scope}:{e.seconds}"
        except UnauthorizedLogin:
            return "wrong"
        return "ok"


def _clock() -> Clock:
    clock = Clock()
    clock.advance(1_700_000_000)
    return clock


@pytest_twisted.ensureDeferred
async def test_the_lock_out_ends_with_its_window(redis: Redis) -> None:
    clock = _clock()
    door = Door(redis, clock, per_user=3, seconds=600)
    await door.accounts.add("alice", PASSWORD)
    assert [await door.login("alice", "wrong") for _ in range(3)] == ["wrong"] * 3
    assert await door.login("alice", PASSWORD) == "locked:user:600"
    clock.advance(599.5)
    assert await door.login("alice", PASSWORD) == "locked:user:1"
    assert await door.login("alice", "wrong") == "locked:user:1"  # not checked, not counted
    clock.advance(0.5)
    assert await door.login("alice", PASSWORD) == "ok"


@pytest_twisted.ensureDeferred
async def test_failures_count_within_one_window(redis: Redis) -> None:
    clock = _clock()
    door = Door(redis, clock, per_user=3, seconds=600)
    assert [await door.login("nobody", "wrong") for _ in range(2)] == ["wrong"] * 2
    clock.advance(600)  # the window of the first failure has ended
    assert [await door.login("nobody", "wrong") for _ in range(2)] == ["wrong"] * 2
    clock.advance(300)
    assert await door.login("nobody", "wrong") == "wrong"
    assert await door.login("nobody", "wrong") == "locked:user:600"


@pytest_twisted.ensureDeferred
async def test_another_daemons_lock_out_reaches_a_client_within_a_second(redis: Redis) -> None:
    """A client's next request is let in on this process's recent clean read
    (no Redis round trip): a lock-out set by another daemon meanwhile applies
    once that read is a second old."""
    clock = _clock()
    here, there = Door(redis, clock), Door(redis, clock)
    await here.accounts.add("alice", PASSWORD)
    assert await here.login("alice", PASSWORD) == "ok"
    assert [await there.login("alice", "wrong") for _ in range(5)][-1] == "wrong"
    assert await there.login("alice", PASSWORD) == "locked:user:900"
    assert await here.login("alice", PASSWORD) == "ok"
    clock.advance(1)
    assert await here.login("alice", PASSWORD) == "locked:user:899"


@pytest_twisted.ensureDeferred
async def test_a_busy_clients_view_is_read_again_before_it_ends(redis: Redis) -> None:
    """A client logging in several times a second never waits for the
    counters' read once its view is set: it is read again in the
    background in the view's last quarter. A lock-out set elsewhere still
    applies within a second of the last read before it."""
    clock = _clock()
    here, there = Door(redis, clock), Door(redis, clock)
    await here.accounts.add("alice", PASSWORD)
    assert await here.login("alice", PASSWORD) == "ok"
    assert here.store.reads == 1
    clock.advance(0.5)
    assert await here.login("alice", PASSWORD) == "ok"
    assert (here.store.reads, here.lockout.started) == (1, [])  # half its life left: nothing read
    clock.advance(0.3)
    assert await here.login("alice", PASSWORD) == "ok"  # let in on the view, which is read again
    assert len(here.lockout.started) == 1
    await here.lockout.started[0]
    assert here.store.reads == 2
    assert await here.login("alice", PASSWORD) == "ok"
    assert len(here.lockout.started) == 1  # renewed: not due again yet
    clock.advance(0.5)  # past the first view's end, within the renewed one
    assert await here.login("alice", PASSWORD) == "ok"
    assert here.store.reads == 2  # no read in the login's way
    # Locked out by another daemon: the next read ahead finds it and renews nothing.
    assert [await there.login("alice", "wrong") for _ in range(5)][-1] == "wrong"
    clock.advance(0.3)
    assert await here.login("alice", PASSWORD) == "ok"
    await here.lockout.started[-1]
    assert len(here.lockout.started) == 2
    clock.advance(0.2)
    assert (await here.login("alice", PASSWORD)).startswith("locked:user:")


@pytest_twisted.ensureDeferred
async def test_a_failure_here_is_seen_here_at_once(redis: Redis) -> None:
    clock = _clock()
    door = Door(redis, clock, per_user=2)
    await door.accounts.add("alice", PASSWORD)
    assert await door.login("alice", PASSWORD) == "ok"
    assert [await door.login("alice", "wrong") for _ in range(2)] == ["wrong"] * 2
    assert await door.login("alice", PASSWORD) == "locked:user:900"


@pytest_twisted.ensureDeferred
async def test_token_refusals_that_say_nothing_of_the_password_do_not_count(daemons: Any) -> None:
    """A client whose clock is off, or that replays a token, is refused
    (saying why) but not locked out: no password was guessed."""
    daemon = await daemons()
    client = Client("192.0.2.9", "soap")
    for _ in range(6):
        with pytest.raises(UnauthorizedLogin, match="stale") as refused:
            await login_with_token(daemon.parts.portal, "alice", PASSWORD, False, os.urandom(16),
                                   "2001-01-01T00:00:00Z", client)
        assert not isinstance(refused.value, LockedOut)
    account = await login_with_token(daemon.parts.portal, "alice", PASSWORD, False, None, None, client)
    assert account.name == "alice" and daemon.parts.metrics.lockouts("soap", "user") == 0


@pytest_twisted.ensureDeferred
async def test_concurrent_guesses_get_no_more_tries_than_sequential_ones(redis: Redis) -> None:
    door = Door(redis, _clock())
    await door.accounts.add("alice", PASSWORD)
    attempts = [defer.ensureDeferred(door.login("alice", f"guess{n}")) for n in range(30)]
    attempts.append(defer.ensureDeferred(door.login("alice", PASSWORD)))
    outcomes = await defer.gatherResults(attempts)
    assert outcomes.count("wrong") == 5 and outcomes[-1] == "locked:user:900", outcomes


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_burst_of_digest_guesses_is_locked_out_after_five(daemons: Any) -> None:
    daemon = await daemons()
    answers = await defer.gatherResults([defer.ensureDeferred(daemon.soap("alice", f"guess{n}", digest=True))
                                         for n in range(40)])
    assert sorted(status for status, _, _ in answers) == [401] * 5 + [429] * 35


@pytest_twisted.ensureDeferred
async def test_a_remembered_login_still_sees_a_new_password_and_a_disabled_account(redis: Redis) -> None:
    """A client's next login is answered from the checker's memory (no
    check, no Deferred's turn), but never past a change of its account."""
    door = Door(redis, _clock())
    await door.accounts.add("alice", PASSWORD)
    checker = door.portal.checkers[IUsernamePassword]
    assert verifyObject(IRememberingChecker, checker)
    credentials = UsernamePassword(b"alice", PASSWORD.encode())
    assert checker.rememberedAvatarId(credentials) is None  # never checked
    assert await door.login("alice", PASSWORD) == "ok"
    remembered = checker.rememberedAvatarId(credentials)
    assert remembered is not None and remembered.account.name == "alice"
    assert checker.rememberedAvatarId(UsernamePassword(b"alice", b"wrong")) is None
    assert await door.login("alice", PASSWORD) == "ok"

    await door.accounts.set_password("alice", "another password")
    assert checker.rememberedAvatarId(credentials) is None
    assert await door.login("alice", PASSWORD) == "wrong"
    assert await door.login("alice", "another password") == "ok"
    assert await door.login("alice", "another password") == "ok"

    await door.accounts.change("alice", disabled=True)
    assert checker.rememberedAvatarId(UsernamePassword(b"alice", b"another password")) is None
    assert await door.login("alice", "another password") == "wrong"
