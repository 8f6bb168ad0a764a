"""``twistd -n oseod --sftp ENDPOINT``: the host key made at first start
(0600, fingerprint logged and in /health), the listener in endpoints.json,
keys managed with ``oseoctl user key``, and OpenSSH logging in with a key
and with a password (through SSH_ASKPASS, non-interactively)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("sftp"), reason="needs OpenSSH's client")]

PASSWORD = "alice-password-1"


def test_sftp_listener_host_key_and_user_keys(tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path / "data", "--sftp", "tcp:0:interface=127.0.0.1")
    daemons.append(daemon)
    daemon.start()
    where = urlsplit(daemon.endpoints["sftp"])
    assert where.scheme == "sftp" and where.port
    key_file = daemon.data_dir / "ssh_host_ed25519_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    fingerprint = json.loads(daemon.get("/health")[2])["sftp"]["host_key"]
    assert fingerprint.startswith("SHA256:") and fingerprint in daemon.log()
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(key_file) + ".pub"], capture_output=True, text=True,
                           check=True).stdout
    assert fingerprint in shown

    home = tmp_path / "home"
    home.mkdir()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{where.port} {(Path(str(key_file) + '.pub')).read_text()}")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f",
                    str(home / "id_ed25519")], check=True)
    added = daemon.ctl("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    added = daemon.ctl("user", "key", "add", "alice", stdin=(home / "id_ed25519.pub").read_text())
    assert added.returncode == 0, added.stderr
    mine = subprocess.run(["ssh-keygen", "-l", "-f", str(home / "id_ed25519.pub")], capture_output=True, text=True,
                          check=True).stdout.split()[1]
    assert mine in added.stdout
    listed = daemon.ctl("user", "key", "list", "alice")
    assert mine in listed.stdout and "alice@laptop" in listed.stdout
    bad = daemon.ctl("user", "key", "add", "alice", stdin="ssh-ed25519 not-base64\n")
    assert bad.returncode != 0 and "key" in bad.stderr

    env = {**os.environ, "HOME": str(home)}
    common = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={home / 'known_hosts'}", "-o",
              "StrictHostKeyChecking=yes", "-P", str(where.port)]

    def by_key() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sftp", *common, "-b", "-", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i",
                               str(home / "id_ed25519"), "alice@127.0.0.1"], input="ls /\n", capture_output=True,
                              text=True, timeout=60, env=env)

    assert by_key().returncode == 0, by_key().stderr
    # A password, non-interactively: OpenSSH asks SSH_ASKPASS (not with -b, which means BatchMode;
    # sftp reads the commands from its standard input all the same).
    askpass = home / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    askpass.chmod(0o700)
    by_password = subprocess.run(
        ["setsid", "-w", "sftp", *common, "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
         "alice@127.0.0.1"], input="ls /\n", capture_output=True, text=True, timeout=60,
        env={**env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
    assert by_password.returncode == 0, by_password.stderr

    deleted = daemon.ctl("user", "key", "del", "alice", mine)
    assert deleted.returncode == 0, deleted.stderr
    assert daemon.ctl("user", "key", "list", "alice").stdout.strip() == "alice has no SSH key"
    assert by_key().returncode != 0
