"""The /oseo endpoint, the operational routes and the admin API, served by the
real site on a loopback port, with the real portal and a real Redis."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import pytest_twisted
from lxml import etree
import treq
from twisted.internet import reactor

from oseod.auth.passwords import hash_password
from oseod.config import Config, parse_config
from oseod.http.site import OseodSite
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12
from oseod.store.connection import Redis
from oseod.store.users import UserRecord
from tests.oseo_schema import assert_valid, requires_schemas
from tests.wire import raw_exchange
from tests.parts import make_parts

pytestmark = requires_schemas

GET_CAPABILITIES = f'<GetCapabilities xmlns="{OSEO}" service="OS"/>'
SOAP12_CT = "application/soap+xml; charset=utf-8"


def soap12(payload: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP12}"><s:Body>{payload}</s:Body></s:Envelope>'.encode()


def soap11(payload: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>{payload}</s:Body></s:Envelope>'.encode()


def basic(user: str, password: str) -> dict[str, list[str]]:
    return {"Authorization": ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]}


class Server:
    def __init__(self, redis: Redis, config: Config) -> None:
        self.parts = make_parts(config, redis, admin_token=lambda: "the-token", digest_secrets=None,
                                listener_url=lambda scheme: f"{scheme}://127.0.0.1:1")
        self.users = self.parts.users
        self.metrics = self.parts.metrics
        self.site = OseodSite(self.parts.frontend.resource(), config.server.max_request_bytes)
        self.port: Any = None
        self.base = ""

    async def start(self) -> None:
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def stop(self) -> None:
        await self.port.stopListening()

    async def post(self, body: bytes, content_type: str | None, **headers: Any) -> tuple[int, Any, bytes]:
        all_headers = {k: v for k, v in headers.items()}
        if content_type:
            all_headers["Content-Type"] = [content_type]
        response = await treq.post(self.base + "/oseo", data=body, headers=all_headers, persistent=False)
        return response.code, response.headers, await response.content()

    async def get(self, path: str, **headers: Any) -> tuple[int, Any, bytes]:
        response = await treq.get(self.base + path, headers=headers, persistent=False)
        return response.code, response.headers, await response.content()


@pytest_twisted.async_yield_fixture
async def make_server(redis: Redis) -> Any:
    servers: list[Server] = []

    def make(config: Config = Config()) -> Server:
        servers.append(Server(redis, config))
        return servers[-1]

    yield make
    for server in servers:
        await server.stop()


def exception(document: bytes) -> etree._Element:
    fault = assert_valid(document)
    found = fault.find(f".//{{{OWS}}}Exception") if fault.tag != f"{{{OWS}}}Exception" else fault
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("body", "content_type", "envelope", "answer_type"),
    [
        (soap12(GET_CAPABILITIES), SOAP12_CT, SOAP12, "application/soap+xml"),
        (soap11(GET_CAPABILITIES), "text/xml; charset=utf-8", SOAP11, "text/xml"),
        (GET_CAPABILITIES.encode(), "application/xml", None, "application/xml"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_get_capabilities_in_each_encoding(make_server: Any, body: bytes, content_type: str,
                                                  envelope: str | None, answer_type: str) -> None:
    server = make_server()
    await server.start()
    code, headers, answer = await server.post(body, content_type)
    assert code == 200
    assert headers.getRawHeaders("content-type")[0].startswith(answer_type)
    root = etree.fromstring(answer)
    assert root.tag == (f"{{{envelope}}}Envelope" if envelope else f"{{{OSEO}}}Capabilities")
    capabilities = assert_valid(answer)
    assert capabilities.findtext(f".//{{{OSEO}}}collectionId") == "urn:oseod:demo"
    href = capabilities.find(f".//{{{OWS}}}Post").get("{http://www.w3.org/1999/xlink}href")
    assert href == server.base + "/oseo"
    assert server.metrics.count("http", "GetCapabilities", "ok") == 1


@pytest_twisted.ensureDeferred
async def test_kvp_and_sections(make_server: Any) -> None:
    server = make_server()
    await server.start()
    code, headers, answer = await server.get("/oseo?service=OS&request=GetCapabilities&Sections=Contents")
    assert code == 200
    capabilities = assert_valid(answer)
    assert capabilities.find(f"{{{OWS}}}ServiceIdentification") is None
    assert capabilities.find(f"{{{OSEO}}}Contents") is not None

    code, _, answer = await server.get("/oseo?service=OS&request=GetCapabilities&AcceptVersions=2.0.0")
    assert code == 400 and exception(answer).get("exceptionCode") == "VersionNegotiationFailed"
    code, _, answer = await server.get("/oseo?service=WMS&request=GetCapabilities")
    assert code == 400 and exception(answer).get("exceptionCode") == "InvalidParameterValue"
    code, _, answer = await server.get("/oseo?service=OS")
    assert code == 400 and exception(answer).get("exceptionCode") == "MissingParameterValue"
    code, _, answer = await server.get("/oseo?service=OS&request=GetStatus")
    assert code == 400 and exception(answer).get("exceptionCode") == "OperationNotSupported"


@pytest.mark.parametrize(
    ("query", "code", "locator", "says"),
    [
        # A misspelt operation is unknown; one that exists needs POST; each text says which.
        ("service=OS&request=GetCapabilitiez", "OperationNotSupported", "GetCapabilitiez",
         'unknown operation "GetCapabilitiez"; did you mean "GetCapabilities"?'),
        ("service=OS&request=getcapabilities", "OperationNotSupported", "getcapabilities",
         'did you mean "GetCapabilities"?'),
        ("service=OS&request=Frobnicate", "OperationNotSupported", "Frobnicate",
         'unknown operation "Frobnicate"; this server offers GetCapabilities, GetOptions'),
        ("service=OS&request=GetStatus", "OperationNotSupported", "GetStatus",
         'operation "GetStatus" is not available with HTTP GET: POST it'),
        ("SERVICE=OS&REQUEST=Submit", "OperationNotSupported", "Submit", "not available with HTTP GET"),
        ("service=OS", "MissingParameterValue", "request", "missing request"),
        ("service=OS&request=", "MissingParameterValue", "request", "missing request"),
        ("service=WMS&request=GetCapabilitiez", "InvalidParameterValue", "service", 'invalid service "WMS"'),
        ("request=GetCapabilities", "MissingParameterValue", "service", "missing service"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_kvp_errors_say_what_is_wrong(make_server: Any, query: str, code: str, locator: str,
                                            says: str) -> None:
    server = make_server()
    await server.start()
    status, headers, answer = await server.get("/oseo?" + query)
    assert status == 400
    assert headers.getRawHeaders("content-type")[0].startswith("application/xml")
    report = exception(answer)  # schema-valid ows:ExceptionReport
    assert (report.get("exceptionCode"), report.get("locator")) == (code, locator)
    assert says in report.findtext(f"{{{OWS}}}ExceptionText")


WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def wsdl_addresses(document: bytes) -> dict[str, str]:
    root = etree.fromstring(document)
    assert root.tag == f"{{{WSDL_NS}}}definitions"
    return {port.get("name"): port[0].get("location")
            for port in root.iterfind(f"{{{WSDL_NS}}}service/{{{WSDL_NS}}}port")}


@pytest_twisted.ensureDeferred
async def test_wsdl_names_the_public_address(make_server: Any) -> None:
    server = make_server()
    await server.start()
    for query in ("wsdl", "WSDL", "wsdl=", "service=OS&wsdl"):
        status, headers, answer = await server.get("/oseo?" + query)
        assert status == 200, query
        assert headers.getRawHeaders("content-type") == ["text/xml; charset=utf-8"]
        assert set(wsdl_addresses(answer).values()) == {server.base + "/oseo"}
    # Built from the Host the client used, as GetCapabilities' URLs are...
    _, _, answer = await server.get("/oseo?wsdl", Host=["oseo.example.org:8443"])
    assert set(wsdl_addresses(answer).values()) == {"http://oseo.example.org:8443/oseo"}
    root = etree.fromstring(answer)
    imports = {i.get("namespace"): i.get("schemaLocation")
               for i in root.iter("{http://www.w3.org/2001/XMLSchema}import")}
    assert imports[OSEO] == "http://schemas.opengis.net/oseo/1.0/oseo.xsd"
    assert imports[OWS] == "http://schemas.opengis.net/ows/2.0/owsAll.xsd"

    # ...unless [server] public_url says where clients reach it.
    public = make_server(parse_config({"server": {"public_url": "https://eo.example.org/ordering/oseo"}}))
    await public.start()
    _, _, answer = await public.get("/oseo?wsdl", Host=["10.0.0.7:8080"])
    assert wsdl_addresses(answer) == {"OSEO_V100_Soap12Port": "https://eo.example.org/ordering/oseo",
                                      "OSEO_V100_Port": "https://eo.example.org/ordering/oseo"}
    assert public.metrics.count("http", "WSDL", "ok") == 1


@pytest.mark.parametrize(
    ("body", "content_type", "code", "status", "fault_ns"),
    [
        (b"<not xml", SOAP12_CT, "NoApplicableCode", 400, SOAP12),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', SOAP12_CT, "NoApplicableCode", 400,
         SOAP12),
        (soap12(f'<GetQuotationResponse xmlns="{OSEO}" service="OS" version="1.0.0"/>'), SOAP12_CT,
         "OperationNotSupported", 400, SOAP12),
        (soap12(f'<SubmitResponseAck xmlns="{OSEO}"><status>success</status></SubmitResponseAck>'), SOAP12_CT,
         "OperationNotSupported", 400, SOAP12),
        (soap12(f'<Submit xmlns="{OSEO}" service="OS" version="1.0.0"/>'), SOAP12_CT, "AuthenticationFailed", 401,
         SOAP12),
        (soap11(f'<Frobnicate xmlns="{OSEO}"/>'), "text/xml", "OperationNotSupported", 400, SOAP11),
        (soap11(GET_CAPABILITIES), SOAP12_CT, "NoApplicableCode", 400, SOAP12),
        (soap12(f'<GetCapabilities xmlns="{OSEO}"/>'), SOAP12_CT, "MissingParameterValue", 400, SOAP12),
        (b'<GetCapabilities xmlns="urn:other" service="OS"/>', "application/xml", "OperationNotSupported", 400, None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_requests_get_faults(make_server: Any, body: bytes, content_type: str, code: str, status: int,
                                       fault_ns: str | None) -> None:
    server = make_server()
    await server.start()
    http_code, headers, answer = await server.post(body, content_type)
    assert http_code == status
    assert b"Traceback" not in answer
    report = exception(answer)
    assert report.get("exceptionCode") == code
    if fault_ns is not None:
        assert etree.fromstring(answer).tag == f"{{{fault_ns}}}Envelope"
        sender = "soap:Sender" if fault_ns == SOAP12 else "soap:Client"
        assert sender.split(":")[1].encode() in answer
    assert server.metrics.count("http", "unknown", code) + sum(
        server.metrics.count("http", op, code) for op in ("GetCapabilities", "Submit", "Frobnicate")) == 1


@pytest_twisted.ensureDeferred
async def test_credentials_and_group_restricted_collections(make_server: Any) -> None:
    config = parse_config({
        "auth": {"anonymous_capabilities": False},
        "collection": [{"id": "urn:x:public"}, {"id": "urn:x:secret", "groups": ["insiders"]}],
    })
    server = make_server(config)
    await server.start()
    await server.users.create(UserRecord(name="in", password_hash=hash_password("inside-pw"), group="insiders"))
    await server.users.create(UserRecord(name="out", password_hash=hash_password("outside-pw")))

    code, headers, answer = await server.post(soap12(GET_CAPABILITIES), SOAP12_CT)
    assert code == 401 and exception(answer).get("exceptionCode") == "AuthenticationFailed"
    assert exception(answer).get("locator") == "identity_token"
    assert headers.getRawHeaders("www-authenticate") == ['Basic realm="oseod", Bearer realm="oseod"']

    code, _, answer = await server.post(soap12(GET_CAPABILITIES), SOAP12_CT, **basic("in", "wrong"))
    assert code == 401 and exception(answer).get("exceptionCode") == "AuthenticationFailed"

    async def collections(user: str, password: str) -> list[str]:
        code, _, answer = await server.post(soap12(GET_CAPABILITIES), SOAP12_CT, **basic(user, password))
        assert code == 200
        return [e.text for e in assert_valid(answer).iter(f"{{{OSEO}}}collectionId")]

    assert await collections("in", "inside-pw") == ["urn:x:public", "urn:x:secret"]
    assert await collections("out", "outside-pw") == ["urn:x:public"]


@pytest_twisted.ensureDeferred
async def test_health_metrics_and_unknown_routes(make_server: Any) -> None:
    server = make_server()
    await server.start()
    code, headers, body = await server.get("/health")
    assert code == 200 and json.loads(body)["redis"]["reachable"] is True
    await server.post(soap12(GET_CAPABILITIES), SOAP12_CT)
    code, headers, body = await server.get("/metrics")
    assert code == 200 and headers.getRawHeaders("content-type")[0].startswith("text/plain; version=0.0.4")
    assert b'oseod_requests_total{transport="http",operation="GetCapabilities",outcome="ok"} 1' in body
    code, _, body = await server.get("/nothing/here")
    assert code == 404 and body == b"not found\n"
    response = await treq.delete(server.base + "/oseo", persistent=False)
    assert response.code == 405 and "POST" in response.headers.getRawHeaders("allow")[0]
    for below in ("/oseo/", "/oseo/x", "/oseo/x/y"):
        code, _, body = await server.get(below)
        assert (code, body) == (404, b"not found\n"), below


@pytest_twisted.ensureDeferred
async def test_head_of_the_kvp_capabilities_has_the_length_and_no_body(make_server: Any) -> None:
    server = make_server()
    await server.start()
    query = "/oseo?service=OS&request=GetCapabilities"
    code, headers, body = await server.get(query)
    assert code == 200 and body
    response = await treq.head(server.base + query, persistent=False)
    assert response.code == 200 and await response.content() == b""
    assert response.headers.getRawHeaders("content-length") == [str(len(body))]
    assert response.headers.getRawHeaders("content-type") == headers.getRawHeaders("content-type")


class _BrokenEndpoint:
    """An OSEO endpoint with a bug: what the door does with an exception
    that the endpoint, which answers every error itself, let out."""

    async def post(self, request: Any) -> bytes:
        raise ZeroDivisionError("a bug")

    async def get(self, request: Any) -> bytes:
        return b"<answer/>"


def test_the_oseo_door_answers_an_endpoint_bug_with_a_one_line_500() -> None:
    from twisted.logger import globalLogPublisher
    from twisted.web.test.requesthelper import DummyRequest

    from oseod.http.oseo_door import OseoDoor

    door = OseoDoor(_BrokenEndpoint())  # type: ignore[arg-type]
    events: list[Any] = []
    globalLogPublisher.addObserver(events.append)
    try:
        request = DummyRequest([b"oseo"])
        request.method = b"POST"
        door.render(request)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert request.finished and request.responseCode == 500
    assert b"".join(request.written) == b"internal error\n"
    assert [e["log_failure"].type for e in events if "log_failure" in e] == [ZeroDivisionError]


def test_the_oseo_door_drops_the_answer_of_a_client_that_hung_up() -> None:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure
    from twisted.web.test.requesthelper import DummyRequest

    from oseod.http.oseo_door import OseoDoor

    held: Deferred[bytes] = Deferred()

    class _Slow:
        async def post(self, request: Any) -> bytes:
            return await held

    request = DummyRequest([b"oseo"])
    request.method = b"POST"
    OseoDoor(_Slow()).render(request)  # type: ignore[arg-type]
    request.processingFailed(Failure(ConnectionError("gone")))  # the client hangs up
    held.callback(b"<stored/>")  # the work goes on to its end
    assert request.written == [] and request.finished == 0


@pytest_twisted.ensureDeferred
async def test_admin_api(make_server: Any) -> None:
    server = make_server(parse_config({"auth": {"min_password_length": 10}}))
    await server.start()
    api = server.base + "/admin/api"
    auth = {"Authorization": ["Bearer the-token"]}

    async def call(method: str, path: str, body: Any = None, headers: Any = auth) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(method, api + path, data=data, headers=headers, persistent=False)
        return response.code, json.loads(await response.content())

    assert (await call("GET", "/users", headers={}))[0] == 401
    assert (await call("GET", "/users", headers={"Authorization": ["Bearer not-it"]}))[0] == 401
    code, user = await call("POST", "/users", {"name": "frank", "password": "frank-password", "admin": True,
                                               "group": "ops", "email": "f@example.org"})
    assert code == 201 and user == {**user, "name": "frank", "admin": True, "group": "ops"}
    assert user["warnings"] == []
    assert "password" not in user
    stored = await server.users.get("frank")
    assert stored is not None and stored.password_hash.startswith("scrypt$")
    assert (await call("POST", "/users", {"name": "frank", "password": "frank-password"}))[0] == 409
    code, error = await call("POST", "/users", {"name": "bad name", "password": "frank-password"})
    assert code == 400 and "invalid user name" in error["error"]
    code, error = await call("POST", "/users", {"name": "gina", "password": 12345678})
    assert code == 400 and "'password' must be a str" in error["error"]
    code, error = await call("POST", "/users", {"name": "gina"})
    assert code == 400 and "missing field 'password'" in error["error"]
    code, user = await call("PATCH", "/users/frank", {"admin": False, "group": "eo"})
    assert code == 200 and (user["admin"], user["group"]) == (False, "eo")
    assert (await call("PATCH", "/users/frank", {"colour": "red"}))[0] == 400
    assert (await call("PUT", "/users/frank/password", {"password": "another-password"}))[0] == 200
    code, error = await call("PUT", "/users/frank/password", {"password": "9chars..."})
    assert code == 400 and "at least 10" in error["error"]
    code, answer = await call("PUT", "/users/frank/password", {"password": "eleven-char"})
    assert code == 200 and answer["warnings"] == ["the password is shorter than 12 characters"]
    code, error = await call("PUT", "/users/frank/password", {"password": "line\nbreak-password"})
    assert code == 400 and "line break" in error["error"]
    assert (await call("GET", "/users/nobody"))[0] == 404
    code, listing = await call("GET", "/users")
    assert [u["name"] for u in listing["users"]] == ["frank"]
    assert (await call("DELETE", "/users/frank"))[0] == 200
    assert (await call("DELETE", "/users/frank"))[0] == 404
    assert (await call("GET", "/nope"))[0] == 404
    response = await treq.post(api + "/users", data=b"{not json", headers=auth, persistent=False)
    assert response.code == 400 and "not JSON" in json.loads(await response.content())["error"]


@pytest.mark.parametrize("chunked", [False, True])
@pytest_twisted.ensureDeferred
async def test_body_cap_refuses_before_reading(make_server: Any, chunked: bool) -> None:
    from twisted.internet.threads import deferToThread

    server = make_server(parse_config({"server": {"max_request_bytes": 2048}}))
    await server.start()
    body = b"<x>" + b" " * 5000 + b"</x>"
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000]) for i in range(0, len(body), 1000)
        ) + b"0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n\r\n" % len(body) + body
    answer = await deferToThread(
        raw_exchange, server.port.getHost().port,
        b"POST /oseo HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n" + framing,
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b"request body larger than 2048 bytes\n")
    # A body within the cap is served as usual.
    code, _, _ = await server.post(soap12(GET_CAPABILITIES), SOAP12_CT)
    assert code == 200


def test_work_outlives_a_client_that_hangs_up() -> None:
    """A cancelled answer (the client went away) does not cancel the work."""
    from twisted.internet.defer import CancelledError, Deferred

    from oseod.http.outlive import outlive_the_client as _outlive_the_client

    work: Deferred[bytes] = Deferred()
    answer = _outlive_the_client(work)
    failures: list[Any] = []
    answer.addErrback(failures.append)
    answer.cancel()
    assert failures and failures[0].check(CancelledError)
    assert not work.called  # still running
    work.callback(b"stored")  # finishes later; its result is dropped quietly
    assert work.result is None  # consumed, no "Unhandled error in Deferred"


class _HeldThreadPool:
    """A thread pool that runs nothing until told: which parses are under way."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any, tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Any, function: Any, *args: Any) -> None:  # noqa: N802
        self.jobs.append((on_result, function, args))

    def run_one(self) -> None:
        on_result, function, args = self.jobs.pop(0)
        try:
            result = function(*args)
        except Exception:
            from twisted.python.failure import Failure

            on_result(False, Failure())
        else:
            on_result(True, result)


