# mypy: untyped-calls-exclude=twisted.protocols.ftp
"""The FTP avatar: one account's read-only view of its deliverable tree."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, fail
from twisted.protocols import ftp
from twisted.python.filepath import Permissions
from zope.interface import implementer

from ..model.accounts import Account
from .tree import EmptyTree, IDeliverableTree, Node

Facts = list[object]
Listing = list[tuple[str, Facts]]
Names = list[str]


class NotADirectory(ftp.FTPCmdError):
    """550 for CWD to a file (the stock IS_NOT_A_DIR text speaks of RMD)."""

    errorCode = ftp.REQ_ACTN_NOT_TAKEN

    def __init__(self, path: str) -> None:
        ftp.FTPCmdError.__init__(self, f"{path}: not a directory")


def _shown(path: Sequence[str]) -> str:
    """``path`` as the client wrote it, for a reply line: still the wire
    bytes decoded as latin-1, so the protocol can always send it back."""
    return "/" + "/".join(path)


def _names(path: Sequence[str]) -> Names:
    """The tree's names for ``path``.

    The stock protocol decodes every command line as latin-1, so each
    segment is the client's bytes one char per byte; encoding back gives
    those bytes, which modern clients send as UTF-8. ``ftp.toSegments`` has
    already refused climbing above the root; the name check below repeats
    that so a tree can build keys or file names from what it is given.
    """
    try:
        names = [segment.encode("latin-1").decode("utf-8") for segment in path]
    except UnicodeError:
        raise ftp.FileNotFoundError(_shown(path)) from None
    for name in names:
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise ftp.FileNotFoundError(_shown(path))
    return names


@implementer(ftp.IFTPShell)
class ReadOnlyShell:
    """What an FTP session of ``account`` can see and do: read ``tree``,
    change nothing. Paths are lists of segments as the protocol hands them
    (see :func:`_names`)."""

    def __init__(self, account: Account, tree: IDeliverableTree | None = None) -> None:
        self.account = account
        self._tree: IDeliverableTree = tree if tree is not None else EmptyTree()
        # Set by REST for the next RETR (the stock protocol has no REST).
        self.restart_offset = 0
        # The session's peer address, set by the protocol at login, and how
        # the files go (the protocol says "ftps" while data is protected).
        self.client: str | None = None
        self.via = "ftp"

    # -- writes: all refused ------------------------------------------------

    def _refuse(self, path: Sequence[str]) -> Deferred[None]:
        return fail(ftp.PermissionDeniedError(_shown(path)))

    def makeDirectory(self, path: Sequence[str]) -> Deferred[None]:
        return self._refuse(path)

    def removeDirectory(self, path: Sequence[str]) -> Deferred[None]:
        return self._refuse(path)

    def removeFile(self, path: Sequence[str]) -> Deferred[None]:
        return self._refuse(path)

    def rename(self, fromPath: Sequence[str], toPath: Sequence[str]) -> Deferred[None]:
        return self._refuse(fromPath)

    def openForWriting(self, path: Sequence[str]) -> Deferred[None]:
        return self._refuse(path)

    # -- reads ----------------------------------------------------------------

    def access(self, path: Sequence[str]) -> Deferred[None]:
        return Deferred.fromCoroutine(self._access(path))

    def stat(self, path: Sequence[str], keys: Sequence[str] = ()) -> Deferred[Facts]:
        return Deferred.fromCoroutine(self._stat(path, keys))

    def list(self, path: Sequence[str], keys: Sequence[str] = ()) -> Deferred[Listing]:
        return Deferred.fromCoroutine(self._list(path, keys))

    def openForReading(self, path: Sequence[str]) -> Deferred[ftp.IReadFile]:
        return Deferred.fromCoroutine(self._open(path))

    async def _node(self, path: Sequence[str]) -> tuple[Names, Node]:
        names = _names(path)
        node = await self._tree.stat(names)
        if node is None:
            raise ftp.FileNotFoundError(_shown(path))
        return names, node

    async def _access(self, path: Sequence[str]) -> None:
        _, node = await self._node(path)
        if not node.directory:
            raise NotADirectory(_shown(path))

    async def _stat(self, path: Sequence[str], keys: Sequence[str]) -> Facts:
        _, node = await self._node(path)
        return self._facts(node, keys)

    async def _list(self, path: Sequence[str], keys: Sequence[str]) -> Listing:
        names, node = await self._node(path)
        nodes = await self._tree.children(names) if node.directory else [node]
        return [(child.name, self._facts(child, keys)) for child in nodes]

    async def _open(self, path: Sequence[str]) -> ftp.IReadFile:
        offset, self.restart_offset = self.restart_offset, 0
        names, node = await self._node(path)
        if node.directory:
            raise ftp.IsADirectoryError(_shown(path))
        reader = await self._tree.open(names, self.client, self.via)
        if offset:
            start = getattr(reader, "start_at", None)
            if start is None:
                raise ftp.CmdNotImplementedForArgError("REST on this file")
            start(offset)
        return reader

    def _facts(self, node: Node, keys: Sequence[str]) -> Facts:
        """The values the protocol asks for, in its order (see
        ``IFTPShell.list``): LIST wants all seven, SIZE/MDTM one each."""
        facts: dict[str, object] = {
            "size": node.size,
            "directory": node.directory,
            "permissions": Permissions(0o555 if node.directory else 0o444),
            "hardlinks": 1,
            "modified": node.modified,
            "owner": self.account.name,
            "group": self.account.group,
        }
        return [facts[key] for key in keys]
