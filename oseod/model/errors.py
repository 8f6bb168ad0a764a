"""The errors every room shares: why the core refuses a request (in OSEO's
terms but without its XML), what the orders store answers that is not a
value, and "the state is out of reach now" (Redis away), which every
transport answers with a retry.

A RequestRejected's ``code`` is the name of an OWS/OSEO exceptionCode
(InvalidParameterValue, InvalidOrderIdentifier, ...); the transport turns it
into its own fault."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .orders import Order


class RequestRejected(Exception):
    def __init__(self, code: str, locator: str | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.locator = locator
        self.text = text


def invalid(locator: str, text: str) -> RequestRejected:
    return RequestRejected("InvalidParameterValue", locator, text)


def missing(locator: str, text: str) -> RequestRejected:
    return RequestRejected("MissingParameterValue", locator, text)


class BadCursor(ValueError):
    """A search's cursor that no search handed out (or that cannot be read any more)."""


class Resubmitted(Exception):
    """A Submit with a wsa:MessageID its owner used before: ``order`` is the
    one that first Submit made (answer it again)."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.order_id)
        self.order = order


class NoSuchOrder(KeyError):
    pass


class NoSuchItem(KeyError):
    pass


class TooManyActiveItems(Exception):
    """Creating the order would put its owner over the limit of unfinished items."""

    def __init__(self, active: int, added: int, limit: int) -> None:
        super().__init__(f"{active} items unfinished, {added} more, limit {limit}")
        self.active = active
        self.added = added
        self.limit = limit


# The one line a client reads while Redis is away (SOAP 503 Receiver fault,
# HTTP 503, FTP 421), and the seconds it is asked to wait (Retry-After): a
# restarted Redis or a Sentinel failover (down-after + about 1 s) is usually
# back by then.
UNAVAILABLE_TEXT = "the order store is unavailable, try again later"
RETRY_AFTER = 2


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
