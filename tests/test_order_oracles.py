"""What an order id gives away, against a real daemon: another user's order
and one that does not exist get the same answer over SOAP (schema-valid,
byte for byte apart from the id), HTTP downloads and FTP; ids are random;
and odd but legal itemIds make result URLs that real clients download."""

from __future__ import annotations

import ftplib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from oseod.jobs.dummy import content
from oseod.oseo.namespaces import OSEO
from oseod.store.orderids import ORDER_ID
from tests.daemon import Daemon
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import wait_for
from tests.test_http_ordering import cancel, describe, envelope, get_status, submit, token

pytestmark = [pytest.mark.slow, requires_schemas]

ODD = "a b%c?d#é🛰+;=&x"  # legal in an itemId, and every one of them needs encoding in a URL


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = Daemon(tmp_path / "data")
    try:
        started.start()
        for user in ("jane", "kurt"):
            assert started.ctl("user", "add", user, "--password-stdin", stdin=f"{user}-password\n").returncode == 0
        yield started
    finally:
        started.cleanup()


def soap(daemon: Daemon, user: str, payload: str) -> tuple[int, bytes]:
    status, _, body = daemon.request("POST", "/oseo", envelope(payload, token(user, f"{user}-password")),
                                     {"Content-Type": "application/soap+xml"})
    assert_valid(body)
    return status, body


def curl(url: str, user: str, *options: str) -> tuple[int, bytes]:
    """``url`` fetched by curl as ``user``: its exit status (0, or 78 for
    an FTP file that is not there; 22 with --fail over HTTP) and the body."""
    done = subprocess.run(["curl", "--silent", "--show-error", "--user", f"{user}:{user}-password", *options, url],
                          capture_output=True, timeout=60, check=False)
    return done.returncode, done.stdout


def ftp_reply(daemon: Daemon, user: str, command: str) -> str:
    with daemon.ftp() as client:
        client.login(user, f"{user}-password")
        try:
            return client.sendcmd(command)
        except ftplib.Error as e:
            return str(e)


def test_another_users_order_and_none_at_all_are_answered_alike(daemon: Daemon) -> None:
    status, body = soap(daemon, "jane", submit("j1"))
    ack = assert_valid(body)
    order_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert status == 200 and order_id and ORDER_ID.match(order_id) and not order_id.isdigit()
    second = assert_valid(soap(daemon, "jane", submit("j2"))[1]).findtext(f"{{{OSEO}}}orderId")
    assert second and second != order_id and not second.isdigit()
    wait_for(lambda: len(list(assert_valid(soap(daemon, "jane", describe(order_id))[1]).iter(f"{{{OSEO}}}URL"))) == 1,
             30, "the result")
    missing = "k" * len(order_id)  # of the same form: an id nobody has
    assert soap(daemon, "jane", get_status(missing))[0] == 400

    # SOAP: the same status and the same bytes, but for the id.
    for payload in (get_status, describe, cancel):
        theirs, none = soap(daemon, "kurt", payload(order_id)), soap(daemon, "kurt", payload(missing))
        assert theirs[0] == none[0] == 400
        assert theirs[1].replace(order_id.encode(), b"ID") == none[1].replace(missing.encode(), b"ID"), payload
        assert b"InvalidOrderIdentifier" in theirs[1] and b'locator="orderId"' in theirs[1]
    assert soap(daemon, "jane", get_status(order_id))[0] == 200  # and Cancel by kurt changed nothing
    assert b">Cancelled<" not in soap(daemon, "jane", get_status(order_id))[1]

    # HTTP downloads: one 404 and one line for both.
    for path in ("/results/{}/j1/j1-product.dat", "/results/{}/j1/", "/results/{}/{}-0.zip"):
        theirs = daemon.get(path.format(order_id, order_id), {"Authorization": _basic("kurt")})
        none = daemon.get(path.format(missing, missing), {"Authorization": _basic("kurt")})
        assert theirs[0] == none[0] == 404, path
        assert theirs[2] == none[2], path

    # FTP: the same replies, but for the id.
    for command in ("CWD /{}", "CWD /{}/j1", "SIZE /{}/j1/j1-product.dat", "MDTM /{}/j1/j1-product.dat"):
        theirs = ftp_reply(daemon, "kurt", command.format(order_id))
        none = ftp_reply(daemon, "kurt", command.format(missing))
        assert theirs.startswith("550") and theirs.replace(order_id, "ID") == none.replace(missing, "ID"), command


