"""POST /odata/v1/token (oseod.http.odata_token) mounted on a bare Klein app
over loopback, beside the daemon's parts as oseod.tap wires them: tokens of
both grants open /oseo (bare XML, answers schema-valid) and /results
downloads; every OAuth2 error; the cap; the lock-out; expiry on a Clock;
revocation with oseoctl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from klein import Klein
from twisted.internet import reactor, threads
from twisted.web.iweb import IRequest
from twisted.web.server import Site

from oseod.config import Config, parse_config
from oseod.http.credentials import BadCredentials, request_account
from oseod.http.odata_token import TokenEndpoint
from oseod.jobs.dummy import content
from oseod.metrics import RequestMetrics
from oseod.model.logins import Client, LockedOut
from oseod.oseo.namespaces import OSEO
from oseod.store.connection import Redis
from tests.oseo_schema import assert_valid
from tests.test_auth_bearer import Parts
from tests.test_http_ordering import get_status, order_id_of, server, submit  # noqa: F401 - server is a fixture

NO_STORE = ["no-store"]


class TokenApp:
    """The endpoint on a Klein app of its own (the daemon mounts it in the
    OData app), with ``/whoami`` behind request_account for the tests that
    need a door of their own."""

    app = Klein()

    def __init__(self, endpoint: TokenEndpoint, portal: Any) -> None:
        self.endpoint = endpoint
        self.portal = portal
        self.port: Any = reactor.listenTCP(0, Site(self.app.resource()), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    @app.route("/odata/v1/token", methods=["POST"])
    async def token(self, request: IRequest) -> bytes:
        return await self.endpoint.post(request)

    @app.route("/whoami")
    async def whoami(self, request: IRequest) -> bytes:
        try:
            account = await request_account(self.portal, request, Client("127.0.0.1", "http"))
        except BadCredentials as e:
            request.setResponseCode(401)
            return str(e).encode()
        except LockedOut as e:
            request.setResponseCode(429)
            return str(e).encode()
        return account.name.encode() if account is not None else b"-"

    async def post(self, data: Any = None, *, query: str = "", **kw: Any) -> tuple[int, Any, dict[str, Any]]:
        response = await treq.post(f"{self.url}/odata/v1/token{query}", data=data, persistent=False, **kw)
        body = await response.content()
        assert response.code < 500, body
        assert response.headers.getRawHeaders("cache-control") == NO_STORE
        return response.code, response.headers, json.loads(body)

    async def token(self, user: str = "alice") -> str:
        code, _, body = await self.post({"grant_type": "password", "username": user, "password": f"{user}-password"})
        assert code == 200, body
        return str(body["access_token"])


@pytest_twisted.async_yield_fixture
async def tokens(server: Any) -> Any:
    made: list[tuple[Any, TokenApp]] = []

    async def make(config: Config = Config()) -> tuple[Any, TokenApp]:
        srv = await server(config)
        assert srv.parts.tokens is not None
        endpoint = TokenEndpoint(portal=srv.parts.portal, tokens=srv.parts.tokens, clock=reactor,
                                 metrics=srv.parts.metrics)
        made.append((srv, TokenApp(endpoint, srv.parts.portal)))
        return made[-1]

    yield make
    for _, app in made:
        await app.port.stopListening()


def bearer(token: str) -> dict[str, list[str]]:
    return {"Authorization": [f"Bearer {token}"]}


async def get_status_bare(srv: Any, order_id: str, token: str) -> tuple[int, bytes]:
    response = await treq.post(srv.url, data=get_status(order_id).encode(),
                               headers={"Content-Type": ["application/xml"], **bearer(token)}, persistent=False)
    return response.code, await response.content()


@pytest_twisted.ensureDeferred
async def test_tokens_of_both_grants_open_oseo_and_results(tokens: Any) -> None:
    srv, app = await tokens()
    code, headers, body = await app.post({"grant_type": "password", "username": "alice",
                                          "password": "alice-password"})
    assert code == 200 and set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert headers.getRawHeaders("content-type") == ["application/json;charset=UTF-8"]
    by_password = body["access_token"]
    # prosEO's clients: the parameters in the query string, the client by HTTP Basic.
    code, _, body = await app.post(query="?grant_type=client_credentials", auth=("alice", "alice-password"))
    assert code == 200
    by_basic = body["access_token"]
    code, _, body = await app.post({"grant_type": "client_credentials", "client_id": "alice",
                                    "client_secret": "alice-password"})
    assert code == 200
    by_secret = body["access_token"]
    assert len({by_password, by_basic, by_secret}) == 3

    code, ack = await srv.call(submit("t1"))
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    url = srv.url.removesuffix("/oseo") + f"/results/{order_id}/t1/t1-product.dat"
    for token in (by_password, by_basic, by_secret):
        code, answer = await get_status_bare(srv, order_id, token)
        assert code == 200, answer
        status = assert_valid(answer)
        assert status.findtext(f".//{{{OSEO}}}orderId") == order_id
        response = await treq.get(url, headers=bearer(token), persistent=False)
        assert (response.code, await response.content()) == (200, content("t1", 1024))

    # Not another user's order, and never a wrong token.
    bob = await app.token("bob")
    response = await treq.get(url, headers=bearer(bob), persistent=False)
    assert response.code == 404
    await response.content()
    for wrong in ("x" * 43, "", "a b"):
        response = await treq.get(url, headers={"Authorization": [f"Bearer {wrong}"]}, persistent=False)
        assert response.code == 401
        assert response.headers.getRawHeaders("www-authenticate") == ['Basic realm="oseod", Bearer realm="oseod"']
        await response.content()
    code, answer = await get_status_bare(srv, order_id, "y" * 43)
    assert code == 401
    assert b"AuthenticationFailed" in answer and b"the bearer token is invalid, expired or revoked" in answer
    assert_valid(answer)


FORM = {"Content-Type": ["application/x-www-form-urlencoded"]}


@pytest.mark.parametrize("data, query, kw, status, error, says", [
    ({}, "", {}, 400, "invalid_request", "grant_type is missing"),
    ({"grant_type": "authorization_code", "code": "x"}, "", {}, 400, "unsupported_grant_type", "authorization_code"),
    ({"grant_type": "password", "username": "alice"}, "", {}, 400, "invalid_request", "password is missing"),
    ({"grant_type": "password", "password": "alice-password"}, "", {}, 400, "invalid_request", "username is missing"),
    ({"grant_type": "password", "username": "alice", "password": "nope"}, "", {}, 400, "invalid_grant",
     "wrong user name or password"),
    ({"grant_type": "password", "username": "nobody", "password": "nope"}, "", {}, 400, "invalid_grant",
     "wrong user name or password"),
    ({"grant_type": "password", "username": "alice", "password": "alice-password"}, "?grant_type=password", {}, 400,
     "invalid_request", "grant_type is given more than once"),
    ({"grant_type": "client_credentials"}, "", {}, 401, "invalid_client", "client authentication required"),
    ({"grant_type": "client_credentials", "client_id": "alice", "client_secret": "nope"}, "", {}, 401,
     "invalid_client", "wrong user name or password"),
    ({"grant_type": "client_credentials", "client_id": "alice"}, "", {}, 400, "invalid_request",
     "client_secret is missing"),
    ({"grant_type": "client_credentials"}, "", {"auth": ("alice", "nope")}, 401, "invalid_client",
     "wrong user name or password"),
    ({"grant_type": "client_credentials", "client_id": "alice", "client_secret": "alice-password"}, "",
     {"auth": ("alice", "alice-password")}, 400, "invalid_request", "one way"),
    ({"grant_type": "client_credentials"}, "", {"headers": {"Authorization": ["Digest username=alice"]}}, 401,
     "invalid_client", "must be HTTP Basic"),
    (b'{"grant_type": "password", "username": "alice", "password": "alice-password"}', "",
     {"headers": {"Content-Type": ["application/json"]}}, 400, "invalid_request", "x-www-form-urlencoded"),
    (b"grant_type=password&username=%ff&password=x", "", {"headers": FORM}, 400, "invalid_request", "not UTF-8"),
])
@pytest_twisted.ensureDeferred
async def test_every_oauth2_error(tokens: Any, data: Any, query: str, kw: dict[str, Any], status: int, error: str,
                                  says: str) -> None:
    srv, app = await tokens()
    code, headers, body = await app.post(data, query=query, **kw)
    assert (code, body["error"]) == (status, error)
    assert srv.parts.metrics.count("http", "Token", error) == 1
    assert says in body["error_description"] and set(body) == {"error", "error_description"}
    if error == "invalid_client":
        assert headers.getRawHeaders("www-authenticate") == ['Basic realm="oseod"']


@pytest_twisted.ensureDeferred
async def test_the_cap_revokes_the_oldest_token(tokens: Any) -> None:
    srv, app = await tokens(parse_config({"odata": {"max_tokens_per_user": 2}}))
    first, second, third = [await app.token() for _ in range(3)]
    code, ack = await srv.call(submit("c1"))
    order_id = order_id_of(ack)
    assert (await get_status_bare(srv, order_id, first))[0] == 401
    for kept in (second, third):
        assert (await get_status_bare(srv, order_id, kept))[0] == 200
    assert srv.parts.tokens is not None
    assert len(await srv.parts.tokens.list("alice")) == 2


@pytest_twisted.ensureDeferred
async def test_failed_logins_lock_out(tokens: Any) -> None:
    srv, app = await tokens(parse_config({"auth": {"max_failures_per_user": 3, "max_failures_per_address": 6}}))
    good = await app.token("bob")
    for _ in range(3):
        code, _, body = await app.post({"grant_type": "password", "username": "alice", "password": "wrong"})
        assert (code, body["error"]) == (400, "invalid_grant")
    code, headers, body = await app.post({"grant_type": "password", "username": "alice", "password": "alice-password"})
    assert (code, body["error"]) == (429, "temporarily_unavailable")
    assert "this user name is locked out" in body["error_description"]
    assert int(headers.getRawHeaders("retry-after")[0]) > 0
    code, _, body = await app.post(query="?grant_type=client_credentials", auth=("alice", "alice-password"))
    assert code == 429
    # Wrong tokens count for the address: three more failures lock it out, good token or not.
    order_id = order_id_of((await srv.call(submit("l1"), user="bob", password="bob-password"))[1])
    for n in range(3):
        assert (await get_status_bare(srv, order_id, f"wrong-{n}-" + "z" * 40))[0] == 401
    code, answer = await get_status_bare(srv, order_id, good)
    assert code == 429 and b"this address is locked out" in answer
    assert_valid(answer)
    code, _, body = await app.post({"grant_type": "password", "username": "bob", "password": "bob-password"})
    assert code == 429


@pytest_twisted.ensureDeferred
async def test_a_token_expires(redis: Redis) -> None:
    await redis.conn.flushdb()
    parts = Parts(redis)
    await parts.accounts.add("alice", "alice-password")
    app = TokenApp(TokenEndpoint(portal=parts.portal, tokens=parts.tokens, clock=parts.clock,
                                 metrics=RequestMetrics()),
                   parts.portal)
    try:
        code, _, body = await app.post({"grant_type": "password", "username": "alice", "password": "alice-password"})
        assert code == 200 and body["expires_in"] == 600
        headers = bearer(body["access_token"])
        response = await treq.get(f"{app.url}/whoami", headers=headers, persistent=False)
        assert (response.code, await response.content()) == (200, b"alice")
        parts.clock.advance(600)
        response = await treq.get(f"{app.url}/whoami", headers=headers, persistent=False)
        assert (response.code, await response.content()) == (401, b"the bearer token is invalid, expired or revoked")
    finally:
        await app.port.stopListening()


def oseoctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "oseoctl"), "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60)


@pytest_twisted.ensureDeferred
async def test_oseoctl_lists_and_revokes_tokens(tokens: Any, tmp_path: Path) -> None:
    srv, app = await tokens()
    # oseoctl finds the daemon (here the parts' listener, admin API included) through its data dir.
    (tmp_path / "endpoints.json").write_text(json.dumps({"http": srv.url.removesuffix("/oseo")}))
    (tmp_path / "admin.token").write_text("t")
    a1, a2, a3 = [await app.token() for _ in range(3)]
    b1 = await app.token("bob")
    # (never "-...", which a command line takes for an option: 1 token in 64 did)
    assert all(t.startswith("oseod_") for t in (a1, a2, a3, b1))
    order_id = order_id_of((await srv.call(submit("r1")))[1])

    listed = await threads.deferToThread(oseoctl, tmp_path, "token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert sorted(t["user"] for t in found) == ["alice", "alice", "alice", "bob"]
    assert not any(token in listed.stdout for token in (a1, a2, a3, b1))
    table = await threads.deferToThread(oseoctl, tmp_path, "token", "list", "--user", "bob")
    assert table.stdout.splitlines()[0].split() == ["ID", "USER", "GRANT", "ADDRESS", "ISSUED", "EXPIRES"]
    assert [line.split()[:3] for line in table.stdout.splitlines()[1:]] == [
        [next(t["id"] for t in found if t["user"] == "bob"), "bob", "password"]]

    revoked = await threads.deferToThread(oseoctl, tmp_path, "token", "revoke", a1)
    assert revoked.returncode == 0 and "revoked token" in revoked.stdout and "of alice" in revoked.stdout
    assert (await get_status_bare(srv, order_id, a1))[0] == 401
    assert (await get_status_bare(srv, order_id, a2))[0] == 200
    by_id = next(t["id"] for t in found if t["user"] == "bob")
    assert (await threads.deferToThread(oseoctl, tmp_path, "token", "revoke", by_id)).returncode == 0
    response = await treq.get(srv.url.removesuffix("/oseo") + "/results/x/y/z", headers=bearer(b1), persistent=False)
    assert response.code == 401
    await response.content()
    again = await threads.deferToThread(oseoctl, tmp_path, "token", "revoke", by_id)
    assert again.returncode == 1 and "no such token" in again.stderr

    everything = await threads.deferToThread(oseoctl, tmp_path, "token", "revoke", "--user", "alice")
    assert everything.returncode == 0 and "revoked 2 token(s) of alice" in everything.stdout
    for token in (a2, a3):
        assert (await get_status_bare(srv, order_id, token))[0] == 401
    assert "no unexpired token" in (await threads.deferToThread(oseoctl, tmp_path, "token", "list")).stdout
    neither = await threads.deferToThread(oseoctl, tmp_path, "token", "revoke")
    assert neither.returncode == 2
    admin = srv.url.removesuffix("/oseo") + "/admin/api"
    for body, status in (({"token": a1, "user": "alice"}, 400), ({}, 400), ({"user": "no such/name"}, 400),
                         ({"token": 7}, 400)):
        response = await treq.post(f"{admin}/tokens/revoke", json=body, headers={"Authorization": ["Bearer t"]},
                                   persistent=False)
        assert response.code == status and "error" in json.loads(await response.content())
    response = await treq.get(f"{admin}/tokens", headers={"Authorization": ["Bearer wrong"]}, persistent=False)
    assert response.code == 401
    await response.content()
    audit = await threads.deferToThread(oseoctl, tmp_path, "audit", "--json")
    assert [e["action"] for e in json.loads(audit.stdout)][:3] == ["token.revoke"] * 3