def _endpoint(pool: _HeldThreadPool, portal: Any = None) -> Any:
    """An OseoEndpoint on a Clock whose thread pool runs jobs when told. The
    portal is only needed once a body parses; no operation is ever run here
    (all fail before), GetStatus is only recognised."""
    from types import SimpleNamespace

    from twisted.internet.task import Clock

    from oseod.http.oseo import OseoEndpoint
    from oseod.metrics import RequestMetrics
    from oseod.threads import ThreadPools

    clock: Any = Clock()
    clock.getThreadPool = lambda: pool
    clock.callFromThread = lambda f, *args, **kwargs: f(*args, **kwargs)
    nobody: Any = None
    operations: Any = SimpleNamespace(handlers={"GetStatus": None})
    return OseoEndpoint(portal=portal, operations=operations, capabilities=nobody, metrics=RequestMetrics(),
                        clock=clock, threads=ThreadPools(clock, pool, pool, pool, pool, pool),  # type: ignore[arg-type]
                        public_url="", anonymous_capabilities=False)


def _post(endpoint: Any, body: bytes) -> tuple[Any, Any]:
    """A request whose body was spooled to a file, as Twisted spools one over
    100 KB, and its answer (a Deferred)."""
    import tempfile

    from twisted.internet.defer import Deferred
    from twisted.web.test.requesthelper import DummyRequest

    request = DummyRequest([b"oseo"])
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/soap+xml"])
    content: Any = tempfile.TemporaryFile()
    content.write(body)
    content.seek(0)
    request.content = content
    return request, Deferred.fromCoroutine(endpoint.post(request))


