"""The reactor as oseod's annotations name it.

A part that needs one thing of the reactor names that interface
(``IReactorTime`` for a clock, ``IReactorThreads`` for thread pools,
``IReactorProcess``...), so a test hands it a ``Clock`` or a
``MemoryReactorClock``. A part that needs several names
:class:`IDaemonReactor`: every interface of the daemon's reactor that oseod
uses. Twisted types its global reactor as a make-believe intersection of the
common interfaces (``_IReactorCommon``), without threads or the name
resolver, so ``oseod.tap`` casts it to this one once, at the edge
(:func:`daemon_reactor`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorPluggableNameResolver,
    IReactorProcess,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
)

if TYPE_CHECKING:
    # What treq's requests take (its Agent's HostnameEndpoint): named so a
    # reactor of ours can be handed to treq.
    from treq._types import _ITreqReactor
else:
    # The same, without importing treq (and all of twisted.web) for a name.
    class _ITreqReactor(IReactorTCP, IReactorTime, IReactorPluggableNameResolver):
        pass


class IDaemonReactor(_ITreqReactor, IReactorCore, IReactorProcess, IReactorThreads):
    """The reactor ``twistd -n oseod`` runs: core, time, TCP, processes,
    threads and the pluggable name resolver. For annotations only, as
    Twisted's own ``_IReactorCommon``: the real reactor declares its
    interfaces one by one, and nothing adapts to this one."""


def daemon_reactor() -> IDaemonReactor:
    """The global reactor (twistd installs it before the plugin runs), typed."""
    from twisted.internet import reactor

    return cast(IDaemonReactor, reactor)
