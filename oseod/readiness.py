"""Whether this daemon wants new clients: what ``GET /ready`` tells load
balancers.

Liveness (``/health``) says the process works; readiness says whether a
balancer should send it requests. A daemon is not ready while it starts
(its listeners open before the last steps are done) and from the moment it
is told to stop (SIGTERM), for the whole drain: the balancer notices within
its check interval and sends the next requests elsewhere, while the ones
already on their way are still served. The root service moves the state;
the HTTP probe reads it, and adds a PING of Redis."""

from __future__ import annotations

STARTING = "starting"
SERVING = "serving"
DRAINING = "draining"


class Readiness:
    def __init__(self) -> None:
        self.state = STARTING

    def serving(self) -> None:
        if self.state == STARTING:
            self.state = SERVING

    def draining(self) -> None:
        self.state = DRAINING

    def is_draining(self) -> bool:
        """Whether the daemon is stopping: the listeners tell clients to go
        elsewhere (HTTP ``Connection: close``, FTP 421 to a new login)."""
        return self.state == DRAINING

    def reason(self) -> str | None:
        """Why this daemon is not ready (one line), None when it is."""
        if self.state == STARTING:
            return "not ready: the daemon is starting"
        if self.state == DRAINING:
            return "not ready: the daemon is shutting down (draining)"
        return None
