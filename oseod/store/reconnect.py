"""txredisapi's pool, made to keep following a server that goes and comes
back, for every kind of address (the Sentinel pool and the plain one).

Two hazards of the stock pool:

- It stops reconnecting for good when AUTH or SELECT fails on a new
  connection, even when it failed because that connection was lost (a
  server killed or stopped at that moment, a failover's CLIENT KILL): a
  pool that lived through an outage would be dead afterwards.
- A connection stays with a server that has been demoted to a replica (a
  managed service's DNS name moved to the new primary, an old primary
  resumed): every write on it answers READONLY until the daemon restarts.
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import UNIXClientEndpoint

from .refusals import says_readonly

# The plain pool's longest wait between reconnection attempts (txredisapi's
# default, 10 s, would keep the daemon answering 503 that long after Redis
# is back): a refused connection costs little.
PLAIN_MAX_DELAY = 1.0


class KeepTrying:
    """A RedisFactory mixin: a failed AUTH or SELECT on a new connection
    does not stop the pool. The password was right at start-up (it was
    checked); the pool keeps trying, at its usual pace."""

    def stopTrying(self) -> Deferred[None]:
        return succeed(None)


class DropsWhenReadonly:
    """A RedisProtocol mixin: the connection hangs up once it answers
    READONLY. Its server has been demoted while it stayed open; every later
    write on it would fail too. Closing it makes the pool reconnect (to
    whatever the address names now; through Sentinel, to the primary found
    anew). The command itself fails with RedisUnavailable (503)."""

    transport: Any
    factory: Any

    def replyReceived(self, reply: Any) -> None:
        if says_readonly(reply):
            # Lent to no command from now on, before the reply is handed on:
            # its caller may send the next command at once, from inside that
            # hand-over. (The pool only lets go of a connection once closed.)
            free = self.factory.connectionQueue.pending
            if self in free:
                free.remove(self)
            self.transport.loseConnection()
        super().replyReceived(reply)  # type: ignore[misc]


class _PlainProtocol(DropsWhenReadonly, txredisapi.RedisProtocol):  # type: ignore[misc]
    pass


class PlainFactory(KeepTrying, txredisapi.RedisFactory):  # type: ignore[misc]
    """The factory of a redis://, rediss:// or unix:// pool."""

    maxDelay = PLAIN_MAX_DELAY
    protocol = _PlainProtocol


def plain_pool(*, path: str | None, host: str | None, port: int, dbid: int | None, poolsize: int,
               password: str | None, username: str | None, connect_timeout: float, reply_timeout: float,
               tls: Any = None) -> Deferred[Any]:
    """What ``txredisapi.ConnectionPool``/``UnixConnectionPool`` return (a
    Deferred firing with the handler once every connection is up), with
    :class:`PlainFactory` in place of the stock factory: txredisapi's
    ``makeConnection`` builds its own and takes no other."""
    from twisted.internet import reactor  # txredisapi's own, too

    handler = txredisapi.UnixConnectionHandler if path is not None else txredisapi.ConnectionHandler
    uuid = path if path is not None else f"{host}:{port}"
    factory = PlainFactory(uuid, dbid, poolsize, False, handler, "utf-8", password, reply_timeout, False, username)
    factory.reconnect = True
    if path is not None:
        endpoint = UNIXClientEndpoint(reactor, path, timeout=connect_timeout)
    else:
        endpoint = txredisapi._makeEndpoint(host, port, connect_timeout, tls)  # noqa: SLF001 - HostnameEndpoint (+TLS)
    factory.startConnecting(endpoint)
    return factory.deferred  # type: ignore[no-any-return]
