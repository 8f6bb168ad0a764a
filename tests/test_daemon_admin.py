"""``twistd -n oseod --admin ENDPOINT``: the console, the admin API and
/metrics on a listener of their own, the clients' listener refusing them;
behind a trusted reverse proxy, the console counts and audits the client the
proxy forwards for. Without --admin, one listener serves both, as before."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.daemon import Daemon

pytestmark = pytest.mark.slow

OPERATOR, OPERATOR_PASSWORD = "olga", "olga-password-1"
OPERATOR_PATHS = ("/console/", "/console", "/console/login", "/console/static/console.css", "/admin/api/users",
                  "/admin/api/", "/metrics")
MAX_TRIES = 200


def call(base: str, method: str, path: str, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    # Redirects are answers here, not something to follow.
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def console_login(base: str, user: str, password: str, client: str, origin: str | None = None) -> int:
    """A browser's login form, sent through a proxy for ``client``; from a
    page at ``origin`` (default: the console's own address)."""
    form = urllib.parse.urlencode({"user": user, "password": password, "next": "/console/"}).encode()
    return call(base, "POST", "/console/login", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                        "X-Forwarded-For": client, "Origin": origin or base})[0]


def test_admin_listener_apart_and_behind_a_trusted_proxy(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text('[server]\ntrusted_proxies = ["127.0.0.1/32"]\n')
    daemon = Daemon(tmp_path / "data", "--config", str(config), "--admin", "tcp:0:interface=127.0.0.1")
    daemons.append(daemon.start())
    endpoints = daemon.endpoints
    assert set(endpoints) == {"http", "ftp", "admin"}
    admin, main = endpoints["admin"], endpoints["http"]
    assert admin.startswith("http://127.0.0.1:") and admin != main
    bearer = {"Authorization": "Bearer " + (daemon.data_dir / "admin.token").read_text().strip()}

    # The clients' listener knows nothing of the operators' side...
    for path in OPERATOR_PATHS:
        assert call(main, "GET", path, headers=bearer) == (404, b"not found\n"), path
    assert call(main, "POST", "/console/login", b"user=a&password=b")[0] == 404
    assert call(main, "GET", "/health")[0] == 200
    assert call(main, "GET", "/oseo?service=OS&request=GetCapabilities")[0] == 200
    # ... and the operators' listener serves only that side (and /health).
    code, body = call(admin, "GET", "/console/")
    assert code == 200 and b"Operator login" in body
    assert call(admin, "GET", "/console")[0] == 301
    code, body = call(admin, "GET", "/metrics")
    assert code == 200 and b"oseod_redis_up 1" in body
    assert call(admin, "GET", "/health")[0] == 200
    assert call(admin, "GET", "/admin/api/users")[0] == 401
    assert call(admin, "GET", "/admin/api/users", headers=bearer)[0] == 200
    for path in ("/oseo?service=OS&request=GetCapabilities", "/results/1/a/a.dat", "/"):
        assert call(admin, "GET", path) == (404, b"not found\n"), path

    # oseoctl finds the admin API through endpoints.json.
    added = daemon.ctl("user", "add", OPERATOR, "--admin", "--password-stdin", stdin=OPERATOR_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = daemon.ctl("user", "list")
    assert listed.returncode == 0 and OPERATOR in listed.stdout

    # Behind the proxy, one address's guesses lock that address, not the
    # operators coming through the same proxy.
    for n in range(1, MAX_TRIES + 1):
        code = console_login(admin, f"guess{n}", "wrong-password", "203.0.113.66")
        if code == 429:
            break
        assert code == 401
    else:
        raise AssertionError(f"no lock-out after {MAX_TRIES} failed logins")
    # A form from the public side's pages is not one of the console's.
    assert console_login(admin, OPERATOR, OPERATOR_PASSWORD, "198.51.100.4", origin=main) == 403
    assert console_login(admin, OPERATOR, OPERATOR_PASSWORD, "198.51.100.4") == 303
    assert console_login(admin, OPERATOR, OPERATOR_PASSWORD, "203.0.113.66") == 429
    audit = daemon.ctl("audit", "--json", "--limit", "500")
    assert audit.returncode == 0, audit.stderr
    entries = json.loads(audit.stdout)
    entries = entries["entries"] if isinstance(entries, dict) else entries
    addresses = {(e["action"], e["address"]) for e in entries if e["action"].startswith("console.")}
    assert ("console.login", "198.51.100.4") in addresses and ("console.login-failed", "203.0.113.66") in addresses
    assert not {address for _, address in addresses} & {"127.0.0.1", ""}
    # The daemon's own request lines name the forwarded client too.
    code, _ = call(main, "GET", "/oseo?service=OS&request=GetCapabilities", headers={"X-Forwarded-For": "192.0.2.5"})
    assert code == 200
    daemon.stop()
    assert "GetCapabilities ok user=- from=192.0.2.5" in daemon.log()


def test_without_admin_one_listener_serves_both_and_ignores_forwarding(tmp_path: Path,
                                                                      daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path / "data")
    daemons.append(daemon.start())
    assert set(daemon.endpoints) == {"http", "ftp"}
    main = daemon.http
    bearer = {"Authorization": "Bearer " + (daemon.data_dir / "admin.token").read_text().strip()}
    assert call(main, "GET", "/console/")[0] == 200
    assert call(main, "GET", "/metrics")[0] == 200
    assert call(main, "GET", "/admin/api/users", headers=bearer)[0] == 200
    assert call(main, "GET", "/oseo?service=OS&request=GetCapabilities")[0] == 200
    added = daemon.ctl("user", "add", OPERATOR, "--admin", "--password-stdin", stdin=OPERATOR_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    # No trusted proxy: the header is the client's word, and ignored.
    assert console_login(main, "nobody", "wrong-password", "198.51.100.9") == 401
    entries = json.loads(daemon.ctl("audit", "--json").stdout)
    entries = entries["entries"] if isinstance(entries, dict) else entries
    assert {e["address"] for e in entries if e["action"] == "console.login-failed"} == {"127.0.0.1"}
    assert console_login(main, OPERATOR, OPERATOR_PASSWORD, "198.51.100.9") == 303
