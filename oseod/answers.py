"""One-line answers for requests that reach no handler (Klein's defaults are
HTML pages), shared by every HTTP door: the clients' routes, the admin API
and the console, which are transports apart and so do not import each
other."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from .model.errors import RETRY_AFTER, UNAVAILABLE_TEXT


def error_answer(request: IRequest, status: int, reason: str, *, as_json: bool = False) -> bytes:
    """Status ``status`` with ``reason`` as plain text, or as ``{"error": reason}``."""
    request.setResponseCode(status)
    if as_json:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": reason}).encode() + b"\n"
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return reason.encode() + b"\n"


def allow_header(request: IRequest, failure: Any) -> None:
    """Name the allowed methods of a werkzeug MethodNotAllowed failure."""
    allowed = getattr(failure.value, "valid_methods", None) or []
    request.setHeader(b"allow", ", ".join(allowed).encode())


def unavailable_answer(request: IRequest, *, as_json: bool = False) -> bytes:
    """503 while Redis is away: Retry-After and one line (a RedisUnavailable
    that reached a handler; the store's RedisWatch has logged the outage)."""
    request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
    request.setHeader(b"cache-control", b"no-store")
    return error_answer(request, 503, UNAVAILABLE_TEXT, as_json=as_json)
