"""Who is calling: HTTP Basic credentials, checked through the one Portal."""

from __future__ import annotations

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.web.iweb import IRequest

from ..model.accounts import Account, IAccount
from ..model.logins import Client, LockedOut


class BadCredentials(Exception):
    """Credentials were given and are wrong: never fall back to anonymous."""


async def basic_account(portal: Portal, request: IRequest, client: Client | None = None) -> Account | None:
    """The account named by the request's HTTP Basic credentials, None when it
    carries none; BadCredentials when they do not check out, LockedOut when
    the user name or ``client``'s address is locked out (oseod.auth.lockout)."""
    if not request.getHeader(b"authorization"):
        return None
    # getUser/getPassword give the raw bytes the client sent (UTF-8 in practice).
    credentials = UsernamePassword(request.getUser(), request.getPassword())
    if not credentials.username or not credentials.password:
        raise BadCredentials("malformed HTTP Basic credentials")
    try:
        _, account, _ = await portal.login(credentials, client, IAccount)
    except LockedOut:
        raise
    except UnauthorizedLogin:
        raise BadCredentials("wrong user name or password") from None
    assert isinstance(account, Account)
    return account


def too_many_requests(request: IRequest, locked: LockedOut) -> None:
    """A lock-out's status line (twisted.web has no phrase for 429 and would
    say "Unknown Status") and when to try again, in seconds."""
    request.setResponseCode(429, b"Too Many Requests")
    request.setHeader(b"retry-after", str(locked.seconds).encode())