def _basic(user: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()


def test_odd_item_ids_are_downloaded_over_http_and_ftp_by_real_clients(daemon: Daemon) -> None:
    order = submit(escape(ODD), "plain")
    over_http = order.replace("<protocol>ftp</protocol>", "<protocol>http</protocol>")
    ids = [assert_valid(soap(daemon, "jane", o)[1]).findtext(f"{{{OSEO}}}orderId") for o in (order, over_http)]

    def urls(order_id: str | None) -> list[str]:
        found = assert_valid(soap(daemon, "jane", describe(order_id or ""))[1]).iter(f"{{{OSEO}}}URL")
        return sorted(u.text or "" for u in found)

    wait_for(lambda: all(len(urls(i)) == 2 for i in ids), 30, "the results")
    ftp_urls, http_urls = urls(ids[0]), urls(ids[1])
    for url in ftp_urls + http_urls:
        assert "/./" not in url and "/../" not in url and "#" not in url and "?" not in url, url
    # The item's file, as DescribeResultAccess gives it, and its directory.
    (odd_ftp,) = [u for u in ftp_urls if "plain" not in u]
    (odd_http,) = [u for u in http_urls if "plain" not in u]
    assert unquote(urlsplit(odd_http).path).split("/")[3] == ODD
    assert unquote(urlsplit(odd_ftp).path).split("/")[2] == ODD
    status, body = curl(odd_http, "jane", "--fail")
    assert (status, body) == (0, content(ODD, 1024))
    directory, name = odd_http.rsplit("/", 1)
    status, page = curl(directory + "/", "jane", "--fail")
    assert status == 0 and f'href="{name}"'.encode() in page, page
    assert curl(odd_http, "kurt", "--fail")[0] == 22  # another user: 404
    # FTP: curl decodes the URL's segments; it lists the directory, then fetches the file.
    status, listing = curl(odd_ftp.rsplit("/", 1)[0] + "/", "jane", "--list-only")
    assert status == 0 and listing.split() == [unquote(name).encode()], listing
    status, body = curl(odd_ftp, "jane")
    assert (status, body) == (0, content(ODD, 1024))
    # and ftplib, with the path as the URL names it
    with daemon.ftp() as client:
        client.encoding = "utf-8"
        client.login("jane", "jane-password")
        chunks: list[bytes] = []
        client.retrbinary(f"RETR {unquote(urlsplit(odd_ftp).path)}", chunks.append)
        assert b"".join(chunks) == content(ODD, 1024)


def _fault(answer: Any) -> tuple[str | None, str | None, str]:
    from oseod.oseo.namespaces import OWS

    exception = answer.find(f".//{{{OWS}}}Exception")
    return exception.get("exceptionCode"), exception.get("locator"), exception.findtext(f"{{{OWS}}}ExceptionText")


REFUSED_ITEM_IDS = [(".", '"."'), ("..", '".."'), ("a/b", '"a/b"'), ("../etc", '"../etc"'), ("/", '"/"'),
                    ("a&#9;b", '"a\\x09b"'), ("a&#13;b", '"a\\x0db"'), ("a\u0085b", '"a\\x85b"')]


def test_item_ids_that_cannot_name_a_result_are_refused_at_submit(daemon: Daemon) -> None:
    for item_id, shown in REFUSED_ITEM_IDS:
        status, body = soap(daemon, "jane", submit("fine", item_id))
        code, locator, text = _fault(assert_valid(body))
        assert (status, code, locator) == (400, "InvalidParameterValue", "itemId"), body
        assert text.startswith(f"itemId {shown} cannot name a result"), text
