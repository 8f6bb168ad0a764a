"""The thread pools of in-process tests: one set for the whole session,
named as the daemon's (``oseod-disk``, ``oseod-engine``, ``oseod-cpu``, ``oseod-resolve``),
stopped when the session ends (tests/conftest.py)."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.interfaces import IReactorFromThreads

from oseod.threads import ThreadPools

POOLS = ThreadPools.sized(IReactorFromThreads(reactor), disk=4, cpu=2)
POOLS.start()
