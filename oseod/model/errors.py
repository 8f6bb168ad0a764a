"""Why the core refuses a request, in OSEO's terms but without its XML.

``code`` is the name of an OWS/OSEO exceptionCode (InvalidParameterValue,
InvalidOrderIdentifier, ...); the transport turns it into its own fault."""

from __future__ import annotations


class RequestRejected(Exception):
    def __init__(self, code: str, locator: str | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.locator = locator
        self.text = text


def invalid(locator: str, text: str) -> RequestRejected:
    return RequestRejected("InvalidParameterValue", locator, text)


def missing(locator: str, text: str) -> RequestRejected:
    return RequestRejected("MissingParameterValue", locator, text)
