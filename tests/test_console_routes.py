"""Every console URL, route by route: the console is composed of sub-apps
(orders, users, system, audit: oseod/console/*.py), so this lists the URL
rules they hold together and checks that each answers an operator as the
console always has and refuses anyone else. A route lost in a move fails
here by name."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from tests.console_fakes import HOSTILE
from tests.test_console_http import ADMIN, Site, assert_login_page, site  # noqa: F401 - the fixture

# (methods, rule): the URL rules of the whole console, below /console.
RULES = {
    ("GET", "/"), ("GET", "/events"), ("GET", "/config"), ("GET", "/subscriptions"),
    ("POST", "/subscriptions/timeslot"),
    ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/static/<name>"),
    ("GET", "/orders"), ("GET", "/orders/<order_id>"), ("POST", "/orders/<order_id>/approve"),
    ("POST", "/orders/<order_id>/reject"), ("POST", "/orders/<order_id>/cancel"),
    ("POST", "/orders/<order_id>/retry"), ("GET", "/moderation"), ("POST", "/moderation/approve"),
    ("GET", "/users"), ("POST", "/users"), ("GET", "/users/<name>"), ("POST", "/users/<name>/edit"),
    ("POST", "/users/<name>/disable"), ("POST", "/users/<name>/enable"), ("POST", "/users/<name>/password"),
    ("POST", "/users/<name>/delete"),
    ("GET", "/audit"),
}

PAGES = ["/console/", "/console/orders", "/console/orders/1", "/console/moderation", "/console/users",
         "/console/users/someone", "/console/config", "/console/subscriptions", "/console/audit"]

# A change, its form (beyond the CSRF token) and where its 303 goes back to.
CHANGES: list[tuple[str, dict[str, Any], str]] = [
    ("/console/orders/1/approve", {}, "/console/orders/1"),
    ("/console/orders/1/reject", {"reason": "no"}, "/console/orders/1"),
    ("/console/orders/1/cancel", {}, "/console/orders/1"),
    ("/console/orders/1/retry", {}, "/console/orders/1"),
    ("/console/moderation/approve", {"order": ["1", "3"]}, "/console/moderation"),
    ("/console/users", {"name": "bob", "password": "bob-password-1", "password2": "bob-password-1"},
     "/console/users"),
    ("/console/users/bob/edit", {"group": "g"}, "/console/users/bob"),
    ("/console/users/bob/disable", {}, "/console/users/bob"),
    ("/console/users/bob/enable", {}, "/console/users/bob"),
    ("/console/users/bob/password", {"password": "x", "password2": "x"}, "/console/users/bob"),
    ("/console/users/bob/delete", {"confirm": "1"}, "/console/users"),
    ("/console/subscriptions/timeslot", {"collection": "urn:oseod:demo", "timestamp": "2024-01-01T00:00:00Z"},
     "/console/subscriptions"),
]


def test_the_console_holds_every_url_rule(site: Site) -> None:  # noqa: F811
    found = set()
    for part in (site.console, *site.console.sections):
        for rule in part.app.url_map.iter_rules():
            found.add(("POST" if "POST" in (rule.methods or ()) else "GET", rule.rule))
            # The console hands a request to a part by its first segment.
            assert rule.rule.split("/")[1] in part.segments, (type(part).__name__, rule.rule)
    assert found == RULES


@pytest_twisted.ensureDeferred
async def test_every_url_answers_an_operator(site: Site) -> None:  # noqa: F811
    cookie = await site.login()
    for page in PAGES:
        code, headers, body = await site.request("GET", page, cookie)
        assert code == 200 and "Operator login" not in body, page
        assert headers.getRawHeaders("content-security-policy"), page
    code, _, _ = await site.request("GET", "/console/static/console.css", cookie)
    assert code == 200
    for path, form, back in CHANGES:
        csrf = await site.csrf(cookie)
        code, headers, body = await site.request("POST", path, cookie, data={"csrf": csrf, **form})
        assert code == 303 and headers.getRawHeaders("location") == [back], (path, code, body)
    assert [name for name, _ in site.actions.calls if name != "search"] == [
        "approve", "reject", "cancel", "retry", "approve_many", "add_user", "set_user", "set_user", "set_user",
        "set_password", "delete_user", "timeslot"]


@pytest_twisted.ensureDeferred
async def test_every_url_refuses_a_visitor_without_an_operators_session(site: Site) -> None:  # noqa: F811
    code, _, body = await site.request("POST", "/console/login", data={"user": "alice",
                                                                        "password": "alice-password-1"})
    assert code == 403 and "not an operator" in body
    revoked = await site.login()
    csrf = await site.csrf(revoked)
    site.actions.revoked.add(ADMIN)  # demoted since: the session ends at its next request
    for cookie in (revoked, None):
        for page in PAGES:
            code, _, body = await site.request("GET", page, cookie)
            assert code == 200, page
            assert_login_page(body)
        for path, form, _ in CHANGES:
            code, _, body = await site.request("POST", path, cookie, data={"csrf": csrf, **form})
            assert code == 403 and "nothing was changed" in body, path
            assert_login_page(body)
        code, _, body = await site.request("GET", "/console/events", cookie)
        assert code == 403 and body == "log in first\n"
    assert site.actions.calls == []


@pytest_twisted.ensureDeferred
async def test_every_part_of_the_console_answers_a_wrong_path_or_method_alike(site: Site) -> None:  # noqa: F811
    cookie = await site.login()
    for path in ("/console/nowhere", "/console/orders/1/x", "/console/orders/", "/console/moderation/x",
                 "/console/users/a/b/c", "/console/audit/x", "/console/config/x", "/console/events/x",
                 "/console/subscriptions/x", "/console/static/nothing.css", "/console/login/x",
                 "/console//nowhere", "/console//users/a/b/c"):
        code, headers, body = await site.request("GET", path, cookie)
        assert code == 404 and "there is no such page in the console" in body, path
        assert headers.getRawHeaders("x-frame-options") == ["DENY"], path
        assert HOSTILE not in body
    for method, path, allowed in (("GET", "/console/orders/1/approve", "POST"),
                                  ("GET", "/console/moderation/approve", "POST"),
                                  ("GET", "/console/users/bob/edit", "POST"),
                                  ("GET", "/console/subscriptions/timeslot", "POST"),
                                  ("GET", "/console/logout", "POST"),
                                  ("POST", "/console/audit", "GET, HEAD"),
                                  ("POST", "/console/config", "GET, HEAD"),
                                  ("POST", "/console/", "GET, HEAD"),
                                  ("POST", "/console/orders/1", "GET, HEAD")):
        code, headers, body = await site.request(method, path, cookie)
        assert code == 405 and "this page does not take that method" in body, path
        assert sorted(headers.getRawHeaders("allow")[0].split(", ")) == sorted(allowed.split(", ")), path
