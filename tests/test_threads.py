"""oseod.threads: the named pools, their sizes from [server], their life as a
daemon step, and the work that takes each (seen by the name of the thread
it ran in)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.interfaces import IReactorFromThreads

from oseod.auth.passwords import hash_password
from oseod.config import ConfigError, parse_config
from oseod.tap import Options, makeService
from oseod.threads import ENGINE_THREADS, PUSH_THREADS, RESOLVE_THREADS, ThreadPools
from tests.pools import POOLS


def names_of_threads_running(module: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace ``module.name`` by itself noting the thread each call runs in."""
    seen: list[str] = []
    original: Callable[..., Any] = getattr(module, name)

    def noting(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, noting)
    return seen


@pytest.fixture
def pools() -> Iterator[ThreadPools]:
    made = ThreadPools.sized(IReactorFromThreads(reactor), disk=3, cpu=1)
    made.start()
    yield made
    made.stop()


def test_pools_are_sized_and_named() -> None:
    made = ThreadPools.sized(IReactorFromThreads(reactor), disk=5, cpu=3, engine=4)
    pools = (made.disk, made.cpu, made.resolve, made.push, made.engine)
    assert [pool.max for pool in pools] == [5, 3, RESOLVE_THREADS, PUSH_THREADS, 4]
    assert [pool.name for pool in pools] == ["oseod-disk", "oseod-cpu", "oseod-resolve", "oseod-push", "oseod-engine"]
    assert ThreadPools.sized(IReactorFromThreads(reactor), disk=1, cpu=1).engine.max == ENGINE_THREADS


def test_start_and_stop() -> None:
    made = ThreadPools.sized(IReactorFromThreads(reactor), disk=2, cpu=1)
    made.start()
    pools = (made.disk, made.cpu, made.resolve, made.push, made.engine)
    assert all(pool.started for pool in pools)
    made.stop()
    assert not any(pool.started for pool in pools)
    assert all(pool.joined for pool in pools)


@pytest_twisted.ensureDeferred
async def test_each_pool_runs_its_work_in_threads_of_its_name(pools: ThreadPools) -> None:
    def name() -> str:
        return threading.current_thread().name

    assert "oseod-disk" in await pools.on_disk(name)
    assert "oseod-cpu" in await pools.on_cpu(name)
    assert "oseod-resolve" in await pools.on_resolve(name)
    assert "oseod-push" in await pools.on_push(name)
    assert "oseod-engine" in await pools.on_engine(name)
    assert await pools.on_disk(lambda a, b=0: a + b, 1, b=2) == 3


def daemon_pools(tmp_path: Path, toml: str = "") -> ThreadPools:
    """The pools of the daemon that config would start, as its step holds them."""
    tmp_path.mkdir()
    config = tmp_path / "oseod.toml"
    config.write_text(toml)
    options = Options()
    options.parseOptions(["--config", str(config), "--data-dir", str(tmp_path / "data"),
                          "--http", "tcp:0:interface=127.0.0.1", "--ftp", ""])
    service: Any = makeService(options)
    names = [step.name for step in service._steps]  # noqa: SLF001
    step = service._steps[names.index("thread pools")]  # noqa: SLF001
    # Started after Redis, before every part that uses them; stopped after them.
    assert names.index("redis") < names.index("thread pools") < names.index("password checkers")
    assert names.index("thread pools") < names.index("order processing")
    assert step.start.__self__ is step.stop.__self__
    pools: ThreadPools = step.start.__self__
    assert step.start == pools.start and step.stop == pools.stop
    return pools


def test_the_daemon_sizes_its_pools_from_the_config(tmp_path: Path) -> None:
    pools = daemon_pools(tmp_path / "a")
    assert (pools.disk.max, pools.cpu.max, pools.engine.max) == (8, 2, 2)
    pools = daemon_pools(tmp_path / "b", "[server]\ndisk_threads = 16\ncpu_threads = 4\nengine_threads = 3\n")
    assert (pools.disk.max, pools.cpu.max, pools.engine.max) == (16, 4, 3)


@pytest.mark.parametrize("key,value,fragment", [
    ("disk_threads", 0, "at least 1"), ("disk_threads", 1000, "at most 256"), ("cpu_threads", "2", "integer"),
    ("cpu_threads", 0, "at least 1"), ("cpu_threads", 65, "at most 64"), ("engine_threads", 0, "at least 1"),
])
def test_bad_pool_sizes_name_the_key(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": {key: value}})
    assert caught.value.key == f"server.{key}"
    assert fragment in str(caught.value)


@pytest_twisted.ensureDeferred
async def test_a_login_verifies_its_password_in_the_cpu_pool(redis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.cred.credentials import UsernamePassword

    from oseod.auth import checkers
    from oseod.auth.checkers import UserStoreChecker
    from oseod.store.users import UserRecord, UserStore

    users = UserStore(redis, clock=reactor)
    await users.create(UserRecord(name="alice", password_hash=hash_password("alice-password")))
    seen = names_of_threads_running(checkers, "verify_password", monkeypatch)
    checker = UserStoreChecker(users, reactor, 0.0, threads=POOLS)
    await checker.requestAvatarId(UsernamePassword(b"alice", b"alice-password"))
    assert seen and all("oseod-cpu" in name for name in seen)


@pytest_twisted.ensureDeferred
async def test_setting_a_password_hashes_it_in_the_cpu_pool(redis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from oseod.core import accounts
    from oseod.core.accounts import AccountService
    from oseod.store.users import UserStore

    seen = names_of_threads_running(accounts, "hash_password", monkeypatch)
    await AccountService(UserStore(redis, clock=reactor), reactor, threads=POOLS).add("bob", "bob-password-1")
    assert seen and all("oseod-cpu" in name for name in seen)


@pytest_twisted.ensureDeferred
async def test_result_files_are_made_and_removed_in_the_engine_pool_and_listed_in_the_disk_pool(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from oseod.core import deliverables
    from oseod.core.deliverables import Deliverables
    from oseod.jobs import dummy
    from oseod.jobs.dummy import DummyProcessor
    from oseod.jobs.processors import ItemWork
    from oseod.model.orders import ItemSpec

    written = names_of_threads_running(dummy, "_write", monkeypatch)
    listed = names_of_threads_running(deliverables, "files_in", monkeypatch)
    work = ItemWork(order_id="o", owner="u", item=ItemSpec(item_id="i1", product_id="p1"), attempt=1,
                    directory=tmp_path / "u" / "o" / "i1")
    processor = DummyProcessor({"size": 10}, reactor, reactor, threads=POOLS)
    await processor.prepare_item(work)
    files = await Deliverables(None, tmp_path, POOLS).listing("u", "o", "i1")  # type: ignore[arg-type]
    assert [f.name for f in files] == ["p1.dat"]
    await processor.clean_item(work)
    assert not (work.directory / "p1.dat").exists()
    removed = names_of_threads_running(dummy.Path, "unlink", monkeypatch)
    await processor.prepare_item(work)
    await processor.clean_item(work)
    assert written and all("oseod-engine" in name for name in written)
    assert removed and all("oseod-engine" in name for name in removed)
    assert listed and all("oseod-disk" in name for name in listed)
