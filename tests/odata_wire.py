"""Talking to /odata/v1 as a Copernicus client does, for the black-box
tests (tests/test_odata_blackbox.py): HTTP calls with ``requests``, what
every answer must be (no 500, ``OData-Version``, the error shape), following
an order with ``$filter`` and a result through its 307, and the same order's
GetStatus over SOAP (schema-valid)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from lxml import etree

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.polling import wait_for

JSON_TYPE = "application/json;odata.metadata=minimal"
UUID_FORM = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Client:
    """A Copernicus client's HTTP calls: Basic (or Bearer) credentials on
    every request, JSON bodies, no redirect followed unless asked."""

    def __init__(self, daemon: Daemon, user: str | None = "alice", password: str | None = None,
                 token: str | None = None) -> None:
        self.base = daemon.http + "/odata/v1"
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif user is not None:
            self.session.auth = (user, password or f"{user}-password")

    def get(self, path: str, **params: str) -> requests.Response:
        response = self.session.get(self.base + path, params=params, allow_redirects=False, timeout=30)
        return checked(response)

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None, **kwargs: Any) -> requests.Response:
        if raw is None:
            raw = json.dumps(body if body is not None else {}).encode()
        response = self.session.post(self.base + path, data=raw, headers={"Content-Type": "application/json"},
                                     allow_redirects=False, timeout=30, **kwargs)
        return checked(response)


def checked(response: requests.Response) -> requests.Response:
    """What every /odata answer must be, whatever it says: no 500, the
    OData-Version header, JSON in the error shape when it refuses."""
    assert response.status_code < 500, (response.request.method, response.url, response.status_code,
                                        response.text[:2000])
    assert response.headers.get("OData-Version") == "4.0", (response.url, dict(response.headers))
    if response.status_code >= 400 and not urlsplit(response.url).path.endswith("/token"):
        assert response.headers["Content-Type"].startswith("application/json"), response.headers
        error = response.json()["error"]
        assert isinstance(error["code"], str) and error["code"], error
        assert isinstance(error["message"], str) and error["message"], error
    return response


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, response.url, response.status_code,
                                            response.text[:2000])
    assert response.headers["Content-Type"].replace(" ", "") == JSON_TYPE, response.headers
    return response.json()


def refused(response: requests.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, (response.request.method, response.url, response.status_code,
                                            response.text[:2000])
    return response.json()["error"]  # type: ignore[no-any-return]


def soap_status(daemon: Daemon, order_id: str, user: str = "alice") -> etree._Element:
    """GetStatus full over SOAP (the answer validated against the XSDs)."""
    from tests.test_daemon import oseo_call
    from tests.test_http_ordering import get_status

    monitor = oseo_call(daemon, user, get_status(order_id)).find(f"{{{OSEO}}}orderMonitorSpecification")
    assert monitor is not None
    return monitor


def option_of(monitor: etree._Element) -> list[str]:
    """The format option's values in a GetStatus answer, order or items."""
    return [str(v) for v in monitor.xpath(".//*[local-name()='format']/text()")]


def soap_status_text(daemon: Daemon, order_id: str) -> str | None:
    return soap_status(daemon, order_id).findtext(f"{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")


def follow(client: Client, entity_set: str, order: str, status: str = "completed") -> dict[str, Any]:
    """Poll the entity set with $filter until the order has ``status``, as
    an LTA client does (``Id eq <uuid>``, ``$count=true``)."""
    def found() -> dict[str, Any] | None:
        page = ok(client.get(f"/{entity_set}", **{"$filter": f"Id eq {order} and Status eq '{status}'",
                                                  "$count": "true", "$top": "1000"}))
        assert page["@odata.count"] == len(page["value"]) <= 1, page
        return page["value"][0] if page["value"] else None

    row = wait_for(found, 60, f"{entity_set}({order}) to be {status}")
    assert row is not None and row["Id"] == order
    return row


def download(client: Client, path: str, name: str) -> bytes:
    """``<path>/$value``: a 307 to the HTTP delivery, fetched with the same credentials."""
    answer = client.get(f"{path}/$value")
    assert answer.status_code == 307, (answer.status_code, answer.text)
    location = answer.headers["Location"]
    target = urlsplit(location)
    assert target.path.startswith("/results/") and target.path.endswith(name.split("/")[-1]), location
    fetched = client.session.get(location if target.scheme else client.base.split("/odata")[0] + location,
                                 allow_redirects=False, timeout=30)
    assert fetched.status_code == 200, (location, fetched.status_code, fetched.text[:500])
    return fetched.content
