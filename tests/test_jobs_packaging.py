"""Packages: the packer on its own (every format unpacked and compared byte
for byte, the same bytes twice, nothing half-written under the final name),
then the engine packing batches on a real Redis: after every item is made,
while failed ones are tried again, when some fail for good, a massive
order's batches, and their expiry."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor, task
from zope.interface import implementer

from oseod.config import (
    DEMO_COLLECTION,
    PACKAGING_FORMATS,
    CollectionConfig,
    Config,
    OrdersConfig,
    ProcessingConfig,
)
from oseod.core.deliverables import package_path, path_name, result_directory
from oseod.core.ordering import OrderingService
from oseod.core.packages import SUFFIXES, package_name
from oseod.jobs import packaging
from oseod.jobs.dummy import content
from oseod.jobs.engine import BUILTINS, WAITING_FOR_PACKAGE, Engine
from oseod.jobs.packaging import Member, Packer, build_package, remove_package
from oseod.jobs.processors import IItemProcessor, ItemWork
from oseod.model.orders import ItemSpec, Notification, Order, OrderSpec, OrderStatus, OrderType
from oseod.store.connection import Redis
from oseod.store.jobs import JobStore
from oseod.store.orders import OrderStore
from tests.parts import RESULTS
from tests.test_jobs_engine import ALICE
from tests.pools import POOLS

S = OrderStatus
DAY = 86400.0


def unpack(data: bytes, packaging_value: str) -> dict[str, bytes]:
    """Every member of a package, by name."""
    if packaging_value == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            return {name: archive.read(name) for name in archive.namelist()}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        found = {}
        for member in archive.getmembers():
            assert member.isfile() and member.mode == 0o644 and (member.uid, member.gid) == (0, 0)
            source = archive.extractfile(member)
            assert source is not None
            found[member.name] = source.read()
        return found


def test_formats_are_the_configurable_ones() -> None:
    assert tuple(SUFFIXES) == PACKAGING_FORMATS
    assert [package_name("12", 3, p) for p in PACKAGING_FORMATS] == ["12-3.zip", "12-3.tar", "12-3.tar.gz",
                                                                    "12-3.tar.bz2"]


@pytest.mark.parametrize("packaging_value", PACKAGING_FORMATS)
def test_a_package_holds_each_items_files_byte_for_byte(tmp_path: Path, packaging_value: str) -> None:
    big = os.urandom(3 * packaging.CHUNK + 17)  # several reads and writes
    files = {"a/big.dat": big, "a/small.txt": b"small\n", "b/empty.dat": b"", "b%2Fc/é.tif": b"\x00\x01"}
    for name, data in files.items():
        (tmp_path / "items" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "items" / name).write_bytes(data)
    (tmp_path / "items" / "a" / ".big.dat.partial").write_bytes(b"a processor's work")  # hidden: left out
    (tmp_path / "items" / "a" / "sub").mkdir()  # not a plain file: left out
    members = [Member(folder, tmp_path / "items" / folder) for folder in ("a", "b", "b%2Fc")]
    members.append(Member("nothing", tmp_path / "items" / "missing"))  # an item without files
    target = tmp_path / "out" / f"7-0{SUFFIXES[packaging_value]}"

    package = build_package(target, packaging_value, members)
    assert (package.path, package.files, package.size) == (target, 4, target.stat().st_size)
    first = target.read_bytes()
    assert unpack(first, packaging_value) == files
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial left beside it

    build_package(target, packaging_value, members)  # packed again (a job taken back): the same package
    assert target.read_bytes() == first


def test_a_failed_packing_leaves_neither_a_package_nor_a_partial(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.dat").write_bytes(b"x" * 1000)
    target = tmp_path / "out" / "7-0.zip"

    def disk_full(out: Any, entries: Any) -> None:
        out.write(b"half a package")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(packaging._WRITERS, "zip", disk_full)
    with pytest.raises(OSError, match="No space"):
        build_package(target, "zip", [Member("a", tmp_path / "a")])
    assert list(target.parent.iterdir()) == []
    with pytest.raises(ValueError, match="rar"):
        build_package(target, "rar", [])


def test_removing_a_package_takes_what_a_crash_left_too(tmp_path: Path) -> None:
    target = tmp_path / "7-0.tar"
    target.write_bytes(b"package")
    (tmp_path / ".7-0.tar.x1y2.partial").write_bytes(b"half")
    (tmp_path / "7-1.tar").write_bytes(b"another batch's")
    remove_package(target)
    assert [p.name for p in tmp_path.iterdir()] == ["7-1.tar"]
    remove_package(target)  # again: nothing to do
    remove_package(tmp_path / "gone" / "7-0.tar")


@pytest_twisted.ensureDeferred
async def test_the_packer_works_in_a_thread(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.dat").write_bytes(b"data")
    packer = Packer(POOLS)
    package = await packer.pack(tmp_path / "out" / "1-0.tar", "tar", [Member("a", tmp_path / "a")])
    assert unpack(package.path.read_bytes(), "tar") == {"a/f.dat": b"data"}
    await packer.remove(package.path)
    assert not package.path.exists()


# -- the engine -----------------------------------------------------------------


@implementer(IItemProcessor)
class TwoFiles:
    """Two files per item (the dummy's content and a note); a product named
    ``fail-once...`` fails its first attempt, one named ``fail...`` every one."""

    def __init__(self, options: Mapping[str, Any], reactor: Any, clock: Any) -> None:
        pass

    def prepare_item(self, work: ItemWork) -> None:
        product = work.item.product_id or ""
        if product.startswith("fail-once") and work.attempt == 1 or product.startswith("fail-always"):
            raise RuntimeError(f"{product} failed")
        work.directory.mkdir(parents=True, exist_ok=True)
        for name, data in files_of(work.item.item_id).items():
            (work.directory / name).write_bytes(data)

    def deliver_item(self, work: ItemWork) -> None:
        pass

    def clean_item(self, work: ItemWork) -> None:
        for name in files_of(work.item.item_id):
            (work.directory / name).unlink(missing_ok=True)


def files_of(item_id: str) -> dict[str, bytes]:
    return {"product.dat": content(item_id, 5000), "note.txt": f"item {item_id}\n".encode()}


TWO_FILES = CollectionConfig(id="urn:x:two", processor="two", order_types=("PRODUCT_ORDER", "MASSIVE_ORDER"),
                             packaging=PACKAGING_FORMATS)
CONFIG = Config(orders=OrdersConfig(max_items_per_order=3, max_active_items_per_user=1000),
                processing=ProcessingConfig(workers=4, max_attempts=2, retry_delay=10.0),
                collections=(DEMO_COLLECTION, TWO_FILES))


@attrs.frozen
class World:
    service: OrderingService
    engine: Engine
    clock: task.Clock
    results: Path


def world(redis: Redis) -> World:
    clock = task.Clock()
    clock.advance(1_000_000.0)
    service = OrderingService(OrderStore(redis), CONFIG, clock)
    results = RESULTS / uuid.uuid4().hex
    engine = Engine(service, JobStore(redis), CONFIG, reactor, clock, results=results, consumer=uuid.uuid4().hex,
                    builtins={**BUILTINS, "two": TwoFiles}, threads=POOLS)
    service.dispatcher = engine
    return World(service, engine, clock, results)


def order_spec(packaging_value: str | None, *products: str, order_type: OrderType = OrderType.PRODUCT_ORDER,
               item_ids: tuple[str, ...] = ()) -> OrderSpec:
    ids = item_ids or tuple(f"i{n}" for n in range(len(products)))
    return OrderSpec(order_type, packaging=packaging_value, items=tuple(
        ItemSpec(item_id=item_id, product_id=p, collection_id=TWO_FILES.id) for item_id, p in zip(ids, products)))


def package_of(w: World, order: Order, batch: int = 0) -> Path:
    assert order.spec.packaging is not None
    return package_path(w.results, order.owner, order.order_id, package_name(order.order_id, batch,
                                                                             order.spec.packaging))


def expected(*item_ids: str) -> dict[str, bytes]:
    return {f"{path_name(i)}/{name}": data for i in item_ids for name, data in files_of(i).items()}


@pytest.mark.parametrize("packaging_value", PACKAGING_FORMATS)
@pytest_twisted.ensureDeferred
async def test_a_batch_is_packaged_then_completed(redis: Redis, packaging_value: str) -> None:
    w = world(redis)
    await w.engine.start()
    # Ids an archive must not turn into other paths ("/", "." and ".." are refused at Submit): one folder each.
    ids = ("first", "a%2Fb", ".x")
    order = await w.service.submit(ALICE, order_spec(packaging_value, "p1", "p2", "p3", item_ids=ids), Notification())
    await w.engine.drain()
    stored = await w.service.get(ALICE, order.order_id)
    name = package_name(order.order_id, 0, packaging_value)
    assert stored.status.status is S.Completed
    assert [(i.status.status, i.status.additional_info) for i in stored.items] == [
        (S.Completed, f"Completed; in package {name}")] * 3
    assert unpack(package_of(w, order).read_bytes(), packaging_value) == expected(*ids)
    assert sorted(expected(*ids)) == sorted(["first/product.dat", "first/note.txt", "a%252Fb/product.dat",
                                             "a%252Fb/note.txt", "%2Ex/product.dat", "%2Ex/note.txt"])
    ready = await w.service.describe_result_access(ALICE, order.order_id, next_ready=True)
    assert [(r.item.spec.item_id, r.package, r.expires_at) for r in ready] == [
        (i, name, w.clock.seconds() + 10 * DAY) for i in ids]
    # the items' own files stay where they are, each downloadable too
    assert all((result_directory(w.results, "alice", order.order_id, i) / "note.txt").exists() for i in ids)
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_made_items_wait_for_the_retry_of_their_batch(redis: Redis) -> None:
    w = world(redis)
    await w.engine.start()
    order = await w.service.submit(ALICE, order_spec("zip", "p0", "fail-once", "p2"), Notification())
    await w.engine.drain()
    stored = await w.service.get(ALICE, order.order_id)
    assert [(i.status.status, i.status.additional_info) for i in stored.items] == [
        (S.InProduction, WAITING_FOR_PACKAGE),
        (S.InProduction, "Attempt 1 failed: fail-once failed; trying again in 10 s"),
        (S.InProduction, WAITING_FOR_PACKAGE)]
    assert await w.service.ready_items(ALICE, order.order_id) == []
    assert not package_of(w, order).exists()

    w.clock.advance(10.0)  # the retry is due
    await w.engine.drain()
    stored = await w.service.get(ALICE, order.order_id)
    assert stored.status.status is S.Completed
    assert {i.status.status for i in stored.items} == {S.Completed}
    assert unpack(package_of(w, order).read_bytes(), "zip") == expected("i0", "i1", "i2")
    ready = await w.service.describe_result_access(ALICE, order.order_id, next_ready=True)
    assert [r.item.spec.item_id for r in ready] == ["i0", "i1", "i2"]  # the three at once, for nextReady
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_items_failed_for_good_are_left_out_of_the_package(redis: Redis) -> None:
    w = world(redis)
    await w.engine.start()
    order = await w.service.submit(ALICE, order_spec("tgz", "p0", "fail-always", "p2"), Notification())
    await w.engine.drain()
    w.clock.advance(10.0)
    await w.engine.drain()
    stored = await w.service.get(ALICE, order.order_id)
    assert [i.status.status for i in stored.items] == [S.Completed, S.Failed, S.Completed]
    assert (stored.status.status, stored.status.additional_info) == (S.Completed, "2 of 3 items completed, 1 failed")
    assert unpack(package_of(w, order).read_bytes(), "tgz") == expected("i0", "i2")
    assert [r.item.spec.item_id for r in await w.service.ready_items(ALICE, order.order_id)] == ["i0", "i2"]

    every = await w.service.submit(ALICE, order_spec("tgz", "fail-always-1", "fail-always-2"), Notification())
    await w.engine.drain()
    w.clock.advance(10.0)
    await w.engine.drain()
    assert (await w.service.get(ALICE, every.order_id)).status.status is S.Failed
    assert not package_of(w, every).exists()  # nothing to package
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_each_batch_of_a_massive_order_has_its_package(redis: Redis) -> None:
    w = world(redis)
    await w.engine.start()
    products = [f"p{n}" for n in range(5)]
    order = await w.service.submit(ALICE, order_spec("bzip2", *products, order_type=OrderType.MASSIVE_ORDER),
                                   Notification())
    await w.engine.drain()
    assert (await w.service.get(ALICE, order.order_id)).status.status is S.Completed
    assert unpack(package_of(w, order, 0).read_bytes(), "bzip2") == expected("i0", "i1", "i2")
    assert unpack(package_of(w, order, 1).read_bytes(), "bzip2") == expected("i3", "i4")
    ready = await w.service.ready_items(ALICE, order.order_id)
    assert [r.package for r in ready] == [f"{order.order_id}-0.tar.bz2"] * 3 + [f"{order.order_id}-1.tar.bz2"] * 2
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_package_expires_with_its_items(redis: Redis) -> None:
    w = world(redis)
    await w.engine.start()
    order = await w.service.submit(ALICE, order_spec("tar", "p0", "p1"), Notification())
    plain = await w.service.submit(ALICE, order_spec(None, "p0"), Notification())
    await w.engine.drain()
    package = package_of(w, order)
    assert package.exists()
    assert [r.package for r in await w.service.ready_items(ALICE, plain.order_id)] == [None]

    w.clock.advance(10 * DAY - 1)
    assert await w.service.expire_results(w.engine.clean) == 0
    w.clock.advance(1)
    assert await w.service.ready_items(ALICE, order.order_id) == []  # due: no longer offered
    w.clock.advance(1)
    assert await w.service.expire_results(w.engine.clean) == 3
    assert not package.exists()
    assert [p for p in w.results.rglob("*") if p.is_file()] == []
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_each_timeslot_of_a_subscription_has_its_package(redis: Redis) -> None:
    w = world(redis)
    await w.engine.start()
    subscription = OrderSpec(OrderType.SUBSCRIPTION_ORDER, packaging="zip", items=(
        ItemSpec("s", subscription=True, collection_id=DEMO_COLLECTION.id),))
    order = await w.service.submit(ALICE, subscription, Notification())
    for timestamp in ("2024-05-01T10:00:00Z", "2024-05-02T10:00:00Z"):
        assert await w.service.timeslot(DEMO_COLLECTION.id, timestamp) == [order.order_id]
        await w.engine.drain()
    ready = await w.service.ready_items(ALICE, order.order_id)
    assert [(r.item.spec.item_id, r.package) for r in ready] == [
        ("s@2024-05-01T10:00:00Z", f"{order.order_id}-1.zip"), ("s@2024-05-02T10:00:00Z", f"{order.order_id}-2.zip")]
    for batch, r in enumerate(ready, 1):
        item = r.item.spec
        assert unpack(package_of(w, order, batch).read_bytes(), "zip") == {
            f"{path_name(item.item_id)}/{(item.product_id or '').replace(':', '_')}.dat": content(item.item_id, 1024)}
    await w.engine.stop()


@pytest_twisted.ensureDeferred
async def test_an_expanded_massive_order_packages_each_batch_and_its_template(redis: Redis) -> None:
    from tests.test_jobs_engine import CountingProcessor, ExpandingProcessor, daemon

    CountingProcessor.made.clear()
    expanding = CollectionConfig(id="urn:x:exp", processor="expanding", order_types=("MASSIVE_ORDER",),
                                 packaging=("tar",))
    d = daemon(redis, config=attrs.evolve(CONFIG, collections=(expanding,)))
    massive = OrderSpec(OrderType.PRODUCT_ORDER, reference="Massive order", packaging="tar",
                        items=(ItemSpec("all", product_id="5", collection_id=expanding.id),))
    order = await d.service.submit(ALICE, massive, Notification())
    await d.engine.start()
    await d.engine.drain()
    stored = await d.service.get(ALICE, order.order_id)
    assert stored.status.status is S.Completed
    assert stored.items[0].status.additional_info == f"Expanded into 5 items in 2 batches; in package {order.order_id}-0.tar"
    ready = await d.service.ready_items(ALICE, order.order_id)
    assert [r.package for r in ready] == [f"{order.order_id}-{b}.tar" for b in (0, 1, 1, 1, 2, 2)]
    assert ExpandingProcessor.asked[-1] == 2
    for batch in (0, 1, 2):  # the counting processor writes no file: packages of no file, but there
        path = package_path(d.results, "alice", order.order_id, f"{order.order_id}-{batch}.tar")
        assert unpack(path.read_bytes(), "tar") == {}
    await d.engine.stop()