def test_large_bodies_are_parsed_a_few_at_a_time_from_their_file() -> None:
    """Large bodies wait for one of LARGE_PARSES turns in the thread pool
    (each reading its spooled file, on a handle of its own) while small
    requests are answered at once."""
    from oseod.http.operations import OFF_THREAD_BYTES
    from oseod.http.oseo import LARGE_PARSES

    pool = _HeldThreadPool()
    endpoint = _endpoint(pool)
    hostile = soap12(f'<Submit xmlns="{OSEO}">' + "<a/>" * (OFF_THREAD_BYTES // 4) + "</Submit>")
    large = [_post(endpoint, hostile) for _ in range(LARGE_PARSES + 3)]
    assert len(pool.jobs) == LARGE_PARSES and not any(answer.called for _, answer in large)
    small, answer = _post(endpoint, soap12("<not-closed>"))
    assert answer.called and small.responseCode == 400  # not held up
    large[0][0].content.close()  # as Twisted does when a client hangs up
    large[-1][0].content.close()  # even before its turn
    for n in range(len(large)):
        pool.run_one()
        assert len(pool.jobs) == min(LARGE_PARSES, len(large) - n - 1)
    for request, answer in large:
        assert request.responseCode == 400
        fault = assert_valid(answer.result)
        exception = fault.find(f".//{{{OWS}}}Exception")
        assert exception is not None and exception.get("exceptionCode") == "NoApplicableCode"
        assert "more than 60000 XML elements" in (exception.findtext(f"{{{OWS}}}ExceptionText") or "")


def test_a_large_body_keeps_its_turn_until_its_sender_is_known() -> None:
    """A tree of megabytes lives until authentication says who sent it: the
    turn covers both, so no more than LARGE_PARSES such trees wait for a
    password check (slow on purpose) at once. Small requests go on."""
    from twisted.cred.checkers import ICredentialsChecker
    from twisted.cred.credentials import IUsernamePassword
    from twisted.cred.error import UnauthorizedLogin
    from twisted.cred.portal import IRealm, Portal
    from twisted.internet.defer import Deferred
    from zope.interface import implementer

    from oseod.http.oseo import LARGE_PARSES, TURN_BYTES
    from oseod.oseo.namespaces import WSSE

    @implementer(ICredentialsChecker)
    class HeldChecker:
        credentialInterfaces = (IUsernamePassword,)

        def __init__(self) -> None:
            self.checking: list[Deferred[bytes]] = []

        def requestAvatarId(self, credentials: Any) -> Deferred[bytes]:  # noqa: N802
            self.checking.append(Deferred())
            return self.checking[-1]

    @implementer(IRealm)
    class NoRealm:  # never reached: every check fails
        def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:  # noqa: N802
            raise AssertionError("no password is right here")

    checker = HeldChecker()
    endpoint = _endpoint(_HeldThreadPool(), Portal(NoRealm(), [checker]))

    def get_status(padding: int) -> bytes:
        token = (f'<wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken><wsse:Username>erin</wsse:Username>'
                 "<wsse:Password>guess</wsse:Password></wsse:UsernameToken></wsse:Security>")
        return (f'<s:Envelope xmlns:s="{SOAP12}"><s:Header>{token}</s:Header><s:Body>' + " " * padding
                + f'<GetStatus xmlns="{OSEO}" service="OS" version="1.0.0"><orderId>1</orderId>'
                "<presentation>brief</presentation></GetStatus></s:Body></s:Envelope>").encode()

    large = [_post(endpoint, get_status(TURN_BYTES)) for _ in range(LARGE_PARSES + 2)]
    assert len(checker.checking) == LARGE_PARSES  # the others wait, unparsed
    _, small = _post(endpoint, get_status(0))
    assert len(checker.checking) == LARGE_PARSES + 1  # straight to its check
    checker.checking.pop(0).errback(UnauthorizedLogin("wrong user name or password"))
    assert large[0][1].called and not large[LARGE_PARSES][1].called
    assert len(checker.checking) == LARGE_PARSES + 1  # the next large one has its turn
    while checker.checking:
        checker.checking.pop(0).errback(UnauthorizedLogin("wrong user name or password"))
    for request, answer in large:
        assert request.responseCode == 401
        assert_valid(answer.result)
    assert small.called
