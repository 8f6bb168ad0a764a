"""txredisapi's chatter while Redis is away, recognised so the daemon's log
observer can drop it: per pooled connection, a "Scheduling retry" line at
every reconnection attempt (twisted.application's ClientService, which
txredisapi connects with) and a "Discarding dead connection." for each one
lost. The outage itself is told once by :class:`oseod.store.outage.RedisWatch`."""

from __future__ import annotations

from twisted.logger import ILogFilterPredicate, LogEvent, PredicateResult
from zope.interface import provider

_CLIENT_SERVICE = "twisted.application._client_service.ClientService"


@provider(ILogFilterPredicate)
def redis_chatter(event: LogEvent) -> object:  # a PredicateResult constant
    """``no`` for txredisapi's per-connection reconnection lines; ``maybe``
    for the rest."""
    namespace = event.get("log_namespace")
    if namespace == _CLIENT_SERVICE:
        text = event.get("log_format")
        if isinstance(text, str) and text.startswith("Scheduling retry"):
            return PredicateResult.no
    elif namespace == "log_legacy" and event.get("log_text") == "Discarding dead connection.":
        return PredicateResult.no
    return PredicateResult.maybe
