"""conch's chatter, recognised so the daemon's log observer can drop it:
an info line per SFTP packet ("dispatching: READ"), per channel opened and
closed, a critical traceback per refused channel (a ``-L`` forward, a
shell). Conch's own classes and our subclasses of them (in
:mod:`oseod.sftp.server`) log in their class's namespace; what oseod says
about SFTP sessions it logs in the ``oseod.sftp`` namespace, kept."""

from __future__ import annotations

from twisted.logger import ILogFilterPredicate, LogEvent, LogLevel, PredicateResult
from zope.interface import provider

_CHATTY = ("twisted.conch.", "oseod.sftp.server.")
_BY_APPLICATION = 11  # SSH_DISCONNECT_BY_APPLICATION


@provider(ILogFilterPredicate)
def sftp_chatter(event: LogEvent) -> object:  # a PredicateResult constant
    """``no`` for conch's events below error, and for its "channel open
    failed" traceback (a refused channel, the client's doing); ``maybe``
    for the rest."""
    namespace = event.get("log_namespace")
    if not isinstance(namespace, str) or not namespace.startswith(_CHATTY):
        return PredicateResult.maybe
    level = event.get("log_level")
    if level is None or level < LogLevel.error:
        return PredicateResult.no
    if event.get("log_format") in ("channel open failed", "too much data"):
        return PredicateResult.no
    text = event.get("log_format")
    if isinstance(text, str) and text.startswith("Got remote error") and event.get("code") == _BY_APPLICATION:
        return PredicateResult.no  # a client saying goodbye (OpenSSH ends every session so)
    return PredicateResult.maybe
