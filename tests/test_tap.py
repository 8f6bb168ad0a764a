"""``twistd oseod`` options: --admin is checked like the other endpoints and
adds a listener of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from oseod.tap import Options, makeService


def steps(tmp_path: Path, *args: str) -> list[str]:
    options = Options()
    options.parseOptions(["--data-dir", str(tmp_path / "data"), "--http", "tcp:0:interface=127.0.0.1",
                          "--ftp", "", *args])
    return [step.name for step in makeService(options)._steps]  # type: ignore[attr-defined]


def test_admin_endpoint_adds_a_listener(tmp_path: Path) -> None:
    assert "admin listener" not in steps(tmp_path)
    assert "admin listener" not in steps(tmp_path, "--admin", "")
    assert "admin listener" in steps(tmp_path, "--admin", "tcp:0:interface=127.0.0.1")


def test_a_bad_admin_endpoint_is_one_line_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"^oseod: configuration error: server\.admin.*'nonsense:1'"):
        steps(tmp_path, "--admin", "nonsense:1")


def test_sftp_endpoint_adds_a_listener_and_its_host_key(tmp_path: Path) -> None:
    assert not {"sftp listener", "sftp host key"} & set(steps(tmp_path))
    made = steps(tmp_path, "--sftp", "tcp:0:interface=127.0.0.1")
    assert made.index("data dir") < made.index("sftp host key") < made.index("sftp listener")
    with pytest.raises(SystemExit, match=r"^oseod: configuration error: server\.sftp.*'nonsense:1'"):
        steps(tmp_path, "--sftp", "nonsense:1")


def test_console_links_point_at_the_listener_that_serves_the_console() -> None:
    from oseod.config import ServerConfig
    from oseod.tap import console_base

    listeners = {"http": "http://127.0.0.1:8080", "admin": "http://127.0.0.1:8081"}.__getitem__
    public = "https://oseo.example.org/oseo"
    assert console_base(ServerConfig(), listeners)() == "http://127.0.0.1:8080"
    assert console_base(ServerConfig(public_url=public), listeners)() == "https://oseo.example.org"
    assert console_base(ServerConfig(public_url=public, admin="tcp:8081"), listeners)() == "http://127.0.0.1:8081"


def test_drain_seconds_on_the_command_line(tmp_path: Path) -> None:
    options = Options()
    options.parseOptions(["--data-dir", str(tmp_path / "data"), "--drain-seconds", "0"])
    assert options.config.server.drain_seconds == 0.0
    with pytest.raises(SystemExit, match=r"^oseod: configuration error: --drain-seconds.*'soon'"):
        Options().parseOptions(["--drain-seconds", "soon"])
