"""The daemon's named thread pools: ``disk``, ``engine``, ``cpu``, ``resolve``, ``push``.

Work that would block the reactor runs in a thread, and which pool it takes
says what it waits for. Twisted's one shared pool (``reactor.getThreadPool()``)
would put a login's scrypt behind a package build, and an FTP listing behind
a slow DNS server; apart, each kind of work waits only behind its own kind.

- ``disk`` (``[server] disk_threads``): the file system for requests:
  directories listed and stat'ed for DescribeResultAccess, FTP, SFTP and
  HTTP downloads opened. Threads that mostly wait on the disk: several.
- ``engine`` (``[server] engine_threads``): the file system for the engine:
  result files written and removed, archives globbed and copied, packages
  built, chunks written by the http processor. Few threads on purpose:
  whatever their code does between system calls, each thread takes its
  turns at the GIL with the reactor's, and the engine keeps all of them
  busy. With eight, a GetStatus polled while the engine made 30,000 items
  took p50 8 ms (its XML parse alone 0.8 ms, 21 µs idle: lxml hands the GIL
  back while it parses, then waits for its turn); with two (the default)
  3-4 ms, with one 2.4 ms, and the engine made more items a second, not
  fewer (bench/latency.py).
  Apart from ``disk``, a download's open also never queues behind a
  thousand result files.
- ``cpu`` (``[server] cpu_threads``): work that holds a core: password
  hashes (scrypt, bcrypt) and the parsing of large request bodies. More
  threads than cores would only queue them inside the kernel instead of
  here, so the default is the machine's usual two.
- ``resolve`` (a fixed few): ``getaddrinfo`` for call-backs. It waits on the
  network, up to the resolver's timeout of several seconds when a DNS
  server is away; in ``disk`` it would hold threads that downloads need. Its
  callers (the outbox) are bounded already; a few threads keep one host's
  slow name from serialising the others.
- ``push`` (a fixed few): FTPS pushes (onlineDataDelivery), a blocking
  ftplib session each, held for a whole transfer: minutes that no other
  pool's work should wait behind. More pushes at once wait for a thread.

One :class:`ThreadPools` is made by the daemon's wiring (oseod.tap), started
and stopped as a daemon step, and handed to each part that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import attrs
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.threadpool import ThreadPool

P = ParamSpec("P")
R = TypeVar("R")

ENGINE_THREADS = 2
RESOLVE_THREADS = 4
PUSH_THREADS = 4  # FTPS push sessions at once


@attrs.define
class ThreadPools:
    """The pools, and the reactor their results are handed back on."""

    reactor: IReactorFromThreads
    disk: ThreadPool
    cpu: ThreadPool
    resolve: ThreadPool
    push: ThreadPool
    engine: ThreadPool

    @classmethod
    def sized(cls, reactor: IReactorFromThreads, *, disk: int, cpu: int,
              engine: int = ENGINE_THREADS) -> ThreadPools:
        """Pools of at most ``disk``, ``cpu`` and ``engine`` threads (made
        when first needed), named so that a thread dump or a log line says
        which one."""
        return cls(reactor, ThreadPool(0, disk, name="oseod-disk"), ThreadPool(0, cpu, name="oseod-cpu"),
                   ThreadPool(0, RESOLVE_THREADS, name="oseod-resolve"), ThreadPool(0, PUSH_THREADS, name="oseod-push"),
                   ThreadPool(0, engine, name="oseod-engine"))

    def start(self) -> None:
        for pool in self._pools():
            pool.start()

    def stop(self) -> None:
        """Waits for the work in hand to end (the engine, stopped before,
        has cancelled its jobs; a thread ends the file it is at)."""
        for pool in self._pools():
            pool.stop()

    def _pools(self) -> tuple[ThreadPool, ...]:
        return self.disk, self.cpu, self.resolve, self.push, self.engine

    def on_disk(self, f: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[R]:
        """``f(*args, **kwargs)`` in the disk pool; its result on the reactor."""
        return threads.deferToThreadPool(self.reactor, self.disk, f, *args, **kwargs)

    def on_engine(self, f: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[R]:
        """``f(*args, **kwargs)`` in the engine's pool; its result on the reactor."""
        return threads.deferToThreadPool(self.reactor, self.engine, f, *args, **kwargs)

    def on_cpu(self, f: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[R]:
        """``f(*args, **kwargs)`` in the cpu pool; its result on the reactor."""
        return threads.deferToThreadPool(self.reactor, self.cpu, f, *args, **kwargs)

    def on_resolve(self, f: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[R]:
        """``f(*args, **kwargs)`` in the resolver's pool; its result on the reactor."""
        return threads.deferToThreadPool(self.reactor, self.resolve, f, *args, **kwargs)

    def on_push(self, f: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> defer.Deferred[R]:
        """``f(*args, **kwargs)`` in the push pool; its result on the reactor."""
        return threads.deferToThreadPool(self.reactor, self.push, f, *args, **kwargs)
