"""``POST /odata/v1/token``: OAuth2 access tokens (RFC 6749 §4.3 and §4.4)
for the OData clients, as prosEO's ODIP and the Copernicus services issue
them. The parameters come form-encoded in the body or in the query string
(prosEO's clients put them there); each at most once.

* ``grant_type=password`` with ``username`` and ``password``;
* ``grant_type=client_credentials``, the client being an oseod user: HTTP
  Basic, or ``client_id`` and ``client_secret`` (not both).

Either login goes through the one Portal, lock-out included. The answer is
``{"access_token", "token_type": "bearer", "expires_in"}``; a refusal is an
RFC 6749 §5.2 error body: 400 ``invalid_request``, ``invalid_grant``,
``unsupported_grant_type``; 401 ``invalid_client``; 429 while locked out;
503 while Redis is away. Never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ..auth.bearer import BearerTokens
from ..forwarded import ClientAddresses
from ..metrics import RequestMetrics
from ..model.accounts import Account, IAccount
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT, RedisUnavailable
from ..model.logins import Client, LockedOut

MAX_BODY = 16 * 1024
FORM = b"application/x-www-form-urlencoded"
PASSWORD, CLIENT_CREDENTIALS = "password", "client_credentials"
OPERATION = "Token"


class OAuthError(Exception):
    """An RFC 6749 §5.2 refusal: ``error`` the code, the message its description."""

    def __init__(self, status: int, error: str, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.retry_after = retry_after


def _request_error(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


class TokenEndpoint:
    """What ``POST /odata/v1/token`` runs. ``portal``: the one Portal;
    ``tokens``: the issuer (oseod.tap Parts.tokens); ``clients``: who a
    request comes from, behind trusted proxies (for the lock-out)."""

    log = Logger()

    def __init__(self, *, portal: Portal, tokens: BearerTokens, clock: IReactorTime, metrics: RequestMetrics,
                 clients: ClientAddresses = ClientAddresses()) -> None:
        self._portal = portal
        self._tokens = tokens
        self._clock = clock
        self._metrics = metrics
        self._clients = clients

    async def post(self, request: IRequest) -> bytes:
        started = self._clock.seconds()
        address = self._clients.of(request)
        request.setHeader(b"content-type", b"application/json;charset=UTF-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"pragma", b"no-cache")
        user: str | None = None
        try:
            params = _params(request)
            grant = _one(params, "grant_type", required=True)
            if grant == PASSWORD:
                credentials = UsernamePassword(_one(params, "username", required=True).encode("utf-8"),
                                               _one(params, "password", required=True).encode("utf-8"))
            elif grant == CLIENT_CREDENTIALS:
                credentials = _client(request, params)
            else:
                raise OAuthError(400, "unsupported_grant_type",
                                 f"grant_type {grant!r} is not supported: use password or client_credentials")
            user = credentials.username.decode("utf-8", "replace")[:64]
            account = await self._login(credentials, grant, address)
            issued = await self._tokens.issue(account, grant=grant, address=address)
            request.setResponseCode(200)
            self._metrics.record("http", OPERATION, "ok", self._clock.seconds() - started, account.name, address)
            return _json({"access_token": issued.token, "token_type": "bearer", "expires_in": issued.expires_in})
        except OAuthError as e:
            request.setResponseCode(e.status, b"Too Many Requests" if e.status == 429 else None)
            if e.error == "invalid_client":
                request.setHeader(b"www-authenticate", b'Basic realm="oseod"')
            if e.retry_after is not None:
                request.setHeader(b"retry-after", str(e.retry_after).encode())
            self._metrics.record("http", OPERATION, e.error, self._clock.seconds() - started, user, address)
            return _json({"error": e.error, "error_description": str(e)})
        except RedisUnavailable as e:  # logged once for all requests by the store's RedisWatch
            self.log.debug("token: {error}", error=str(e))
            request.setResponseCode(503)
            request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
            self._metrics.record("http", OPERATION, "503", self._clock.seconds() - started, user, address)
            return _json({"error": "temporarily_unavailable", "error_description": UNAVAILABLE_TEXT})
        except Exception:
            self.log.failure("internal error issuing a token")
            request.setResponseCode(500)
            self._metrics.record("http", OPERATION, "500", self._clock.seconds() - started, user, address)
            return _json({"error": "server_error", "error_description": "internal error; the daemon's log has "
                                                                        "the details"})

    async def _login(self, credentials: UsernamePassword, grant: str, address: str) -> Account:
        try:
            _, account, _ = await self._portal.login(credentials, Client(address, "http"), IAccount)
        except LockedOut as e:
            raise OAuthError(429, "temporarily_unavailable", str(e), retry_after=e.seconds) from None
        except UnauthorizedLogin as e:
            if grant == CLIENT_CREDENTIALS:
                raise OAuthError(401, "invalid_client", str(e) or "wrong client id or secret") from None
            raise OAuthError(400, "invalid_grant", str(e) or "wrong user name or password") from None
        assert isinstance(account, Account)
        return account


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"


def _params(request: IRequest) -> dict[str, list[str]]:
    """The query's and the form body's parameters together (twisted.web's
    ``args`` lets the body's replace the query's: a name given in both
    would pass as given once); a body of another kind is refused."""
    content = request.content
    body = b""
    if content is not None:
        content.seek(0)
        body = content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise _request_error("the request body is too large")
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if body.strip() and kind != FORM:
        raise _request_error("send the parameters as application/x-www-form-urlencoded")
    params: dict[str, list[str]] = {}
    query = request.uri.partition(b"?")[2]
    for part in (query, body if kind == FORM else b""):
        try:
            for name, value in parse_qsl(part.decode("ascii"), keep_blank_values=True, encoding="utf-8",
                                         errors="strict"):
                params.setdefault(name, []).append(value)
        except (UnicodeError, ValueError):
            raise _request_error("the parameters are not UTF-8 form-encoded") from None
    return params


def _one(params: dict[str, list[str]], name: str, *, required: bool = False) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise _request_error(f"{name} is given more than once")
    if required and (not values or not values[0]):
        raise _request_error(f"{name} is missing")
    return values[0] if values else ""


def _client(request: IRequest, params: dict[str, list[str]]) -> UsernamePassword:
    """The client's credentials: HTTP Basic or client_id/client_secret."""
    header = request.getHeader(b"authorization") or b""
    in_body = "client_id" in params or "client_secret" in params
    if header:
        if in_body:
            raise _request_error("authenticate the client one way: HTTP Basic or client_id/client_secret")
        if header.split(b" ", 1)[0].lower() != b"basic" or not request.getUser() or not request.getPassword():
            raise OAuthError(401, "invalid_client", "client authentication must be HTTP Basic")
        return UsernamePassword(request.getUser(), request.getPassword())
    if not in_body:
        raise OAuthError(401, "invalid_client", "client authentication required (HTTP Basic or "
                                                "client_id/client_secret)")
    return UsernamePassword(_one(params, "client_id", required=True).encode("utf-8"),
                            _one(params, "client_secret", required=True).encode("utf-8"))
