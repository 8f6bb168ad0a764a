# mypy: untyped-calls-exclude=twisted.conch
"""The read-only SFTP view of one account's results (oseod.results): the
same tree, isolation and download tracking as FTP.

A file's transfer is complete when the byte ranges read through its handle
cover everything from the first offset read to its end (a ``reget`` from
the middle completes a download, as REST does over FTP); it is reported
once, when the handle closes or the session ends."""

from __future__ import annotations

import stat as statmod
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

from twisted.conch.interfaces import ISFTPFile, ISFTPServer
from twisted.conch.ssh import filetransfer as ft
from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..results import Located, Node, ResultFiles

MAX_READ = 256 * 1024  # bytes per READ answer (a client may ask for more; it gets less)

Attrs = dict[str, Any]


def names_of(path: bytes) -> list[str]:
    """The tree's names for an SFTP path (UTF-8 bytes, absolute or relative
    to the root, which is the session's only working directory). ``..``
    never climbs above the root; a path that is not UTF-8 names nothing."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no such file") from None
    names: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if names:
                names.pop()
            continue
        if "\0" in part:
            raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no such file")
        names.append(part)
    return names


def _shown(names: Sequence[str]) -> bytes:
    return ("/" + "/".join(names)).encode("utf-8")


def _attrs(node: Node) -> Attrs:
    mode = (statmod.S_IFDIR | 0o555) if node.directory else (statmod.S_IFREG | 0o444)
    moment = int(node.modified)
    return {"size": node.size, "permissions": mode, "uid": 0, "gid": 0, "atime": moment, "mtime": moment}


def _long_name(node: Node, owner: str, group: str) -> bytes:
    """An ``ls -l`` line, which ``sftp``'s ``ls -l`` shows as is."""
    kind = "dr-xr-xr-x" if node.directory else "-r--r--r--"
    at = time.gmtime(node.modified)
    when = time.strftime("%b %d %H:%M", at) if at.tm_year == time.gmtime().tm_year else time.strftime(
        "%b %d  %Y", at)
    return f"{kind}    1 {owner[:8]:<8} {group[:8]:<8} {node.size:>12} {when} {node.name}".encode("utf-8")


def _denied(self: object, *args: Any) -> Any:
    # A method of the file and of the server (``self`` named, so that
    # zope.interface's verifyClass can read its signature).
    raise ft.SFTPError(ft.FX_PERMISSION_DENIED, "read-only: results can only be downloaded")


class Listing:
    """An open directory: its entries read when it was opened (conch's
    READDIR cannot take Deferreds from the iterator). Not a list subclass:
    conch names handles by ``hash()``."""

    def __init__(self, entries: list[tuple[bytes, bytes, Attrs]]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[tuple[bytes, bytes, Attrs]]:
        return iter(self._entries)

    def close(self) -> None:
        self._entries = []


@implementer(ISFTPFile)
class ResultFile:
    """One file open for reading; its reads tracked for the download count."""

    def __init__(self, found: Located, source: IO[bytes]) -> None:
        """``source``: the file, open (in the disk pool); closed by close()."""
        self._found = found
        self._source: IO[bytes] | None = source
        self._ranges: list[tuple[int, int]] = []
        self._first: int | None = None

    def readChunk(self, offset: int, length: int) -> bytes:
        if self._source is None:
            raise ft.SFTPError(ft.FX_FAILURE, "file closed")
        if self._first is None or offset < self._first:
            self._first = offset
        if offset >= self._found.size:
            raise EOFError()
        self._source.seek(offset)
        data = self._source.read(max(0, min(length, MAX_READ)))
        if not data:
            raise EOFError()
        self._ranges.append((offset, offset + len(data)))
        return data

    def _covered(self) -> tuple[bool, int]:
        """Whether the reads cover [first offset, size), and how many bytes
        they covered in all."""
        merged: list[list[int]] = []
        for start, end in sorted(self._ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        sent = sum(end - start for start, end in merged)
        if self._first is None:
            return False, 0
        if self._first >= self._found.size:  # read at its end: an empty file is downloaded so
            return self._found.size == 0, sent
        complete = bool(merged) and merged[0][0] <= self._first and merged[0][1] >= self._found.size
        return complete, sent

    def close(self) -> None:
        if self._source is None:
            return
        self._source.close()
        self._source = None
        complete, sent = self._covered()
        if self._first is not None:  # opened and never read: no transfer to report
            self._found.finished(complete, sent)

    def getAttrs(self) -> Attrs:
        return {"size": self._found.size, "permissions": statmod.S_IFREG | 0o444, "uid": 0, "gid": 0}

    setAttrs = _denied
    writeChunk = _denied


@implementer(ISFTPServer)
class ReadOnlySFTP:
    """What an SFTP session of one account sees: its results, nothing to change."""

    def __init__(self, tree: ResultFiles, client: str | None) -> None:
        self._tree = tree
        self._client = client
        self.avatar = None  # ISFTPServer names it; the session knows the avatar

    def gotVersion(self, otherVersion: int, extData: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return {}

    async def _node(self, names: Sequence[str]) -> Node:
        node = await self._tree.stat(names)
        if node is None:
            raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no such file")
        return node

    def openFile(self, filename: bytes, flags: int, attrs: Attrs) -> Deferred[ResultFile]:
        return Deferred.fromCoroutine(self._open(filename, flags))

    async def _open(self, filename: bytes, flags: int) -> ResultFile:
        if flags & (ft.FXF_WRITE | ft.FXF_APPEND | ft.FXF_CREAT | ft.FXF_TRUNC | ft.FXF_EXCL):
            _denied(self)
        names = names_of(filename)
        node = await self._node(names)
        if node.directory:
            raise ft.SFTPError(ft.FX_FAILURE, "is a directory")
        found = await self._tree.locate(names, self._client, "sftp")
        if found is None:
            raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no such file")
        try:
            return ResultFile(found, await self._tree.opened(found.path))
        except OSError:  # expired and cleaned up in the meantime
            raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no such file") from None

    def openDirectory(self, path: bytes) -> Deferred[Listing]:
        return Deferred.fromCoroutine(self._list(path))

    async def _list(self, path: bytes) -> Listing:
        names = names_of(path)
        node = await self._node(names)
        if not node.directory:
            raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "not a directory")
        account = self._tree.account
        here = Node(".", True, modified=node.modified)
        entries = [(b".", _long_name(here, account.name, account.group), _attrs(here))]
        for child in await self._tree.children(names):
            entries.append((child.name.encode("utf-8"), _long_name(child, account.name, account.group),
                            _attrs(child)))
        return Listing(entries)

    def getAttrs(self, path: bytes, followLinks: bool) -> Deferred[Attrs]:
        return Deferred.fromCoroutine(self._stat(path))

    async def _stat(self, path: bytes) -> Attrs:
        return _attrs(await self._node(names_of(path)))

    def realPath(self, path: bytes) -> bytes:
        return _shown(names_of(path))

    def readLink(self, path: bytes) -> bytes:
        raise ft.SFTPError(ft.FX_NO_SUCH_FILE, "no links here")

    def extendedRequest(self, extendedName: bytes, extendedData: bytes) -> bytes:
        raise NotImplementedError(extendedName)

    removeFile = renameFile = makeDirectory = removeDirectory = setAttrs = makeLink = _denied
