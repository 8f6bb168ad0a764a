"""Which operation a KVP query names (oseod/oseo/kvp.py)."""

from __future__ import annotations

import pytest

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.kvp import requested_operation

KNOWN = ("GetCapabilities", "GetOptions", "GetQuotation", "Submit", "GetStatus", "DescribeResultAccess", "Cancel")
SERVED = tuple(op for op in KNOWN if op != "GetQuotation")


def operation(**params: str) -> str:
    return requested_operation(params, served=SERVED, over_get=("GetCapabilities",), known=KNOWN)


def refused(**params: str) -> OseoError:
    with pytest.raises(OseoError) as caught:
        operation(**params)
    return caught.value


def test_get_capabilities_is_run_over_get() -> None:
    assert operation(service="OS", request="GetCapabilities") == "GetCapabilities"
    assert operation(SERVICE="OS", Request="GetCapabilities") == "GetCapabilities"  # names fold, values do not


@pytest.mark.parametrize(("params", "code", "locator", "text"), [
    ({"service": "OS", "request": "GetCapabilitiez"}, ExceptionCode.OperationNotSupported, "GetCapabilitiez",
     'unknown operation "GetCapabilitiez"; did you mean "GetCapabilities"?'),
    ({"service": "OS", "request": "getstatus"}, ExceptionCode.OperationNotSupported, "getstatus",
     'unknown operation "getstatus"; did you mean "GetStatus"?'),
    ({"service": "OS", "request": "Submit"}, ExceptionCode.OperationNotSupported, "Submit",
     'operation "Submit" is not available with HTTP GET'),
    ({"service": "OS", "request": "GetQuotation"}, ExceptionCode.OperationNotSupported, "GetQuotation",
     'operation "GetQuotation" is not supported by this server'),
    ({"service": "OS", "request": "x" * 10_000}, ExceptionCode.OperationNotSupported, "x" * 10_000,
     "this server offers GetCapabilities, GetOptions, Submit"),
    ({"service": "OS"}, ExceptionCode.MissingParameterValue, "request", "missing request"),
    ({"request": "GetCapabilities"}, ExceptionCode.MissingParameterValue, "service", "?wsdl for the WSDL"),
    ({"service": "WMS", "request": "GetMap"}, ExceptionCode.InvalidParameterValue, "service",
     'invalid service "WMS": it must be "OS"'),
    ({"service": "OS", "SERVICE": "WMS", "request": "GetCapabilities"}, ExceptionCode.InvalidParameterValue,
     "SERVICE", "given twice"),
])
def test_refusals_say_what_to_fix(params: dict[str, str], code: ExceptionCode, locator: str, text: str) -> None:
    error = refused(**params)
    assert (error.code, error.locator, error.sender) == (code, locator, True)
    assert text in error.text
    assert len(error.text) < 400  # a long name is quoted cut short
