"""Key-value-pair (HTTP GET query) parameters, as OWS Common 2.0 reads them.

Parameter names are case-insensitive, values are case-sensitive, and lists
are comma-separated.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

from oseod.oseo.errors import ExceptionCode, OseoError, quote

SERVICE = "OS"


def fold_keys(params: Mapping[str, str]) -> dict[str, str]:
    """``params`` keyed by lower-case name.

    ``service=OS&SERVICE=WMS`` is ambiguous, so two spellings of one name
    with different values are refused rather than one silently winning.
    """
    folded: dict[str, str] = {}
    for key, value in params.items():
        name = key.lower()
        if name in folded and folded[name] != value:
            raise OseoError.invalid(key, f"parameter {quote(key)} is given twice with different values")
        folded[name] = value
    return folded


def split_list(value: str) -> tuple[str, ...]:
    """The items of a comma-separated KVP list, blanks dropped."""
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)


def requested_operation(params: Mapping[str, str], *, served: Collection[str], over_get: Collection[str],
                        known: Collection[str] = ()) -> str:
    """The operation a KVP request names, once it may be run over HTTP GET.

    ``served`` are the operations this server runs (over POST), ``over_get``
    those of them it also runs from a query string, ``known`` every operation
    of the standard. The service is checked first (it says which kind of
    server the client meant), then the request. A misspelt operation and one
    that exists but needs POST are both OperationNotSupported, whose locator
    is the operation's name (OWS Common 2.0 Table 27), but the texts say
    which it is, so the client knows what to fix.
    """
    folded = fold_keys(params)
    service = folded.get("service")
    if not service:
        raise OseoError.missing("service", f'missing service: it must be "{SERVICE}" '
                                           f'(?service={SERVICE}&request=GetCapabilities; ?wsdl for the WSDL)')
    if service != SERVICE:
        raise OseoError.invalid("service", f'invalid service {quote(service)}: it must be "{SERVICE}"')
    request = folded.get("request")
    if not request:
        raise OseoError.missing("request", "missing request: it must name an operation, e.g. GetCapabilities")
    if request in over_get:
        return request
    if request in served:
        raise OseoError(ExceptionCode.OperationNotSupported, request,
                        f"operation {quote(request)} is not available with HTTP GET: "
                        "POST it to this endpoint as a SOAP or XML request")
    if request in known:
        raise OseoError(ExceptionCode.OperationNotSupported, request,
                        f"operation {quote(request)} is not supported by this server")
    meant = _closest(request, served)
    hint = f"; did you mean {quote(meant)}?" if meant else ""
    raise OseoError(ExceptionCode.OperationNotSupported, request,
                    f"unknown operation {quote(request)}{hint}; this server offers "
                    + ", ".join(served))


def _closest(name: str, names: Collection[str]) -> str | None:
    """The one of ``names`` that ``name`` most likely misspells (case
    included: values are case-sensitive), if any is close."""
    if len(name) > 64:
        return None
    by_lower = {candidate.lower(): candidate for candidate in names}
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.8)
    return by_lower[found[0]] if found else None
