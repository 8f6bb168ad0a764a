from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from oseod.auth.passwords import hash_password
from oseod.store.connection import Redis
from oseod.store.users import RECORD_FRESH_SECONDS, NoSuchUser, UserExists, UserRecord, UserStore


@pytest_twisted.ensureDeferred
async def test_create_get_list_delete(redis: Redis) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="alice", password_hash=hash_password("pw"), group="eo", admin=True, email="a@x.org"))
    await users.create(UserRecord(name="bob", password_hash=hash_password("pw2")))
    alice = await users.get("alice")
    assert alice is not None
    assert (alice.group, alice.admin, alice.email) == ("eo", True, "a@x.org")
    assert alice.created_at > 0
    assert [u.name for u in await users.list()] == ["alice", "bob"]
    with pytest.raises(UserExists):
        await users.create(UserRecord(name="alice", password_hash="x"))
    await users.delete("alice")
    assert await users.get("alice") is None
    assert [u.name for u in await users.list()] == ["bob"]
    with pytest.raises(NoSuchUser):
        await users.delete("alice")


@pytest_twisted.ensureDeferred
async def test_number_like_values_survive(redis: Redis) -> None:
    """txredisapi must not turn "0012" into 12 (convertNumbers=False)."""
    users = UserStore(redis)
    await users.create(UserRecord(name="0012", password_hash="h", group="007", email="1e3"))
    record = await users.get("0012")
    assert record is not None
    assert (record.name, record.group, record.email) == ("0012", "007", "1e3")
    assert [u.name for u in await users.list()] == ["0012"]


@pytest_twisted.ensureDeferred
async def test_update(redis: Redis) -> None:
    users = UserStore(redis)
    await users.create(UserRecord(name="carol", password_hash="old"))
    await users.update("carol", password_hash="new", group="g2", admin=True)
    record = await users.get("carol")
    assert record is not None and (record.password_hash, record.group, record.admin) == ("new", "g2", True)
    with pytest.raises(NoSuchUser):
        await users.update("nobody", group="x")


@pytest.mark.parametrize("name", ["", "../x", "a b", "*", "x" * 65, "ü"])
@pytest_twisted.ensureDeferred
async def test_invalid_names_refused(redis: Redis, name: str) -> None:
    users = UserStore(redis)
    with pytest.raises(ValueError):
        await users.create(UserRecord(name=name, password_hash="h"))
    assert await users.get(name) is None


@pytest_twisted.ensureDeferred
async def test_records_are_reused_for_a_second_and_our_own_changes_apply_at_once(redis: Redis) -> None:
    clock = Clock()
    here, there = UserStore(redis, clock=clock), UserStore(redis)
    await here.create(UserRecord(name="dora", password_hash="h1", group="g1"))
    assert (await here.get("dora")).group == "g1"  # type: ignore[union-attr]

    # Another daemon's change: seen once the second is over.
    await there.update("dora", group="g2")
    assert (await here.get("dora")).group == "g1"  # type: ignore[union-attr]
    clock.advance(RECORD_FRESH_SECONDS)
    assert (await here.get("dora")).group == "g2"  # type: ignore[union-attr]

    # Our own changes: at once, deletion included; an unknown name too is kept.
    await here.update("dora", password_hash="h2")
    assert (await here.get("dora")).password_hash == "h2"  # type: ignore[union-attr]
    await here.delete("dora")
    assert await here.get("dora") is None
    await there.create(UserRecord(name="dora", password_hash="h3"))
    assert await here.get("dora") is None
    clock.advance(RECORD_FRESH_SECONDS)
    assert (await here.get("dora")).password_hash == "h3"  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_a_read_that_overlaps_our_change_is_not_kept(redis: Redis) -> None:
    users = UserStore(redis, clock=Clock())
    await users.create(UserRecord(name="emil", password_hash="old"))
    reading = defer.ensureDeferred(users.get("emil"))  # in flight while the password changes
    await users.update("emil", password_hash="new")
    await reading
    assert (await users.get("emil")).password_hash == "new"  # type: ignore[union-attr]
