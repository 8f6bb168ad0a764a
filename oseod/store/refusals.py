"""How Redis says "not now" rather than "wrong": the errors that make a
command a retryable refusal (503, FTP 421) instead of an error in oseod,
and the replies that mean it."""

from __future__ import annotations

from typing import Any

import txredisapi

from ..model.errors import RedisUnavailable, ReplicationShortfall

__all__ = ["UNAVAILABLE_REPLIES", "RedisUnavailable", "ReplicationShortfall", "says_readonly", "says_unavailable"]

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
