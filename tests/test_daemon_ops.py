"""What an operator sees in a real daemon's log (plain `twistd -n oseod`, no
--logger): a failed start ends with its cause, FTP sessions carry no Twisted
chatter, each request has its line naming the actor."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.daemon import Daemon

pytestmark = pytest.mark.slow

_LINE = re.compile(r"^\d{4}-\d\d-\d\dT")


def _failed_start(daemons: list[Daemon], data_dir: Path, *extra: str) -> list[str]:
    daemon = Daemon(data_dir, *extra)
    daemons.append(daemon)
    daemon.start(wait=False)
    assert daemon.process is not None and daemon.process.wait(60) == 1
    return [line for line in daemon.log().splitlines() if _LINE.match(line)]


def _assert_ends_with_the_cause(lines: list[str], cause: str) -> None:
    assert cause in lines[-1] and "#critical] oseod could not start: " in lines[-1], lines[-6:]
    text = "\n".join(lines)
    assert "Traceback" not in text
    assert [line for line in lines if "#critical]" in line] == [lines[-1]]
    assert "redis-server stopped" in text  # the embedded Redis was up, and was stopped before the cause


def test_a_start_with_the_ftp_port_taken_ends_with_its_cause(tmp_path: Path, daemons: list[Daemon]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lines = _failed_start(daemons, tmp_path / "data", "--ftp", f"tcp:{port}:interface=127.0.0.1")
    _assert_ends_with_the_cause(lines, "ftp listener: ")
    assert "Address already in use" in lines[-1]


def test_a_start_with_a_missing_password_file_ends_with_its_cause(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text(f'[auth]\ncheckers = ["redis", "file"]\npassword_file = "{tmp_path / "nowhere.htpasswd"}"\n')
    lines = _failed_start(daemons, tmp_path / "data", "--config", str(config))
    _assert_ends_with_the_cause(lines, "nowhere.htpasswd")


def test_the_log_has_one_line_per_request_naming_the_actor(tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path / "data")
    daemons.append(daemon)
    daemon.start()
    added = daemon.ctl("user", "add", "alice", "--password-stdin", stdin="alice-password\n")
    assert added.returncode == 0, added.stderr
    for _ in range(3):  # three sessions, each a directory listing over a passive data connection
        client = daemon.ftp()
        client.login("alice", "alice-password")
        assert client.nlst() == []
        client.quit()
    client = daemon.ftp()  # ftplib refuses to send a CR in a name; a hostile client does not
    assert client.sock is not None
    client.sock.sendall(b"USER mallory\rforged\r\nPASS guess\r\n")
    answers = b""
    while b"\n530 " not in answers:
        answers += client.sock.recv(4096)
    client.close()
    status, _, _ = daemon.get("/results/1/1/", headers={"Authorization": "Basic bWFsbG9yeTpndWVzcw=="})
    assert status == 401  # mallory:guess
    assert daemon.get("/admin/api/config", headers={"Authorization": "Bearer wrong"})[0] == 401
    _console_session(daemon)
    assert daemon.stop() in (0, -15)
    log = daemon.log()

    # Twisted's FTP chatter is gone though twistd was given no --logger ...
    for chatter in ("DTPFactory", "cleanupDTP", "starting on", "Port Closed", "dtpFactory", "cancelling DTP"):
        assert chatter not in log
    # ... and so is redis-server's advice for the host.
    assert "overcommit" not in log
    requests = [line.split("] ", 1)[1] for line in log.splitlines() if "RequestMetrics#info] " in line]
    assert sum(r.startswith("ftp login ok user=alice ") for r in requests) == 3, requests
    assert sum(r.startswith("ftp logout ok user=alice ") for r in requests) == 3, requests
    assert any(r.startswith("ftp login 530 user=mallory\\x0dforged ") for r in requests), requests
    assert any(r.startswith("http download 401 user=mallory ") for r in requests), requests
    # oseoctl names its local user; the token's holder acts under that name.
    assert any(r.startswith("admin user.add ok user=") and " user=- " not in r for r in requests), requests
    assert any(r.startswith("admin config 401 user=- ") for r in requests), requests  # no token, no actor
    assert any(r.startswith("console login 401 user=olga ") for r in requests), requests
    assert any(r.startswith("console login ok user=olga ") for r in requests), requests
    assert any(r.startswith("console users.disable ok user=olga ") for r in requests), requests
    assert any(r.startswith("console logout ok user=olga ") for r in requests), requests
    assert "\r" not in log


def _console_session(daemon: Daemon) -> None:
    """An operator's console visit: a wrong password, a login, one change, a logout."""
    added = daemon.ctl("user", "add", "olga", "--admin", "--password-stdin", stdin="olga-password\n")
    assert added.returncode == 0, added.stderr
    assert _post(daemon, "/console/login", {"user": "olga", "password": "guess"})[0] == 401
    status, cookie = _post(daemon, "/console/login", {"user": "olga", "password": "olga-password"})
    assert status == 303 and cookie
    status, _, page = daemon.get("/console/users", headers={"Cookie": cookie})
    assert status == 200
    match = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert match is not None
    for path in ("/console/users/alice/disable", "/console/logout"):
        assert _post(daemon, path, {"csrf": match.group(1).decode()}, cookie)[0] == 303


def _post(daemon: Daemon, path: str, form: dict[str, str], cookie: str = "") -> tuple[int, str]:
    """POST a form without following the answer's redirect: its status and the session cookie it set."""
    where = urlsplit(daemon.http)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
    try:
        connection.request("POST", path, urlencode(form), {"Content-Type": "application/x-www-form-urlencoded",
                                                           **({"Cookie": cookie} if cookie else {})})
        answer = connection.getresponse()
        answer.read()
        return answer.status, (answer.getheader("Set-Cookie") or "").split(";")[0]
    finally:
        connection.close()


def test_the_readmes_install_step_is_a_make_target() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert "make install" in readme and ".venv/.installed" not in readme
    assert "-g oseod" in readme  # the config file is readable by the daemon's group
    make = subprocess.run(["make", "-n", "-C", str(root), "install"], capture_output=True, text=True, timeout=60)
    assert make.returncode == 0, make.stderr


_REQUEST_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[oseod\.metrics\.RequestMetrics#info\] "
                           r"http GetCapabilities ok user=- from=127\.0\.0\.1 \d+\.\dms$")


@pytest.mark.parametrize("twistd_options", [(), ("--logfile", "twistd.log")], ids=["plain", "logfile"])
def test_a_start_without_logger_logs_classic_lines_at_info(tmp_path: Path, daemons: list[Daemon],
                                                            twistd_options: tuple[str, ...]) -> None:
    """README's `twistd -n oseod` (the daemon's own text observer), and
    `--logfile FILE` (twistd's file observer behind the daemon's filter):
    the same classic lines, in the place twistd was told, nothing below info."""
    daemon = Daemon(tmp_path / "data", twistd_options=twistd_options)
    daemons.append(daemon)
    daemon.start()
    assert daemon.get("/oseo?service=OS&request=GetCapabilities")[0] == 200
    assert daemon.stop() in (0, -15)
    log = (tmp_path / "twistd.log").read_text() if twistd_options else daemon.log()
    lines = log.splitlines()
    assert sum(bool(_REQUEST_LINE.match(line)) for line in lines) == 1, lines
    assert "oseod is running" in log and "Server Shut Down." in log
    assert not [line for line in lines if "#debug]" in line]
    if twistd_options:
        assert "RequestMetrics" not in daemon.log()  # stdout
