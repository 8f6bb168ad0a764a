"""The results tree over FTP (oseod/ftp/results.py) as ftplib sees it, over a
real order made by the engine: directories carry real dates."""

from __future__ import annotations

import ftplib
import time
from typing import Any

import pytest_twisted

from tests.test_core_packages import ftp_client  # noqa: F401 - a fixture
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - a fixture

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def listed_date(moment: float) -> str:
    """The date column of an ``ls -l`` style LIST line (UTC; the year instead
    of the time for another year)."""
    at, now = time.gmtime(moment), time.gmtime()
    day = f"{MONTHS[at.tm_mon - 1]} {at.tm_mday:02d}"
    return f"{day} {at.tm_year:5d}" if at.tm_year != now.tm_year else f"{day} {at.tm_hour:02d}:{at.tm_min:02d}"


def mdtm(moment: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(moment))


@pytest_twisted.ensureDeferred
async def test_directories_are_dated_by_their_newest_result(server: Any, ftp_client: Any) -> None:
    srv = await server()
    talk = ftp_client(srv)
    code, ack = await srv.call(submit("d1", "d2"))
    assert code == 200
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    order = await srv.parts.ordering.find(order_id)
    completed = {item.spec.item_id: item.completed_at for item in order.items}
    assert all(completed.values()), completed
    newest = max(completed.values())

    def look(client: ftplib.FTP) -> tuple[list[str], list[str], list[str], list[str]]:
        root: list[str] = []
        client.retrlines("LIST /", root.append)
        inside: list[str] = []
        client.retrlines(f"LIST /{order_id}", inside.append)
        stamps = [client.sendcmd(f"MDTM /{order_id}"), client.sendcmd(f"MDTM /{order_id}/d1")]
        try:  # MLSD, where the server has it (Twisted's FTP server does not)
            facts = [f"{name} {fact.get('modify')}" for name, fact in client.mlsd(f"/{order_id}")]
        except ftplib.error_perm:
            facts = []
        return root, inside, stamps, facts

    root, inside, stamps, facts = await talk(look)
    [line] = [line for line in root if line.endswith(f" {order_id}")]
    assert line.startswith("d") and listed_date(newest) in line, line
    assert " 1970 " not in line
    by_name = {line.rsplit(" ", 1)[1]: line for line in inside}
    for item, at in completed.items():
        assert listed_date(at) in by_name[item], by_name
    assert stamps == [f"213 {mdtm(newest)}", f"213 {mdtm(completed['d1'])}"]
    if facts:
        assert sorted(facts) == sorted(f"{item} {mdtm(at)}" for item, at in completed.items())
