"""The operator console over real HTTP (loopback), with the daemon's real
Portal and a real Redis for users, sessions and login counters; the
operator's views are canned (tests/console_fakes.py) so that what a page
shows is known. Time in the console runs on a Clock."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import reactor
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from oseod.auth.checkers import PasswordChain, UserStoreChecker
from oseod.auth.lockout import LockoutPortal, LoginLockout
from oseod.auth.realm import AccountRealm
from oseod.console.app import Console, safe_back
from oseod.console.charts import Bucket, Series, hourly_bars
from oseod.console.gate import SessionLimits
from oseod.core.accounts import AccountService
from oseod.http.site import OseodSite
from oseod.store import keys
from oseod.store.audit import AuditStore
from oseod.store.connection import Redis
from oseod.store.lockouts import LockoutStore
from oseod.store.sessions import SessionStore
from oseod.store.users import UserStore
from tests.console_fakes import HOSTILE, CannedActions
from tests.polling import eventually
from tests.pools import POOLS

ADMIN, ADMIN_PASSWORD = "root", "root-password-1"
PAGES = ["/console/", "/console/orders", "/console/orders?status=Submitted&status=Failed&user=alice&type=PRODUCT_ORDER"
         "&reference=x&from=2024-01-01&to=2024-12-31&sort=oldest", "/console/orders/1", "/console/moderation",
         "/console/users", "/console/users/someone", "/console/users/ldapuser", "/console/config",
         "/console/subscriptions", "/console/audit"]


class Site:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        # The daemon's own portal, as oseod.tap builds it for the Redis checker,
        # its lock-out on the console's clock.
        users = UserStore(redis, clock=reactor)
        self.accounts = AccountService(users, reactor, threads=POOLS)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.audit = AuditStore(redis)
        checker = UserStoreChecker(users, reactor, threads=POOLS)
        portal = LockoutPortal(AccountRealm(users), [PasswordChain([("redis", checker)])],
                               LoginLockout(LockoutStore(redis), self.clock, audit=self.audit))
        self.actions = CannedActions()
        self.console = Console(portal=portal, actions=self.actions, store=SessionStore(redis),
                               clock=self.clock, limits=SessionLimits(idle_seconds=600, max_seconds=3600),
                               live_interval=3.0, public=lambda: "https://ops.example.org/oseo")
        root = Resource()
        root.putChild(b"console", self.console.resource())
        self.port: Any = reactor.listenTCP(0, OseodSite(root, 1 << 20), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def request(self, method: str, path: str, cookie: str | None = None, data: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
        all_headers = dict(headers or {})
        if cookie:
            all_headers["Cookie"] = f"oseod_console={cookie}"
        response = await treq.request(method, self.base + path, data=data, headers=all_headers,
                                      allow_redirects=False, persistent=False)
        body = (await response.content()).decode("utf-8")
        assert response.code < 500 and "Traceback" not in body, body
        return response.code, response.headers, body

    async def login(self, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        code, headers, body = await self.request("POST", "/console/login",
                                                 data={"user": user, "password": password, "next": "/console/"})
        assert code == 303, body
        return cookie_of(headers)

    async def csrf(self, cookie: str, page: str = "/console/orders/1") -> str:
        _, _, body = await self.request("GET", page, cookie)
        found = re.search(r'name="csrf" value="([^"]+)"', body)
        assert found, body
        return found.group(1)


def cookie_of(headers: Any) -> str:
    [line] = headers.getRawHeaders("set-cookie")
    found = re.match(r"oseod_console=([^;]*);", line)
    assert found, line
    return found.group(1)


@pytest_twisted.async_yield_fixture
async def site(redis: Redis) -> Any:
    made = Site(redis)
    await made.accounts.add(ADMIN, ADMIN_PASSWORD, admin=True)
    await made.accounts.add("alice", "alice-password-1")
    yield made
    await made.port.stopListening()


def assert_login_page(body: str) -> None:
    assert 'name="password"' in body and "Operator login" in body
    assert HOSTILE not in body and "&lt;script&gt;" not in body  # no data at all


@pytest_twisted.ensureDeferred
async def test_anonymous_visitors_get_the_login_page_and_never_data(site: Site) -> None:
    for page in PAGES:
        code, headers, body = await site.request("GET", page)
        assert code == 200, page
        assert_login_page(body)
        assert headers.getRawHeaders("cache-control") == ["no-store"]
    code, _, body = await site.request("GET", "/console/orders", "not-a-session")
    assert_login_page(body)
    code, _, body = await site.request("GET", "/console/events")
    assert code == 403 and "data:" not in body
    code, _, body = await site.request("POST", "/console/orders/1/approve", data={"csrf": "x"})
    assert code == 403 and not site.actions.calls


@pytest_twisted.ensureDeferred
async def test_login_sets_a_strict_cookie_and_keeps_only_a_hash_of_the_token(site: Site) -> None:
    code, headers, body = await site.request("POST", "/console/login",
                                             data={"user": ADMIN, "password": ADMIN_PASSWORD, "next": "/console/users"})
    assert code == 303 and headers.getRawHeaders("location") == ["/console/users"]
    [line] = headers.getRawHeaders("set-cookie")
    flags = [part.strip() for part in line.split(";")]
    assert {"Path=/console/", "HttpOnly", "SameSite=Strict"} <= set(flags)
    assert "Secure" not in flags  # plain HTTP here; TLS requests get it
    token = cookie_of(headers)
    stored = await site.redis.conn.keys(f"{keys.PREFIX}console:session:*")
    assert stored == [keys.console_session(hashlib.sha256(token.encode()).hexdigest())]
    assert token not in str(await site.redis.conn.hgetall(stored[0]))
    assert [a[1] for a in site.actions.audit_log] == ["console.login"]
    assert site.actions.audit_log[0][0].via == "console" and site.actions.audit_log[0][0].address == "127.0.0.1"

    code, _, body = await site.request("GET", "/console/users", token)
    assert code == 200 and "Add a user" in body and f">{ADMIN}<" in body


@pytest_twisted.ensureDeferred
async def test_security_headers(site: Site) -> None:
    cookie = await site.login()
    for page in ("/console/", "/console/login", "/console/nowhere"):
        _, headers, _ = await site.request("GET", page, cookie)
        csp = headers.getRawHeaders("content-security-policy")[0]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert headers.getRawHeaders("x-frame-options") == ["DENY"]
        assert headers.getRawHeaders("referrer-policy") == ["same-origin"]
    _, _, body = await site.request("GET", "/console/", cookie)
    assert "<script>" not in body and " on" + "click=" not in body  # no inline script
    code, headers, css = await site.request("GET", "/console/static/console.css")
    assert code == 200 and headers.getRawHeaders("content-type")[0].startswith("text/css") and ".badge" in css
    code, _, _ = await site.request("GET", "/console/static/../app.py")
    assert code == 404


def page_text(body: str, path: str) -> list[str]:
    """The text of the elements at ``path`` (XPath), white space collapsed as a browser shows it."""
    tree = etree.fromstring(body.encode(), etree.HTMLParser())
    return [" ".join("".join(e.itertext()).split()) for e in tree.xpath(path)]


@pytest_twisted.ensureDeferred
async def test_the_status_history_keeps_its_words_apart(site: Site) -> None:
    cookie = await site.login()
    _, _, body = await site.request("GET", "/console/orders/1", cookie)
    # The canned history line: (NOW, "Submitted", info=HOSTILE, by=HOSTILE).
    [line] = page_text(body, "//ol[@class='timeline']/li")
    assert line == f"2023-11-14 22:13:20 Submitted {HOSTILE} by {HOSTILE}"
    assert page_text(body, "//h2[@id='history']") == ["Status history (UTC)"]


@pytest_twisted.ensureDeferred
async def test_every_time_shown_is_utc_and_says_so(site: Site) -> None:
    cookie = await site.login()
    _, _, body = await site.request("GET", "/console/", cookie)
    # The clock stands at 1_700_000_000 (2023-11-14 22:13:20 UTC).
    assert page_text(body, "//*[@id='live-state']") == ["as of 2023-11-14 22:13:20 UTC, updates every few seconds"]
    assert f"ok, 2023-11-14 22:13:20 UTC" in page_text(body, "//td[@data-live]")
    _, events = await _stream(site, cookie)

    async def first() -> bool:
        return b"event: overview\n" in events.data

    await eventually(first, 10, "the first event")
    assert b'"at": "2023-11-14 22:13:20 UTC"' in events.data
    events.transport.stopProducing()  # type: ignore[union-attr]
    # The page's script shows the server's time, never the browser's locale.
    _, _, script = await site.request("GET", "/console/static/console.js")
    assert "data.at" in script and "toLocale" not in script and "new Date" not in script
    _, _, body = await site.request("GET", "/console/orders/1", cookie)
    assert page_text(body, "//th[text()='Created']/following-sibling::td") == ["2023-11-14 22:12:20 UTC"]
    # Every time column's heading says UTC.
    for page in PAGES:
        _, _, body = await site.request("GET", page, cookie)
        tree = etree.fromstring(body.encode(), etree.HTMLParser())
        for cell in tree.xpath("//td[@class='time' and not(ancestor::ol)]"):
            column = len(cell.xpath("preceding-sibling::td | preceding-sibling::th")) + 1
            [heading] = cell.xpath(f"ancestor::table[1]/thead/tr/th[{column}]")
            assert "(UTC)" in heading.text, (page, heading.text)


@pytest_twisted.ensureDeferred
async def test_the_console_has_a_favicon(site: Site) -> None:
    cookie = await site.login()
    for page, session in (("/console/login", None), ("/console/", cookie)):
        _, _, body = await site.request("GET", page, session)
        [href] = etree.fromstring(body.encode(), etree.HTMLParser()).xpath("//link[@rel='icon']/@href")
        # Same origin, so the pages' CSP (default-src 'self') lets the browser load it.
        assert href.startswith("/console/static/favicon.svg?v=")
    code, headers, svg = await site.request("GET", href)
    assert code == 200 and headers.getRawHeaders("content-type") == ["image/svg+xml"]
    assert etree.fromstring(svg.encode()).tag == "{http://www.w3.org/2000/svg}svg"
    assert "script" not in svg
    assert "default-src 'self'" in headers.getRawHeaders("content-security-policy")[0]


@pytest_twisted.ensureDeferred
async def test_wrong_password_and_non_admin_are_refused(site: Site) -> None:
    code, headers, body = await site.request("POST", "/console/login", data={"user": ADMIN, "password": "nope"})
    assert code == 401 and "wrong user name or password" in body and not headers.getRawHeaders("set-cookie")
    code, headers, body = await site.request("POST", "/console/login",
                                             data={"user": "alice", "password": "alice-password-1"})
    assert code == 403 and "this account is not an operator" in body and not headers.getRawHeaders("set-cookie")
    assert await site.redis.conn.keys(f"{keys.PREFIX}console:session:*") == []
    assert [a[1] for a in site.actions.audit_log] == ["console.login-failed", "console.login-refused"]


@pytest_twisted.ensureDeferred
async def test_every_page_renders_for_an_operator_and_escapes_what_clients_chose(site: Site) -> None:
    cookie = await site.login()
    for page in PAGES:
        code, _, body = await site.request("GET", page, cookie)
        assert code == 200, (page, body)
        assert HOSTILE not in body and "<script>alert" not in body, page
        assert "&lt;script&gt;" in body or page.endswith(("/moderation", "ldapuser")), page
        etree.fromstring(body.encode(), etree.HTMLParser(recover=False))  # well-formed enough for lxml's HTML parser
    code, _, body = await site.request("GET", "/console/orders/404", cookie)
    assert code == 404 and "no order 404" in body
    code, _, body = await site.request("GET", "/console/users/ldapuser", cookie)
    assert "read-only" in body and "/ldapuser/password" not in body


@pytest_twisted.ensureDeferred
async def test_logout_ends_the_session(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    code, headers, _ = await site.request("POST", "/console/logout", cookie, data={"csrf": csrf})
    assert code == 303 and headers.getRawHeaders("location") == ["/console/login?bye=1"]
    assert "Max-Age=0" in headers.getRawHeaders("set-cookie")[0]
    _, _, body = await site.request("GET", "/console/", cookie)
    assert_login_page(body)
    assert [a[1] for a in site.actions.audit_log] == ["console.login", "console.logout"]


@pytest_twisted.ensureDeferred
async def test_a_session_ends_after_its_idle_timeout(site: Site) -> None:
    cookie = await site.login()
    site.clock.advance(590)
    code, _, body = await site.request("GET", "/console/", cookie)
    assert "Overview" in body and "Operator login" not in body  # activity: the idle time starts again
    site.clock.advance(590)
    _, _, body = await site.request("GET", "/console/", cookie)
    assert "Operator login" not in body
    site.clock.advance(601)
    _, _, body = await site.request("GET", "/console/", cookie)
    assert_login_page(body)
    assert "console.timeout" in [a[1] for a in site.actions.audit_log]
    assert await site.redis.conn.keys(f"{keys.PREFIX}console:session:*") == []


@pytest_twisted.ensureDeferred
async def test_a_forged_post_is_refused_and_changes_nothing(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    for forged in ({}, {"csrf": "x" * len(csrf)}, {"csrf": [csrf, csrf]}):
        code, _, body = await site.request("POST", "/console/orders/1/approve", cookie, data=forged)
        assert code == 403 and "nothing was changed" in body
    code, _, body = await site.request("POST", "/console/orders/1/approve", cookie, data={"csrf": csrf},
                                       headers={"Origin": "http://evil.example"})
    assert code == 403
    code, _, _ = await site.request("GET", "/console/orders/1/approve", cookie)
    assert code == 405  # changes are POST only
    assert site.actions.calls == []
    assert "console.csrf-refused" in [a[1] for a in site.actions.audit_log]

    # From the public address, through a reverse proxy that sends its own Host: ours.
    code, headers, _ = await site.request("POST", "/console/orders/1/approve", cookie, data={"csrf": csrf},
                                          headers={"Origin": "https://ops.example.org"})
    assert code == 303 and headers.getRawHeaders("location") == ["/console/orders/1"]
    [(name, (who, order_id))] = site.actions.calls
    assert (name, order_id, who.name, who.via, who.address) == ("approve", "1", ADMIN, "console", "127.0.0.1")
    _, _, body = await site.request("GET", "/console/orders/1", cookie)
    assert "order 1 approved" in body  # the flash message, shown once
    _, _, body = await site.request("GET", "/console/orders/1", cookie)
    assert "order 1 approved" not in body


@pytest_twisted.ensureDeferred
async def test_forms_refuse_bad_input_with_a_4xx_or_a_message(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    for query in ("status=Bogus", "from=2024-13-45", "to=yesterday", "sort=sideways", "type=X", "color=red",
                  "reference=" + "x" * 2000, "user=%ff%fe"):
        code, _, body = await site.request("GET", f"/console/orders?{query}", cookie)
        assert code == 400, query
    code, _, body = await site.request("POST", "/console/orders/1/reject", cookie, data={"csrf": csrf, "reason": " "})
    assert code == 303
    _, _, body = await site.request("GET", "/console/orders/1", cookie)
    assert "a rejection needs a reason" in body
    code, _, _ = await site.request("POST", "/console/orders/1/reject", cookie, data={"csrf": csrf, "evil": "1"})
    assert code == 400
    code, _, _ = await site.request("POST", "/console/orders/1/reject", cookie,
                                    data=b"csrf=" + csrf.encode() + b"&reason=%ff",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 400
    code, headers, _ = await site.request("POST", "/console/orders/1/reject", cookie,
                                          data={"csrf": csrf, "reason": "<b>no</b>", "back": "//evil.example/x"})
    assert code == 303 and headers.getRawHeaders("location") == ["/console/orders/1"]
    assert site.actions.calls[-1][0] == "reject" and site.actions.calls[-1][1][2] == "<b>no</b>"
    code, _, _ = await site.request("POST", "/console/users", cookie,
                                    data={"csrf": csrf, "name": "bob", "password": "a", "password2": "b"})
    _, _, body = await site.request("GET", "/console/users", cookie)
    assert "the two passwords differ" in body
    code, headers, _ = await site.request("POST", "/console/moderation/approve", cookie,
                                          data={"csrf": csrf, "order": ["1", "3"], "back": "/console/moderation"})
    assert code == 303 and site.actions.calls[-1] == ("approve_many", (site.actions.calls[-1][1][0], ("1", "3")))
    _, _, body = await site.request("GET", "/console/moderation", cookie)
    assert "approved 2 orders: 1, 3" in body
    code, _, _ = await site.request("POST", "/console/users/x/delete", cookie, data={"csrf": csrf})
    _, _, body = await site.request("GET", "/console/users", cookie)
    assert "tick the box" in body


def test_safe_back_stays_inside_the_console() -> None:
    assert safe_back("/console/orders?x=1", "/d") == "/console/orders?x=1"
    for bad in ("//evil/console/", "https://evil/console/", "/console/\r\nSet-Cookie: x", "/other", "/console//x",
                "/console/\\evil"):
        assert safe_back(bad, "/d") == "/d", bad


@pytest_twisted.ensureDeferred
async def test_lock_out_per_user_name(site: Site) -> None:
    for _ in range(5):
        code, _, _ = await site.request("POST", "/console/login", data={"user": ADMIN, "password": "wrong"})
        assert code == 401
    code, headers, body = await site.request("POST", "/console/login",
                                             data={"user": ADMIN, "password": ADMIN_PASSWORD})
    assert code == 429 and "too many failed logins: this user name is locked out; try again in 15 minutes" in body
    assert headers.getRawHeaders("retry-after") == ["900"]
    assert not headers.getRawHeaders("set-cookie")
    actions = [a[1] for a in site.actions.audit_log]
    assert actions.count("console.login-failed") == 5 and actions[-1] == "console.login-locked"
    [lockout] = [r for r in await site.audit.page(10) if r.action == "login.lockout"]
    assert (lockout.actor, lockout.via, lockout.address, lockout.target) == (ADMIN, "console", "127.0.0.1", ADMIN)
    # Another name from the same address is still let in (5 < 20 for the address).
    await site.accounts.add("other", "other-password-1", admin=True)
    await site.login("other", "other-password-1")
    # The lock-out ends with its window, on the console's clock.
    site.clock.advance(15 * 60 - 1)
    code, _, body = await site.request("POST", "/console/login", data={"user": ADMIN, "password": ADMIN_PASSWORD})
    assert code == 429 and "try again in 1 minute" in body
    site.clock.advance(1)
    await site.login()


@pytest_twisted.ensureDeferred
async def test_lock_out_per_address(site: Site) -> None:
    for n in range(20):
        code, _, _ = await site.request("POST", "/console/login", data={"user": f"guess{n}", "password": "wrong"})
        assert code == 401
    code, _, body = await site.request("POST", "/console/login", data={"user": ADMIN, "password": ADMIN_PASSWORD})
    assert code == 429 and "too many failed logins" in body


class _Events(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost = reason


async def _stream(site: Site, cookie: str) -> tuple[Any, _Events]:
    response = await treq.get(site.base + "/console/events", headers={"Cookie": f"oseod_console={cookie}"},
                              persistent=False, unbuffered=True)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/event-stream")
    events = _Events()
    response.deliverBody(events)
    return response, events


@pytest_twisted.ensureDeferred
async def test_the_event_stream_sends_the_overview_every_few_seconds_and_stops(site: Site) -> None:
    cookie = await site.login()
    response, events = await _stream(site, cookie)

    async def count(n: int) -> bool:
        return events.data.count(b"event: overview\n") >= n

    await eventually(lambda: count(1), 10, "the first event")
    assert b'"orders.Submitted": "2"' in events.data and b"recent-orders" not in events.data
    assert b"&lt;script&gt;" in events.data  # the recent orders' rows, escaped
    site.clock.advance(3)
    await eventually(lambda: count(2), 10, "the second event")
    assert len(site.clock.getDelayedCalls()) == 1
    # The client goes away: the loop stops.
    events.transport.stopProducing()  # type: ignore[union-attr]

    async def stopped() -> bool:
        return not site.clock.getDelayedCalls()

    await eventually(stopped, 10, "the event loop to stop")

    # Logging out ends a stream too.
    response, events = await _stream(site, cookie)
    await eventually(lambda: count(1), 10, "the first event")
    csrf = await site.csrf(cookie)
    await site.request("POST", "/console/logout", cookie, data={"csrf": csrf})
    site.clock.advance(3)

    async def ended() -> bool:
        return events.lost is not None

    await eventually(ended, 10, "the stream to end")
    assert events.data.endswith(b"event: end\ndata: {}\n\n")
    assert not site.clock.getDelayedCalls()

    # So does the user's losing the admin flag while watching.
    cookie = await site.login()
    response, events = await _stream(site, cookie)
    await eventually(lambda: count(1), 10, "the first event")
    site.actions.revoked.add(ADMIN)
    site.clock.advance(3)
    await eventually(ended, 10, "the stream of a demoted operator to end")
    assert events.data.endswith(b"event: end\ndata: {}\n\n")


@pytest_twisted.ensureDeferred
async def test_open_consoles_share_one_overview_per_tick(site: Site) -> None:
    cookie = await site.login()
    streams = [(await _stream(site, cookie))[1] for _ in range(3)]

    async def events(n: int) -> bool:
        return all(s.data.count(b"event: overview\n") >= n for s in streams)

    await eventually(lambda: events(1), 10, "the first events")
    assert site.actions.overviews == 1
    site.clock.advance(3)
    await eventually(lambda: events(2), 10, "the second events")
    assert site.actions.overviews == 2
    for stream in streams:
        stream.transport.stopProducing()  # type: ignore[union-attr]

    async def stopped() -> bool:
        return not site.clock.getDelayedCalls()

    await eventually(stopped, 10, "the event loops to stop")


def test_charts_are_well_formed_accessible_svg() -> None:
    svg = hourly_bars("Items <per> hour", (Series("completed", "#1a7f37"), Series("failed", "#cf222e")),
                      [Bucket(1_700_000_000 + 3600 * n, (n, n % 3)) for n in range(24)])
    root = etree.fromstring(svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("role") == "img"
    assert root.get("aria-label") == "Items <per> hour: 276 completed, 24 failed over the last 24 hours"
    bars = root.findall("{http://www.w3.org/2000/svg}rect[@class='bar']")
    assert len(bars) == 48
    assert all(bar.findtext("{http://www.w3.org/2000/svg}title") for bar in bars)
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert max(heights) == pytest.approx((200 - 10 - 34) * 23 / 50, abs=0.1)  # the top of the axis: 50
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"0", "25", "50"} <= set(labels)
    empty = etree.fromstring(hourly_bars("Nothing", (Series("downloads", "#0969da"),), []).encode())
    assert empty.get("aria-label") == "Nothing: 0 downloads over the last 0 hours"


@pytest_twisted.ensureDeferred
async def test_the_overview_embeds_its_charts(site: Site) -> None:
    cookie = await site.login()
    _, _, body = await site.request("GET", "/console/", cookie)
    charts = re.findall(r"<svg .*?</svg>", body, re.S)
    assert len(charts) == 2
    for chart in charts:
        assert etree.fromstring(chart.encode()).get("role") == "img"


@pytest_twisted.ensureDeferred
async def test_the_daemon_serves_the_console_with_its_real_actions(redis: Redis) -> None:
    """The console as oseod.tap wires it, behind the HTTP frontend: the
    bare /console redirects, every page renders over a real order."""
    from oseod.config import parse_config
    from oseod.auth.account import Account
    from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderType
    from tests.parts import make_parts, started

    parts = await started(make_parts(parse_config({"orders": {"moderation": "manual"},
                                                   "console": {"idle_minutes": 5, "max_failures_per_user": 3},
                                                   "server": {"redis": "unix:///run/r.sock?password=s3cr3t-pw"}}),
                                     redis))
    gate = parts.frontend._console.gate  # noqa: SLF001 - the [console] settings reach it
    # [console] max_failures_per_user, deprecated, still sets the lock-out's limit ([auth] does not).
    assert gate.limits.idle_seconds == 300 and parts.portal.lockout.limits.per_user == 3  # type: ignore[attr-defined]
    await AccountService(parts.users, reactor, threads=POOLS).add(ADMIN, ADMIN_PASSWORD, admin=True)
    await AccountService(parts.users, reactor, threads=POOLS).add("alice", "alice-password-1")
    order = await parts.ordering.submit(Account("alice"), OrderSpec(
        order_type=OrderType.PRODUCT_ORDER, reference=HOSTILE[:30],
        items=(ItemSpec(item_id="i1", product_id="p1", collection_id="urn:oseod:demo"),)), Notification())
    port: Any = reactor.listenTCP(0, OseodSite(parts.frontend.resource(), 1 << 20), interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"

    async def fetch(method: str, path: str, cookie: str = "", data: Any = None) -> tuple[int, Any, str]:
        response = await treq.request(method, base + path, data=data, allow_redirects=False, persistent=False,
                                      headers={"Cookie": f"oseod_console={cookie}"} if cookie else {})
        body = (await response.content()).decode("utf-8")
        assert response.code < 500 and "internal error" not in body, (path, body)
        return response.code, response.headers, body

    try:
        code, headers, _ = await fetch("GET", "/console")
        assert code == 301 and headers.getRawHeaders("location") == ["/console/"]
        # Browsers ask for /favicon.ico on their own: they are sent to the console's icon.
        code, headers, _ = await fetch("GET", "/favicon.ico")
        assert code == 301 and headers.getRawHeaders("location") == ["/console/static/favicon.svg"]
        code, headers, _ = await fetch("GET", "/console/static/favicon.svg")
        assert code == 200 and headers.getRawHeaders("content-type") == ["image/svg+xml"]
        _, _, body = await fetch("GET", "/console/")
        assert_login_page(body)
        code, headers, _ = await fetch("POST", "/console/login", data={"user": ADMIN, "password": ADMIN_PASSWORD})
        assert code == 303
        cookie = cookie_of(headers)
        for page in ("/console/", "/console/orders", f"/console/orders/{order.order_id}", "/console/moderation",
                     "/console/users", f"/console/users/{ADMIN}", "/console/config", "/console/subscriptions",
                     "/console/audit", "/console/orders?reference=%3Cscript%3E&status=Submitted"):
            code, _, body = await fetch("GET", page, cookie)
            assert code == 200 and HOSTILE[:30] not in body, page
        _, _, body = await fetch("GET", "/console/moderation", cookie)
        assert f"/console/orders/{order.order_id}/approve" in body and "&lt;script&gt;" in body
        _, _, body = await fetch("GET", "/console/audit", cookie)
        assert "console.login" in body
        _, _, body = await fetch("GET", "/console/config", cookie)
        assert "s3cr3t-pw" not in body and "password=••••" in body
        # Demoted while logged in (by oseoctl, another operator...): out at the next page.
        await AccountService(parts.users, reactor, threads=POOLS).change(ADMIN, admin=False)
        _, _, body = await fetch("GET", "/console/orders", cookie)
        assert_login_page(body)
        await AccountService(parts.users, reactor, threads=POOLS).change(ADMIN, admin=True)
        _, _, body = await fetch("GET", "/console/orders", cookie)
        assert_login_page(body)  # the session ended for good
        assert [e.action for e in await parts.actions.audit(limit=5)][:1] == ["console.revoked"]
    finally:
        await port.stopListening()
        await parts.engine.stop()


@pytest.mark.parametrize("tls, trusted, proto, secure", [
    (True, (), None, True), (False, (), None, False),
    # Over a TLS-terminating proxy: believed from a trusted one only.
    (False, ("127.0.0.1/32",), b"https", True), (False, (), b"https", False),
    (False, ("10.0.0.0/8",), b"https", False), (False, ("127.0.0.1/32",), b"http", False),
])
def test_the_cookie_is_secure_when_the_request_came_over_tls(tls: bool, trusted: tuple[str, ...],
                                                             proto: bytes | None, secure: bool) -> None:
    from twisted.internet.address import IPv4Address
    from twisted.web.test.requesthelper import DummyRequest

    from oseod.console.gate import Gate
    from oseod.forwarded import ClientAddresses

    from twisted.cred.portal import Portal

    gate = Gate(portal=Portal(AccountRealm(None)), store=None, actions=None,  # type: ignore[arg-type]
                clock=None, clients=ClientAddresses(trusted))
    request = DummyRequest([b""])
    request.client = IPv4Address("TCP", "127.0.0.1", 5555)
    request.isSecure = lambda: tls  # type: ignore[method-assign]
    if proto is not None:
        request.requestHeaders.addRawHeader(b"X-Forwarded-Proto", proto)
    gate.set_cookie(request, "token")
    [line] = request.responseHeaders.getRawHeaders(b"set-cookie")
    assert line.endswith(b"; Secure") is secure, line


@pytest_twisted.ensureDeferred
async def test_odd_paths_and_cookies_get_a_4xx(site: Site) -> None:
    cookie = await site.login()
    for path in ("/console/orders/%ff%fe", "/console/orders/" + "9" * 300, "/console/orders/%00", "/console/nope/x",
                 "/console/users/" + "u" * 300):
        code, _, body = await site.request("GET", path, cookie)
        assert 400 <= code < 500, (path, code)
    _, _, body = await site.request("GET", "/console/", "x" * 5000)
    assert_login_page(body)
    code, _, _ = await site.request("DELETE", "/console/users", cookie)
    assert code == 405
