"""How Redis says "not now" rather than "wrong": the errors that make a
command a retryable refusal (503, FTP 421) instead of an error in oseod,
and the replies that mean it."""

from __future__ import annotations

from typing import Any

import txredisapi


class RedisUnavailable(Exception):
    """Redis cannot be reached or refuses us; the message says which and where.

    Raised by every command while the pool holds no live connection, and by
    a command that has no answer within ``[redis] command_timeout``: the
    caller answers "try again later" (SOAP 503, FTP 421) instead of waiting.
    A write that timed out may still have been carried out."""


class ReplicationShortfall(RedisUnavailable):
    """A write was made on the primary but fewer replicas than ``[redis]
    min_replicas`` confirmed it within ``wait_timeout``: a failover now
    could lose it, so the client is not told it was done (retryable, 503).
    ``reply``: what the script answered (its caller may undo the write);
    ``replicas``: how many had it."""

    def __init__(self, message: str, *, reply: Any = None, replicas: int = 0) -> None:
        super().__init__(message)
        self.reply = reply
        self.replicas = replicas

# A replica (READONLY), a server loading its data or cut off from its primary,
# too few replicas to write (min-replicas-to-write), a script running too long.
UNAVAILABLE_REPLIES = ("READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY")


def _says(reply: Any, words: tuple[str, ...]) -> bool:
    if not isinstance(reply, txredisapi.ResponseError):
        return False
    text = str(reply)
    # Inside a script the refusal comes wrapped: "ERR Error running script
    # (call to f_...): @user_script:1: -READONLY You can't write...".
    # (Whole words: BUSYGROUP is not BUSY.)
    return any(text.startswith(f"{word} ") or f"-{word} " in text for word in words)


def says_unavailable(reply: Any) -> bool:
    """Whether ``reply`` (an error reply) means Redis cannot take commands now."""
    return _says(reply, UNAVAILABLE_REPLIES)


def says_readonly(reply: Any) -> bool:
    """Whether ``reply`` means the server is a replica: one that was the
    primary when the connection was made has been demoted since."""
    return _says(reply, ("READONLY",))
