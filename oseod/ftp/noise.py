"""The stock FTP module's chatter, recognised so the daemon's log observer
can drop it (notes/twisted-stack.md §1.6, gap 11).

``twisted.protocols.ftp`` logs through the legacy ``log.msg``: about eight
lines per passive data connection (its timeout, the port opening and
closing, the factory cleaning up), half of them flagged ``debug=True``,
which twistd does not filter. :func:`ftp_chatter` is one of the predicates
of ``oseod.logs.filtered``, which the daemon puts in front of whatever
observer twistd logs to (``oseod.logs.tame_global_observers``).
"""

from __future__ import annotations

import re

from twisted.logger import ILogFilterPredicate, LogEvent, PredicateResult
from zope.interface import provider

_CHATTER = re.compile(
    r"DTPFactory\.setTimeout set to \S+ seconds"
    # A TCP port opening: each passive data port ("oseod-ftp-data starting
    # on N"), and the listeners ("OseodSite starting on N"), whose Listener
    # says where it listens with the URL; a factory wrapped by the connection
    # budget is named "Inner (GuardedFactory)".
    r"|\S+(?: \(\w+\))? starting on \d+"
    r"|<<class 'twisted\.internet\.tcp\.Port'> of <class 'oseod\.ftp\.protocol\._ControlPeerOnly'> on \d+>"
    # Any TCP port closing: one per passive data port, and the listeners at
    # shutdown, which the daemon reports anyway.
    r"|\(TCP Port \d+ Closed\)"
)


@provider(ILogFilterPredicate)
def ftp_chatter(event: LogEvent) -> object:  # a PredicateResult constant
    """``no`` for the FTP module's chatter and for every legacy
    ``log.msg(..., debug=True)`` event; ``maybe`` for the rest."""
    if event.get("log_namespace") != "log_legacy":
        return PredicateResult.maybe
    if event.get("debug"):
        return PredicateResult.no
    text = event.get("log_text")
    if isinstance(text, str) and _CHATTER.fullmatch(text):
        return PredicateResult.no
    return PredicateResult.maybe
