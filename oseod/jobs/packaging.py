"""The packer: one archive of a batch's result files (``packaging`` zip,
tar, tgz or bzip2; see :mod:`oseod.core.packages`).

It runs in the daemon's disk thread pool and streams each file from disk into
the archive (never a whole file in memory). The archive is written under a
hidden temporary name beside its final one, flushed to disk, then renamed:
a package under its final name is always whole, and a crash midway leaves
only a ``.NAME.*.partial`` that :func:`remove_package` takes away with the
package. Packing the same files again gives the same bytes (members in a
fixed order, their times those of the files, owners and modes fixed, no
time in the gzip header), so a batch packed twice (a job taken back after a
crash) yields the same package.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import attrs

from ..core.deliverables import files_in
from ..core.packages import SUFFIXES
from ..threads import ThreadPools

CHUNK = 1024 * 1024
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the oldest time a zip entry can hold
_ZIP_END = (2107, 12, 31, 23, 59, 58)


@attrs.frozen
class Member:
    """One item of a package: its folder there, and where its files are."""

    folder: str  # one path component
    directory: Path


@attrs.frozen
class Package:
    path: Path
    files: int  # result files in it
    size: int  # bytes of the package


class Packer:
    """Builds and removes packages off the reactor thread."""

    def __init__(self, threads: ThreadPools) -> None:
        self._threads = threads

    async def pack(self, target: Path, packaging: str, members: Sequence[Member]) -> Package:
        return await self._threads.on_engine(build_package, target, packaging, members)

    async def remove(self, target: Path) -> None:
        await self._threads.on_engine(remove_package, target)


def build_package(target: Path, packaging: str, members: Sequence[Member]) -> Package:
    """Write the package of ``members`` (each one's plain, non-hidden files,
    by name) to ``target``, replacing whatever is there. Blocking."""
    if packaging not in SUFFIXES:
        raise ValueError(f"cannot build packaging {packaging!r}: only {', '.join(SUFFIXES)}")
    entries = [(f"{member.folder}/{found.name}", found.path)
               for member in members for found in files_in(member.directory)]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            _WRITERS[packaging](out, entries)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return Package(target, len(entries), target.stat().st_size)


def remove_package(target: Path) -> None:
    """Remove a package and any partial one a crash left beside it. Blocking."""
    target.unlink(missing_ok=True)
    if target.parent.is_dir():
        for leftover in target.parent.glob(f".{target.name}.*.partial"):
            leftover.unlink(missing_ok=True)


Entries = Sequence[tuple[str, Path]]
Sink = IO[bytes] | gzip.GzipFile | bz2.BZ2File  # where an archive is written


def _write_zip(out: IO[bytes], entries: Entries) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, path in entries:
            with open(path, "rb") as source:
                status = os.fstat(source.fileno())
                moment = time.localtime(status.st_mtime)[:6]  # zip times are local, as zip and unzip read them
                info = zipfile.ZipInfo(name, date_time=min(max(moment, _ZIP_EPOCH), _ZIP_END))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix: the mode below means something
                info.external_attr = 0o100644 << 16
                info.file_size = status.st_size  # zip64 entries when the file needs them
                with archive.open(info, "w") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)


def _write_tar(out: Sink, entries: Entries) -> None:
    with tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as archive:
        for name, path in entries:
            with open(path, "rb") as source:
                status = os.fstat(source.fileno())
                info = tarfile.TarInfo(name)
                info.size = status.st_size
                info.mtime = int(status.st_mtime)  # a whole number: no pax time record
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, source)


def _write_tgz(out: IO[bytes], entries: Entries) -> None:
    # No file name and time 0 in the gzip header: the same files, the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as compressed:
        _write_tar(compressed, entries)


def _write_bzip2(out: IO[bytes], entries: Entries) -> None:
    with bz2.BZ2File(out, "wb") as compressed:
        _write_tar(compressed, entries)


_WRITERS: dict[str, Callable[[IO[bytes], Entries], None]] = {
    "zip": _write_zip, "tar": _write_tar, "tgz": _write_tgz, "bzip2": _write_bzip2,
}
