"""The SFTP listener with paramiko, the SSH library Python scripts fetch
results with: host key checked against known_hosts (never accepted on
trust), password and key logins, listing, download, a resumed download,
isolation between users, writes and commands refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko
import pytest
import pytest_twisted
from twisted.internet import threads

from oseod.jobs.dummy import content
from oseod.model.orders import OrderStatus
from tests.polling import eventually
from tests.test_http_ordering import server  # noqa: F401 - a fixture
from tests.test_sftp import Sftp, sftp, status_of  # noqa: F401 - a fixture

TIMEOUT = 30


def connected(s: Sftp, user: str, *, password: str | None = None, key: Path | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(s.home / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=s.port, username=user, password=password,
                   pkey=paramiko.Ed25519Key.from_private_key_file(str(key)) if key else None,
                   allow_agent=False, look_for_keys=False, timeout=TIMEOUT, banner_timeout=TIMEOUT,
                   auth_timeout=TIMEOUT)
    return client


@pytest_twisted.ensureDeferred
async def test_a_python_script_lists_downloads_and_resumes(sftp: Any) -> None:  # noqa: F811 - a fixture
    s, order_id = await sftp()

    def fetch() -> tuple[list[str], list[str], bytes, bytes]:
        with connected(s, "alice", password="alice-password") as client, client.open_sftp() as files:
            top = files.listdir("/")
            item = files.listdir(f"/{order_id}/a1")
            whole = files.open(f"/{order_id}/a1/a1-product.dat").read()
            with files.open(f"/{order_id}/a2/a2-product.dat") as resumed:
                resumed.seek(100)  # the first 100 bytes came in an earlier, broken session
                rest = resumed.read()
            return top, item, whole, rest

    top, item, whole, rest = await threads.deferToThread(fetch)
    assert order_id in top and item == ["a1-product.dat"]
    assert whole == content("a1", 1024)
    assert rest == content("a2", 1024)[100:]

    async def downloaded() -> bool:
        return await status_of(s.srv, order_id) == (OrderStatus.Downloaded, [OrderStatus.Downloaded] * 2)

    await eventually(downloaded, what="the paramiko downloads to make the order Downloaded")


@pytest_twisted.ensureDeferred
async def test_keys_isolation_writes_and_commands(sftp: Any, tmp_path: Path) -> None:  # noqa: F811 - a fixture
    s, order_id = await sftp()
    upload = tmp_path / "upload.txt"
    upload.write_text("not wanted")

    def as_alice_with_her_key() -> list[str]:
        refused = []
        with connected(s, "alice", key=s.key) as client:
            with client.open_sftp() as files:
                for name, attempt in [("put", lambda: files.put(str(upload), f"/{order_id}/x.txt")),
                                      ("remove", lambda: files.remove(f"/{order_id}/a1/a1-product.dat")),
                                      ("mkdir", lambda: files.mkdir("/new"))]:
                    try:
                        attempt()
                    except PermissionError:
                        refused.append(name)
                assert files.listdir(f"/{order_id}/a1") == ["a1-product.dat"]  # nothing removed
            try:
                client.exec_command("ls", timeout=TIMEOUT)
            except paramiko.SSHException:
                refused.append("exec")
        return refused

    assert await threads.deferToThread(as_alice_with_her_key) == ["put", "remove", "mkdir", "exec"]

    def as_bob() -> list[str]:
        with connected(s, "bob", password="bob-password") as client, client.open_sftp() as files:
            try:
                files.stat(f"/{order_id}/a1/a1-product.dat")
            except FileNotFoundError:
                return files.listdir("/")
            raise AssertionError("bob reached alice's result")

    assert order_id not in await threads.deferToThread(as_bob)

    def with_a_stranger_host_key() -> None:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())  # and no known_hosts
        client.connect("127.0.0.1", port=s.port, username="alice", password="alice-password",
                       allow_agent=False, look_for_keys=False, timeout=TIMEOUT)

    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        await threads.deferToThread(with_a_stranger_host_key)
