"""Who is calling: HTTP Basic credentials or an OAuth2 bearer token (RFC
6750, from POST /odata/v1/token), checked through the one Portal."""

from __future__ import annotations

from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.web.iweb import IRequest

from ..model.accounts import Account, IAccount
from ..model.logins import Client, LockedOut
from ..model.tokens import BearerToken

# What a 401 asks for: either kind of credentials works on every HTTP door.
CHALLENGE = b'Basic realm="oseod", Bearer realm="oseod"'
MAX_TOKEN = 1024


class BadCredentials(Exception):
    """Credentials were given and are wrong: never fall back to anonymous."""


async def request_account(portal: Portal, request: IRequest, client: Client | None = None) -> Account | None:
    """The account named by the request's credentials (``Authorization:
    Basic`` or ``Bearer``), None when it carries none; BadCredentials when
    they do not check out, LockedOut when the user name or ``client``'s
    address is locked out (oseod.auth.lockout; a wrong token counts for the
    address alone)."""
    header = request.getHeader(b"authorization")
    if not header:
        return None
    scheme, _, rest = header.strip().partition(b" ")
    credentials: Any  # the Portal's checkers match them by interface
    if scheme.lower() == b"bearer":
        token = rest.strip()
        if not token or len(token) > MAX_TOKEN or b" " in token:
            raise BadCredentials("malformed bearer token")
        credentials = BearerToken(token.decode("latin-1"))
        wrong = "the bearer token is invalid, expired or revoked"
    else:
        # getUser/getPassword give the raw bytes the client sent (UTF-8 in practice).
        credentials = UsernamePassword(request.getUser(), request.getPassword())
        if not credentials.username or not credentials.password:
            raise BadCredentials("malformed HTTP Basic credentials")
        wrong = "wrong user name or password"
    try:
        _, account, _ = await portal.login(credentials, client, IAccount)
    except LockedOut:
        raise
    except UnauthorizedLogin:
        raise BadCredentials(wrong) from None
    except UnhandledCredentials:
        raise BadCredentials("this server does not take bearer tokens") from None
    assert isinstance(account, Account)
    return account


def too_many_requests(request: IRequest, locked: LockedOut) -> None:
    """A lock-out's status line (twisted.web has no phrase for 429 and would
    say "Unknown Status") and when to try again, in seconds."""
    request.setResponseCode(429, b"Too Many Requests")
    request.setHeader(b"retry-after", str(locked.seconds).encode())
