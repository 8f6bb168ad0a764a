"""The password-file checker: htpasswd -B and oseod scrypt lines, weak
schemes refused, edits picked up without a restart; the [auth] checkers
order in the config and in a running daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import bcrypt
import pytest
import pytest_twisted
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor, task

from oseod.auth.checkers import UnknownUser
from oseod.auth.htpasswd import PasswordFileChecker, PasswordFileError, parse_password_file
from oseod.auth.passwords import hash_password
from oseod.config import ConfigError, parse_config
from tests.daemon import BIN, Daemon
from tests.pools import POOLS


def htpasswd_line(name: str, password: str) -> str:
    """What ``htpasswd -nbB`` prints (the real tool when installed: .ci/run
    installs apache2-utils; else the same bcrypt hash made here)."""
    if shutil.which("htpasswd"):
        done = subprocess.run(["htpasswd", "-nbB", name, password], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    return f"{name}:" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)


def scrypt_line(name: str, password: str) -> str:
    done = subprocess.run([str(BIN / "oseoctl"), "user", "hash", "--password-stdin"], input=password,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return f"{name}:{done.stdout.strip()}"


async def login(checker: PasswordFileChecker, name: str, password: str) -> object:
    return await checker.requestAvatarId(UsernamePassword(name.encode(), password.encode()))


@pytest_twisted.ensureDeferred
async def test_htpasswd_and_scrypt_lines_log_in_with_their_groups(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"# operators' accounts\n\n{htpasswd_line('alice', 'alice-pw')}:gold\n"
                    f"{scrypt_line('bob', 'bob-pw')}\n")
    checker = PasswordFileChecker(str(path), reactor, cache_seconds=0.0, threads=POOLS)
    checker.start()
    alice = await login(checker, "alice", "alice-pw")
    assert (alice.account.name, alice.account.group) == ("alice", "gold")  # type: ignore[attr-defined]
    bob = await login(checker, "bob", "bob-pw")
    assert bob.account.group == "default"  # type: ignore[attr-defined]
    with pytest.raises(UnauthorizedLogin) as refused:
        await login(checker, "alice", "bob-pw")
    assert not isinstance(refused.value, UnknownUser)
    with pytest.raises(UnknownUser):
        await login(checker, "carol", "alice-pw")
    with pytest.raises(UnauthorizedLogin, match="empty"):
        await login(checker, "alice", "")


@pytest.mark.parametrize("line", [
    "alice:$apr1$abcdefgh$0123456789abcdefghijkl",  # htpasswd -m
    "alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=",  # htpasswd -s
    "alice:alice-pw",  # htpasswd -p
    "alice:abJnggxhB/yWI",  # crypt
    "alice",
    ":$2y$05$2NEI8vA1rt94iEAXpPzcX.il5gWwacuEFd.NOnPSYIjFOdhj7eiAm",
])
def test_weak_or_malformed_lines_are_refused_naming_the_line(line: str) -> None:
    with pytest.raises(PasswordFileError, match="line 2"):
        parse_password_file(f"# header\n{line}\n", "passwd")


def test_a_name_listed_twice_or_a_bad_group_is_refused() -> None:
    good = "alice:$2y$05$2NEI8vA1rt94iEAXpPzcX.il5gWwacuEFd.NOnPSYIjFOdhj7eiAm"
    with pytest.raises(PasswordFileError, match="twice"):
        parse_password_file(f"{good}\n{good}\n")
    with pytest.raises(PasswordFileError, match="group"):
        parse_password_file(f"{good}:gold team\n")


@pytest_twisted.ensureDeferred
async def test_edits_are_picked_up_and_a_broken_edit_keeps_the_accounts(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(scrypt_line("alice", "first") + "\n")
    checker = PasswordFileChecker(str(path), reactor, cache_seconds=60.0, clock=task.Clock(), threads=POOLS)
    checker.start()
    await login(checker, "alice", "first")
    path.write_text(scrypt_line("alice", "second") + "\n" + scrypt_line("bob", "bob-pw") + "\n")
    os.utime(path, ns=(1, 1))  # a new modification time, however fast this runs
    with pytest.raises(UnauthorizedLogin):
        await login(checker, "alice", "first")  # the remembered success does not outlive the change
    await login(checker, "alice", "second")
    await login(checker, "bob", "bob-pw")
    path.write_text("alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n")
    os.utime(path, ns=(2, 2))
    await login(checker, "bob", "bob-pw")  # the accounts last read stay


def test_a_missing_or_broken_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(PasswordFileError, match="cannot read"):
        PasswordFileChecker(str(tmp_path / "none"), reactor, threads=POOLS).start()


def test_checkers_in_the_config() -> None:
    config = parse_config({"auth": {"checkers": ["file", "redis"], "password_file": "/etc/oseod/passwd"}})
    assert config.auth.checkers == ("file", "redis")
    with pytest.raises(ConfigError, match="auth.password_file"):
        parse_config({"auth": {"checkers": ["redis", "file"]}})
    with pytest.raises(ConfigError, match=r"auth.checkers\[0\]"):
        parse_config({"auth": {"checkers": ["pam"]}})
    with pytest.raises(ConfigError, match="auth.checkers"):
        parse_config({"auth": {"checkers": ["redis", "redis"]}})
    with pytest.raises(ConfigError, match="ldap.url"):
        parse_config({"auth": {"checkers": ["ldap"]}})
    with pytest.raises(ConfigError, match="ldap.user_base"):
        parse_config({"auth": {"checkers": ["ldap"]}, "ldap": {"url": "ldap://h"}})
    with pytest.raises(ConfigError, match="ldap.groups.x"):
        parse_config({"ldap": {"groups": {"x": 1}}})


@pytest.mark.slow
def test_a_daemon_with_a_password_file_and_a_broken_one(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(htpasswd_line("fileuser", "file-pw") + "\n")
    config = tmp_path / "oseod.toml"
    config.write_text(f'[auth]\ncheckers = ["file", "redis"]\npassword_file = "{passwd}"\n')
    daemon = Daemon(tmp_path / "data", "--config", str(config)).start()
    try:
        with daemon.ftp() as client:
            client.login("fileuser", "file-pw")
            assert client.nlst() == []
        status, _, _ = daemon.get("/results/1/1/", {"Authorization": "Basic ZmlsZXVzZXI6bm9wZQ=="})  # wrong password
        assert status == 401
    finally:
        daemon.cleanup()

    passwd.write_text("fileuser:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n")
    broken = Daemon(tmp_path / "data2", "--config", str(config)).start(wait=False)
    try:
        assert broken.process is not None
        assert broken.process.wait(60) == 1
        assert "password checkers" in broken.log() and "line 1" in broken.log()
        assert "Traceback" not in broken.log()
    finally:
        broken.cleanup()
