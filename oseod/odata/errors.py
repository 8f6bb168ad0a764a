"""OData errors: ``{"error": {"code", "message", "target"}}`` with the OWS
exceptionCode a SOAP Fault would carry for the same refusal, so that a
client (or an operator reading logs) sees one vocabulary for both doors."""

from __future__ import annotations

import attrs
import orjson

# Every JSON answer's Content-Type (OData's minimal metadata: @odata.context only).
CONTENT_TYPE = "application/json;odata.metadata=minimal"

# The HTTP status of each OWS/OSEO exceptionCode the core may raise; others: 400.
_STATUS_OF_CODE = {
    "AuthenticationFailed": 401,
    "AuthorizationFailed": 403,
    "InvalidOrderIdentifier": 404,
    "NotFound": 404,
    "Conflict": 409,
    "TooLarge": 413,
    "TooManyRequests": 429,
    "NoApplicableCode": 500,
    "Unavailable": 503,
}


@attrs.frozen
class ODataError(Exception):
    """A refusal, as told to the client. ``status`` defaults to the code's."""

    code: str
    message: str
    target: str | None = None
    status: int = 0

    @property
    def http_status(self) -> int:
        return self.status or _STATUS_OF_CODE.get(self.code, 400)

    def body(self) -> bytes:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        return orjson.dumps({"error": error})


def bad_request(target: str | None, message: str, code: str = "InvalidParameterValue") -> ODataError:
    return ODataError(code, message, target, 400)


def not_found(target: str | None, message: str) -> ODataError:
    return ODataError("NotFound", message, target, 404)
