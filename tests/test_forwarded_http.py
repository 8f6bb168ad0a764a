"""Behind a reverse proxy, over real HTTP: with ``[server] trusted_proxies``
naming the proxy, every record of a client address (the console's login
counters and audit, the admin API's audit, the request log line, the
transfer log) names the client the proxy forwards for; without it, or from
a peer that is no trusted proxy, the headers are the client's own word and
are ignored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import pytest_twisted
import treq

from oseod.config import parse_config
from tests.oseo_schema import requires_schemas
from tests.events import Event, captured, transfer_event
from tests.test_http_downloads import fetch
from tests.test_http_ordering import Server, envelope, order_id_of, server, submit, token  # noqa: F401 - fixture

OPERATOR, OPERATOR_PASSWORD = "olga", "olga-password-1"
LOCKED = 429
MAX_TRIES = 200  # far above any per-address limit: the test fails if the lock never comes


def request_event(event: Event) -> bool:
    """The one line per request (oseod.metrics)."""
    return "duration_ms" in event and "outcome" in event


async def started(make: Any, trusted: Sequence[str]) -> Server:
    srv: Server = await make(parse_config({"server": {"trusted_proxies": list(trusted)}}))
    await srv.accounts.add(OPERATOR, OPERATOR_PASSWORD, admin=True)
    return srv


async def http(srv: Server, method: str, path: str, headers: dict[str, str], data: Any = None) -> tuple[int, bytes]:
    response = await treq.request(method, srv.url.removesuffix("/oseo") + path, data=data, headers=headers,
                                  allow_redirects=False, persistent=False)
    body = await response.content()
    assert response.code < 500, body
    return response.code, body


async def console_login(srv: Server, user: str, password: str, headers: dict[str, str]) -> int:
    code, _ = await http(srv, "POST", "/console/login", headers,
                         data={"user": user, "password": password, "next": "/console/"})
    return code


async def fail_until_locked(srv: Server, headers: Any) -> int:
    """Wrong passwords, each for another user name (so that no name is
    locked), until the address is: how many it took. ``headers(n)``: the
    headers of the n-th try."""
    for n in range(1, MAX_TRIES + 1):
        code = await console_login(srv, f"guess{n}", "wrong-password", headers(n))
        if code == LOCKED:
            return n
        assert code == 401
    raise AssertionError(f"no lock-out after {MAX_TRIES} failed logins")


async def audited(srv: Server, action: str) -> set[str]:
    """The addresses the audit log recorded for ``action``."""
    return {e.address for e in await srv.parts.actions.audit(1000) if e.action == action}


async def admin_add_user(srv: Server, name: str, headers: dict[str, str]) -> None:
    code, body = await http(srv, "POST", "/admin/api/users", {"Authorization": "Bearer t", **headers},
                            data=json.dumps({"name": name, "password": f"{name}-password-1"}).encode())
    assert code in (200, 201), body


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_behind_a_trusted_proxy_every_record_names_the_forwarded_client(server: Any) -> None:
    srv = await started(server, ["127.0.0.1/32"])

    # SOAP: the request log line.
    with captured(request_event) as events:
        code, ack, _ = await srv.post(envelope(submit("x1"), token("alice", "alice-password")),
                                      **{"X-Forwarded-For": "198.51.100.1"})
    assert code == 200
    order_id = order_id_of(ack)
    assert [(e["operation"], e["address"]) for e in events] == [("Submit", "198.51.100.1")]
    assert "from=198.51.100.1" in events[0]["request"]

    # An HTTP download: the transfer log and the request line. A chain of
    # proxies: the client's own entry (left) is not what counts.
    await srv.parts.engine.drain()
    url = srv.url.removesuffix("/oseo") + f"/results/{order_id}/x1/x1-product.dat"
    with captured(lambda e: transfer_event(e) or request_event(e)) as events:
        code, _, _ = await fetch(url, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.2, 127.0.0.1"})
        assert code == 200
        refused, _, _ = await fetch(url, user="bob", **{"X-Forwarded-For": "198.51.100.2"})
        assert refused in (403, 404)
    assert [e["client"] for e in events if transfer_event(e)] == ["198.51.100.2"]
    assert [e["address"] for e in events if request_event(e)] == ["198.51.100.2"] * 2

    # The URLs the daemon builds from the request: over TLS, the proxy says.
    code, capabilities = await http(srv, "GET", "/oseo?service=OS&request=GetCapabilities",
                                    {"Host": "oseo.example.org", "X-Forwarded-Proto": "https"})
    assert code == 200 and b'"https://oseo.example.org/oseo"' in capabilities

    # The admin API's audit, with the standard Forwarded header.
    await admin_add_user(srv, "carol", {"Forwarded": 'for="198.51.100.3:4711";proto=https'})
    assert await audited(srv, "user.add") == {"198.51.100.3"}

    # The console: one address's guesses lock that address, not the
    # operators behind the same proxy.
    tries = await fail_until_locked(srv, lambda n: {"X-Forwarded-For": "203.0.113.66"})
    assert tries > 1
    assert await console_login(srv, OPERATOR, OPERATOR_PASSWORD, {"X-Forwarded-For": "198.51.100.4"}) == 303
    assert await console_login(srv, OPERATOR, OPERATOR_PASSWORD, {"X-Forwarded-For": "203.0.113.66"}) == LOCKED
    assert await audited(srv, "console.login-failed") == {"203.0.113.66"}
    assert await audited(srv, "console.login") == {"198.51.100.4"}


@pytest.mark.parametrize("trusted", [(), ("10.0.0.0/8",)], ids=["no trusted proxies", "peer not trusted"])
@pytest_twisted.ensureDeferred
async def test_forwarding_headers_from_anyone_else_are_ignored(server: Any, trusted: tuple[str, ...]) -> None:
    srv = await started(server, trusted)
    forged = {"X-Forwarded-For": "198.51.100.9", "Forwarded": "for=198.51.100.9;proto=https",
              "X-Forwarded-Proto": "https", "Host": "oseo.example.org"}

    with captured(request_event) as events:
        code, capabilities = await http(srv, "GET", "/oseo?service=OS&request=GetCapabilities", forged)
    assert code == 200 and b'"http://oseo.example.org/oseo"' in capabilities
    assert [e["address"] for e in events] == ["127.0.0.1"]

    await admin_add_user(srv, "carol", forged)
    assert await audited(srv, "user.add") == {"127.0.0.1"}

    # A new forged address on every guess does not escape the count: the
    # peer is locked, operator included.
    await fail_until_locked(srv, lambda n: {"X-Forwarded-For": f"198.51.100.{n % 250 + 1}"})
    assert await console_login(srv, OPERATOR, OPERATOR_PASSWORD, {"X-Forwarded-For": "198.51.100.251"}) == LOCKED
    assert await audited(srv, "console.login-failed") == {"127.0.0.1"}
