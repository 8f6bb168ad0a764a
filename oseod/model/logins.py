"""A login attempt as every transport describes it to the one Portal, and
the refusal of a locked-out one (see :mod:`oseod.auth.lockout`)."""

from __future__ import annotations

import math

import attrs
from twisted.cred.error import UnauthorizedLogin

# Whose failures are counted: a user name's, or a client address's.
USER = "user"
ADDRESS = "addr"


@attrs.frozen
class Client:
    """Who knocks: the ``mind`` a transport passes to :meth:`LockoutPortal.login`.
    ``address``: the client's IP address as :class:`oseod.forwarded.ClientAddresses`
    resolves it ("" when unknown: then only the user name counts);
    ``via``: the transport ("soap", "http", "ftp", "console"), for the audit
    log and the metrics."""

    address: str
    via: str


class LockedOut(UnauthorizedLogin):
    """Refused without a check: the user name or the address is locked out
    for ``seconds`` more. The message says so and for how long; it is the
    same for a user name that exists and one that does not."""

    def __init__(self, scope: str, seconds: float) -> None:
        self.scope = scope
        self.seconds = max(1, math.ceil(seconds))
        minutes = max(1, math.ceil(self.seconds / 60))
        whom = "this user name is" if scope == USER else "this address is"
        super().__init__(f"too many failed logins: {whom} locked out; try again in {minutes} "
                         f"minute{'s' if minutes > 1 else ''}")
