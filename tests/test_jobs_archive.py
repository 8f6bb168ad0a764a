"""The archive processor: products found under the archive root, linked into
the item's result directory, never anything outside the root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from oseod.config import CollectionConfig, ProcessingConfig
from oseod.jobs.archive import ArchiveProcessor
from oseod.jobs.processors import ProcessorConfigError
from oseod.model.orders import Notification, OrderStatus
from oseod.store.connection import Redis
from tests.test_jobs_engine import ALICE, CONFIG, Daemon, daemon, spec
from tests.pools import POOLS

S = OrderStatus


def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    (root / "urn:x:arch").mkdir(parents=True)
    for name, text in (("p1.tif", "image"), ("p1.xml", "metadata"), ("p2.tif", "other"), ("p*.tif", "star")):
        (root / "urn:x:arch" / name).write_text(text)
    (tmp_path / "secret.tif").write_text("outside")
    os.symlink(tmp_path / "secret.tif", root / "urn:x:arch" / "leak.tif")
    return root


def with_archive(redis: Redis, root: Path, **options: Any) -> Daemon:
    collection = CollectionConfig(id="urn:x:arch", processor="archive",
                                  processor_options={"root": str(root), **options})
    config = attrs.evolve(CONFIG, collections=(collection,), processing=ProcessingConfig(max_attempts=1))
    return daemon(redis, config=config)


@pytest_twisted.ensureDeferred
async def test_products_are_linked_from_the_archive(redis: Redis, tmp_path: Path) -> None:
    root = archive(tmp_path)
    d = with_archive(redis, root, pattern="{collection_id}/{product_id}.*")
    order = await d.service.submit(ALICE, spec("p1", "p*", "leak", "../../secret", collection="urn:x:arch"),
                                   Notification())
    await d.engine.start()
    await d.engine.drain()
    stored = await d.service.get(ALICE, order.order_id)
    assert [i.status.status for i in stored.items] == [S.Completed, S.Completed, S.Failed, S.Failed]
    assert stored.items[3].status.additional_info == "no file for product '../../secret' in the archive"
    placed = {p.relative_to(d.results).parts[-2:]: p for p in d.results.rglob("*") if p.is_file()}
    assert {k: v.read_text() for k, v in placed.items()} == {
        ("i0", "p1.tif"): "image", ("i0", "p1.xml"): "metadata", ("i1", "p*.tif"): "star"}
    assert placed[("i0", "p1.tif")].stat().st_ino == (root / "urn:x:arch" / "p1.tif").stat().st_ino  # a link
    await d.engine.stop()


@pytest.mark.parametrize(("options", "message"), [
    ({}, "root must name"),
    ({"root": "/a", "pattern": "/etc/*"}, "relative to root"),
    ({"root": "/a", "pattern": "{owner}/*"}, "unknown field {owner}"),
])
def test_bad_configurations_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ProcessorConfigError) as error:
        ArchiveProcessor(options, None, None, threads=POOLS)
    assert message in str(error.value)
