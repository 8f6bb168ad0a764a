"""The ``archive`` processor: the product is already a file (or files) in
the provider's archive; it is hard-linked (or, across file systems, copied)
into the item's result directory.

    processor = "archive"
    processor_options = { root = "/srv/archive", pattern = "{collection_id}/{product_id}.*" }

``pattern`` is a glob under ``root`` whose fields (``{product_id}``,
``{collection_id}``, ``{item_id}``) are filled in with glob characters
escaped: a product id is matched literally, and every file found must lie
inside ``root`` (no ``..``, no symlink out of it). No file found fails the
attempt, naming the product. Linking and copying write a temporary name and
rename it: a second run leaves the same files.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IReactorThreads, IReactorTime
from zope.interface import implementer

from ..threads import ThreadPools
from .processors import IItemProcessor, ItemWork, ProcessorConfigError, check_template

FIELDS = ("product_id", "collection_id", "item_id")


class ArchiveMiss(Exception):
    pass


@implementer(IItemProcessor)
class ArchiveProcessor:
    def __init__(self, options: Mapping[str, Any], reactor: IReactorThreads, clock: IReactorTime, *, threads: ThreadPools) -> None:
        root, pattern = options.get("root"), options.get("pattern", "{product_id}*")
        if not isinstance(root, str) or not root:
            raise ProcessorConfigError("processor_options.root must name the archive directory")
        if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
            raise ProcessorConfigError("processor_options.pattern must be a glob relative to root")
        check_template(pattern, FIELDS, "processor_options.pattern")
        self._root = Path(root).resolve()
        self._pattern = pattern
        self._reactor = reactor
        self._threads = threads

    def find(self, work: ItemWork) -> list[Path]:
        """The archive's files for the item, inside root only. Blocking."""
        item = work.item
        values = {"product_id": item.product_id or "", "collection_id": item.collection_id or "",
                  "item_id": item.item_id}
        pattern = self._pattern.format(**{k: glob.escape(v) for k, v in values.items()})
        found = []
        for name in sorted(glob.glob(pattern, root_dir=self._root)):
            path = (self._root / name).resolve()
            if path.is_file() and path.is_relative_to(self._root):
                found.append(path)
        return found

    async def prepare_item(self, work: ItemWork) -> None:
        files = await self._threads.on_engine(self.find, work)
        if not files:
            raise ArchiveMiss(f"no file for product {work.item.product_id!r} in the archive")
        await self._threads.on_engine(_place, files, work.directory)

    def deliver_item(self, work: ItemWork) -> None:
        pass

    async def clean_item(self, work: ItemWork) -> None:
        await self._threads.on_engine(shutil.rmtree, work.directory, ignore_errors=True)


def _place(files: list[Path], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for source in files:
        target = directory / source.name
        partial = directory / f".{source.name}.partial"
        if partial.exists():
            partial.unlink()
        try:
            os.link(source, partial)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copyfile(source, partial)
        os.replace(partial, target)
