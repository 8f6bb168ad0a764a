"""oseod.oseo.errors: exception codes, OseoError and the OWS ExceptionReport."""

from __future__ import annotations

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError, quote, render_exception_report, xml_safe
from oseod.oseo.namespaces import OWS, XML
from tests.oseo_schema import assert_valid, requires_schemas

# DESIGN.md "OSEO facts" and oseo-spec.md §7, in full.
SPEC_CODES = {
    "MissingParameterValue",
    "InvalidParameterValue",
    "NoApplicableCode",
    "InvalidNotificationValue",
    "AuthenticationFailed",
    "AuthorizationFailed",
    "InvalidOrderIdentifier",
    "UnsupportedCollection",
    "ProductOrderingNotSupported",
    "SubscriptionNotSupported",
    "FutureProductNotSupported",
    "OperationNotSupported",
    "OptionNotSupported",
    "VersionNegotiationFailed",
    "InvalidUpdateSequence",
}


def test_every_spec_code_and_nothing_else() -> None:
    assert {code.value for code in ExceptionCode} == SPEC_CODES
    assert all(code.name == code.value for code in ExceptionCode)


def test_codes_blame_the_sender_internal_errors_the_receiver() -> None:
    assert all(code.is_sender_fault for code in ExceptionCode)
    request_error = OseoError(ExceptionCode.NoApplicableCode, None, "not XML")
    assert request_error.sender and request_error.is_sender_fault
    internal = OseoError.internal()
    assert internal.code is ExceptionCode.NoApplicableCode
    assert internal.sender is False and internal.is_sender_fault is False
    assert internal.text == "internal error"
    assert internal.locator is None
    assert OseoError.internal("store unavailable").text == "store unavailable"


def test_error_attributes_and_default_text() -> None:
    error = OseoError(ExceptionCode.InvalidOrderIdentifier, "orderId", 'unknown order "42"')
    assert (error.code, error.locator, error.text, error.sender) == (
        ExceptionCode.InvalidOrderIdentifier,
        "orderId",
        'unknown order "42"',
        True,
    )
    assert str(error) == 'unknown order "42"'
    assert "InvalidOrderIdentifier" in repr(error) and "sender" in repr(error)
    assert OseoError(ExceptionCode.InvalidOrderIdentifier).text == "Invalid value for order"
    assert OseoError(ExceptionCode.AuthenticationFailed, "identity_token").text == (
        "Invalid or missing identity information"
    )
    assert all(code.default_text for code in ExceptionCode)


def test_missing_and_invalid_shortcuts() -> None:
    missing = OseoError.missing("orderId")
    assert (missing.code, missing.locator, missing.text) == (
        ExceptionCode.MissingParameterValue,
        "orderId",
        "missing value for orderId",
    )
    invalid = OseoError.invalid("priority", 'unknown priority "URGENT"')
    assert (invalid.code, invalid.locator, invalid.text) == (
        ExceptionCode.InvalidParameterValue,
        "priority",
        'unknown priority "URGENT"',
    )


def test_quote_and_xml_safe() -> None:
    assert quote("Foo") == '"Foo"'
    assert quote("a\x00b\x1bc\ud800") == '"a\ufffdb\ufffdc\ufffd"'
    assert quote("x" * 500, limit=10) == '"' + "x" * 9 + '\u2026"'
    assert xml_safe("tab\tnew\nline\r\u00e9\U0001f600") == "tab\tnew\nline\r\u00e9\U0001f600"


def _report_fields(report: etree._Element) -> tuple[str | None, str | None, str | None, list[str | None]]:
    exceptions = report.findall(f"{{{OWS}}}Exception")
    assert len(exceptions) == 1
    texts = [t.text for t in exceptions[0].findall(f"{{{OWS}}}ExceptionText")]
    return report.get("version"), exceptions[0].get("exceptionCode"), exceptions[0].get("locator"), texts


def test_report_shape() -> None:
    report = render_exception_report(OseoError(ExceptionCode.UnsupportedCollection, "collectionId", "no such"))
    assert report.tag == f"{{{OWS}}}ExceptionReport"
    assert report.get(f"{{{XML}}}lang") == "en"
    assert _report_fields(report) == ("2.0.0", "UnsupportedCollection", "collectionId", ["no such"])


def test_report_without_locator_has_no_locator_attribute() -> None:
    report = render_exception_report(OseoError.internal())
    assert _report_fields(report) == ("2.0.0", "NoApplicableCode", None, ["internal error"])
    assert "locator" not in report[0].attrib


def test_report_survives_hostile_text() -> None:
    # A text quoting a client value verbatim must still serialise.
    error = OseoError(ExceptionCode.InvalidParameterValue, "bad\x00locator", "value \x07 " + "y" * 5000)
    report = render_exception_report(error)
    data = etree.tostring(report)
    reparsed = etree.fromstring(data)
    _, _, locator, texts = _report_fields(reparsed)
    assert locator == "bad\ufffdlocator"
    assert texts[0] is not None and texts[0].startswith("value \ufffd ") and len(texts[0]) == 1000


@requires_schemas
@pytest.mark.parametrize("code", list(ExceptionCode))
@pytest.mark.parametrize("locator", [None, "orderId"])
def test_report_is_schema_valid(code: ExceptionCode, locator: str | None) -> None:
    assert_valid(render_exception_report(OseoError(code, locator, "some text")))
    assert_valid(etree.tostring(render_exception_report(OseoError(code, locator))))
