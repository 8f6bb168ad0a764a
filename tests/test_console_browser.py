"""The operator console as a person uses it: Selenium drives Debian's
headless Chromium through a real daemon (``twistd -n oseod``, manual
moderation) started by this module. A screenshot of every page lands in the
module's temporary directory (printed at the end, kept by pytest)."""

from __future__ import annotations

import ftplib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oseod.oseo.namespaces import OSEO
from tests.daemon import Daemon
from tests.oseo_schema import requires_schemas
from tests.test_daemon import oseo_call
from tests.test_http_ordering import get_status, submit

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    requires_schemas,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT, ROOT_PASSWORD = "root", "root-password-1"
CLIENT = "gina"  # tests.test_daemon.oseo_call's convention: password "gina-password"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("console-screenshots")
    yield directory
    # OSEOD_SCREENSHOTS: a directory to copy them to, for a person to look at after the run.
    target = os.environ.get("OSEOD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in directory.glob("*.png"):
            shutil.copy(shot, Path(target) / shot.name)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("console-daemon")
    config = base / "oseod.toml"
    config.write_text('[orders]\nmoderation = "manual"\n')
    started = Daemon(base / "data", "--config", str(config))
    try:
        started.start()
        for name, password, extra in ((ROOT, ROOT_PASSWORD, ["--admin"]), (CLIENT, f"{CLIENT}-password", []),
                                      ("locky", "locky-password-1", ["--admin"])):
            added = started.ctl("user", "add", name, "--password-stdin", *extra, stdin=password + "\n")
            assert added.returncode == 0, added.stderr
        yield started
    finally:
        started.cleanup()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _replaced(error: WebDriverException) -> bool:
    """Whether ``error`` says the page was replaced under the driver."""
    return isinstance(error, (StaleElementReferenceException, NoSuchElementException)) or \
        "does not belong to the document" in str(error)


def _body_text(driver: Any) -> str | None:
    """The page's text; None while the page is being replaced."""
    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except WebDriverException as e:
        if _replaced(e):
            return None
        raise


class Console:
    """The browser pointed at the daemon's console, with a camera."""

    def __init__(self, driver: Any, daemon: Daemon, shots: Path) -> None:
        self.driver = driver
        self.daemon = daemon
        self.shots = shots

    def open(self, path: str) -> None:
        self.driver.get(self.daemon.http + path)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def text(self) -> str:
        # The page may be between two documents (a form's answer arriving): read it again.
        found: list[str] = WebDriverWait(self.driver, 20).until(
            lambda d: [text] if (text := _body_text(d)) is not None else False)
        return found[0]

    def wait_text(self, wanted: str, timeout: float = 20) -> None:
        try:
            WebDriverWait(self.driver, timeout).until(lambda d: wanted in (_body_text(d) or ""))
        except TimeoutException:
            raise AssertionError(f"{wanted!r} never showed; the page says:\n{self.text()}") from None

    def click(self, selector: str, timeout: float = 20) -> None:
        """Find the element and click it; again when the page was replaced
        between the two (a navigation ending, a live update)."""
        def clicked(driver: Any) -> bool:
            try:
                driver.find_element(By.CSS_SELECTOR, selector).click()
                return True
            except WebDriverException as e:
                if _replaced(e):
                    return False
                raise

        try:
            WebDriverWait(self.driver, timeout).until(clicked)
        except TimeoutException:
            raise AssertionError(f"could not click {selector!r}; the page says:\n{self.text()}") from None

    def login(self, user: str, password: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/console/login")
        self.driver.find_element(By.ID, "user").send_keys(user)
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.click("form button[type=submit]")

    def submit_order(self, reference: str) -> str:
        ack = oseo_call(self.daemon, CLIENT, submit(f"{reference}-item", reference=reference))
        order_id = ack.findtext(f"{{{OSEO}}}orderId")
        assert order_id, ack
        return str(order_id)

    def status_of(self, order_id: str) -> tuple[str | None, str | None]:
        info = oseo_call(self.daemon, CLIENT, get_status(order_id)).find(f".//{{{OSEO}}}orderStatusInfo")
        assert info is not None
        return info.findtext(f"{{{OSEO}}}status"), info.findtext(f"{{{OSEO}}}additionalStatusInfo")

    def as_operator(self) -> None:
        """Logged in as the operator (again, when a test before logged out)."""
        self.open("/console/")
        if "Operator login" in self.text():
            self.login(ROOT, ROOT_PASSWORD)
            self.wait_text("Recently updated orders")

    def row_of(self, text: str) -> Any:
        for row in self.driver.find_elements(By.CSS_SELECTOR, "tbody tr"):
            if text in row.text:
                return row
        raise AssertionError(f"no table row with {text!r}:\n{self.text()}")


@pytest.fixture
def console(browser: Any, daemon: Daemon, shots: Path) -> Console:
    return Console(browser, daemon, shots)


def test_a_non_admin_is_refused(console: Console) -> None:
    console.open("/console/orders")
    assert "Operator login" in console.text()
    console.shot("01-login")
    console.login(CLIENT, f"{CLIENT}-password")
    console.wait_text("this account is not an operator")
    console.shot("02-not-an-operator")
    console.open("/console/")
    assert "Operator login" in console.text() and "Recently updated" not in console.text()


def test_an_operator_sees_a_submitted_order_appear_live(console: Console) -> None:
    console.login(ROOT, ROOT_PASSWORD)
    console.wait_text("Recently updated orders")
    assert console.driver.current_url.endswith("/console/")
    console.driver.execute_script("window.stillTheSamePage = true;")
    console.wait_text("live")
    order_id = console.submit_order("live-order")
    console.wait_text("live-order")  # by the event stream: no reload
    assert console.driver.execute_script("return window.stillTheSamePage === true;")
    assert order_id in console.row_of("live-order").text
    console.shot("03-overview")


def test_approve_one_order_and_reject_another_with_a_reason(console: Console) -> None:
    console.as_operator()
    approved, rejected = console.submit_order("approve-me"), console.submit_order("reject-me")
    console.open("/console/moderation")
    console.shot("04-moderation")
    console.row_of("approve-me").find_element(By.CSS_SELECTOR, "button.good").click()
    console.wait_text(f"order {approved} approved")
    row = console.row_of("reject-me")
    row.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("quota exceeded")
    row.find_element(By.CSS_SELECTOR, "button.bad").click()
    console.wait_text(f"order {rejected} rejected: quota exceeded")
    console.shot("05-moderation-after")
    status, info = console.status_of(rejected)
    assert status == "Cancelled" and "quota exceeded" in (info or "")
    assert console.status_of(approved)[0] in ("Accepted", "InProduction", "Completed")

    console.open(f"/console/orders/{rejected}")
    console.wait_text("quota exceeded")
    console.shot("06-order-rejected")


def test_find_an_order_by_reference(console: Console) -> None:
    console.as_operator()
    order_id = console.submit_order("find-me-42")
    console.open("/console/orders")
    console.driver.find_element(By.ID, "f-reference").send_keys("find-me-42")
    console.click("form.search button[type=submit]")
    console.wait_text(order_id)
    rows = console.driver.find_elements(By.CSS_SELECTOR, "table.orders tbody tr")
    assert len(rows) == 1 and "find-me-42" in rows[0].text
    console.shot("07-orders-search")
    rows[0].find_element(By.LINK_TEXT, order_id).click()
    console.wait_text("Status history")
    console.shot("08-order")


def test_a_user_added_in_the_console_logs_in_over_ftp(console: Console) -> None:
    console.as_operator()
    console.open("/console/users")
    find = console.driver.find_element
    find(By.ID, "new-name").send_keys("ftpbob")
    find(By.ID, "new-password").send_keys("ftpbob-password-1")
    find(By.ID, "new-password2").send_keys("ftpbob-password-1")
    find(By.ID, "new-email").send_keys("bob@example.org")
    console.click("form.stacked button[type=submit]")
    console.wait_text("user ftpbob added")
    console.shot("09-users")
    client = console.daemon.ftp()
    try:
        assert client.login("ftpbob", "ftpbob-password-1").startswith("230")
    finally:
        client.close()
    with pytest.raises(ftplib.error_perm):
        refused = console.daemon.ftp()
        try:
            refused.login("ftpbob", "wrong")
        finally:
            refused.close()
    console.open("/console/users/ftpbob")
    console.wait_text("Reset the password")
    console.shot("10-user")


def test_every_other_page_renders(console: Console) -> None:
    console.as_operator()
    for name, path, heading in (("11-subscriptions", "/console/subscriptions", "Serve a timeslot"),
                                ("12-config", "/console/config", "Configuration"),
                                ("13-audit", "/console/audit", "Audit log")):
        console.open(path)
        console.wait_text(heading)
        assert "internal error" not in console.text() and "not available" not in console.text()
        console.shot(name)
    assert "console.login" in console.text() and "order.approve" in console.text()


def test_a_forged_post_is_refused(console: Console) -> None:
    console.as_operator()
    order_id = console.submit_order("forged")
    console.open("/console/moderation")
    console.row_of("forged")
    # What a page from elsewhere would send: the form without the right token.
    console.driver.execute_script(
        "for (const f of document.querySelectorAll('input[name=csrf]')) { f.value = 'forged-token'; }")
    console.row_of("forged").find_element(By.CSS_SELECTOR, "button.good").click()
    console.wait_text("stale or forged")
    console.shot("14-csrf-refused")
    assert console.status_of(order_id)[0] == "Submitted"


def test_lock_out_after_repeated_failed_logins(console: Console) -> None:
    for _ in range(5):
        console.login("locky", "not-the-password")
        console.wait_text("wrong user name or password")
    console.login("locky", "locky-password-1")
    console.wait_text("too many failed logins: this user name is locked out; try again in 15 minutes")
    console.shot("15-locked-out")
    assert "Recently updated" not in console.text()


def test_logout(console: Console) -> None:
    console.login(ROOT, ROOT_PASSWORD)
    console.wait_text("Recently updated orders")
    console.click("form.logout button")
    console.wait_text("you have logged out")
    console.open("/console/")
    assert "Operator login" in console.text()
