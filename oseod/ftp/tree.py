# mypy: untyped-calls-exclude=twisted.protocols.ftp
"""Where an FTP user's files come from: a read-only virtual tree.

The FTP shell (:mod:`oseod.ftp.shell`) serves whatever an
:class:`IDeliverableTree` describes. For now every account gets the
:class:`EmptyTree`; the delivery issue plugs in a tree built from the store
(``/<orderId>/<itemId>/<file>``) without touching the shell or the protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from twisted.protocols import ftp
from zope.interface import Interface, implementer

# Shared with the other transports (oseod.results); named here as before.
from ..results import ROOT, Node

__all__ = ["ROOT", "EmptyTree", "IDeliverableTree", "Node"]


class IDeliverableTree(Interface):
    """What one account may download, as directories and files.

    A path is a sequence of names relative to the account's root: ``[]`` is
    the root, which always exists and is a directory. Names are real text
    (the shell has already undone the FTP wire encoding) and never ``""``,
    ``"."``, ``".."`` or anything holding ``"/"``.
    """

    def stat(path: Sequence[str]) -> Awaitable[Node | None]:
        """The node at ``path``, or None when there is none."""

    def children(path: Sequence[str]) -> Awaitable[Sequence[Node]]:
        """The nodes in the directory at ``path`` (which :meth:`stat` said
        is a directory)."""

    def open(path: Sequence[str], client: str | None = None, via: str = "ftp") -> Awaitable[ftp.IReadFile]:
        """The file at ``path`` (which :meth:`stat` said is a file), ready to
        send to ``client`` (its address, for the transfer log) over ``via``
        ("ftp", "ftps"). Raises :class:`twisted.protocols.ftp.FileNotFoundError` when
        it has gone in the meantime."""


@implementer(IDeliverableTree)
class EmptyTree:
    """A root with nothing in it: what every account sees until deliveries
    are published over FTP."""

    async def stat(self, path: Sequence[str]) -> Node | None:
        return ROOT if not path else None

    async def children(self, path: Sequence[str]) -> Sequence[Node]:
        return []

    async def open(self, path: Sequence[str], client: str | None = None, via: str = "ftp") -> ftp.IReadFile:
        raise ftp.FileNotFoundError("/" + "/".join(path))
