"""The SFTP part of downloads.py: OpenSSH's sshd (its in-process sftp-server,
``internal-sftp``) as the baseline, and the OpenSSH ``sftp`` client that
downloads from it and from oseod's SFTP listener.

Everything lives in the run's temporary directory: sshd's configuration,
host key, pid file and authorized keys; the client's key and a known_hosts
file with both servers' host keys (strict checking: a wrong key fails the
run rather than being accepted).
"""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import BenchError, Server, wait_for

# What oseod's SFTP listener (twisted.conch) negotiates with OpenSSH 9.2 by
# default; sshd is held to the same, so the ratio compares the servers and
# not the algorithms (sshd would pick chacha20-poly1305 otherwise).
ALGORITHMS = ["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256", "-o", "KexAlgorithms=curve25519-sha256",
              "-o", "HostKeyAlgorithms=ssh-ed25519"]
PRIVSEP_DIR = Path("/run/sshd")  # sshd started by root chroots its pre-login child here


def user_key(tmp: Path) -> tuple[Path, str]:
    """A passphrase-less ed25519 client key; its path and public line."""
    key = tmp / "client_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-downloads", "-f", str(key)],
                   check=True, stdin=subprocess.DEVNULL)
    return key, key.with_suffix(".pub").read_text().strip()


def add_user_key(oseoctl: Path, data: Path, name: str, public: str) -> None:
    """``oseoctl user key add NAME < key.pub``."""
    done = subprocess.run([str(oseoctl), "--data-dir", str(data), "user", "key", "add", name], input=public + "\n",
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"oseoctl user key add {name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def trust_host(known_hosts: Path, port: int, public_key_file: Path) -> None:
    """Pin a server's host key (the ``type base64`` part of its .pub file)."""
    kind, blob = public_key_file.read_text().split()[:2]
    with open(known_hosts, "a") as out:
        out.write(f"[127.0.0.1]:{port} {kind} {blob}\n")


def start_sshd(sshd: str, tmp: Path, public: str, port: int, started: list[Server],
               wrapper: list[str], listening: Callable[[Server, int], bool | None]) -> tuple[Server, str, Path]:
    """A private sshd on 127.0.0.1:``port`` in the foreground, only for the
    current user (``public`` its one authorized key), serving nothing but
    ``internal-sftp``. Its user name and host public key file. ``wrapper``
    runs it under the subreaper, so that its session processes' CPU is
    counted."""
    state = tmp / f"sshd-{port}"  # one per port tried (the caller may try another)
    state.mkdir(mode=0o700)
    host_key = state / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-sshd", "-f", str(host_key)],
                   check=True, stdin=subprocess.DEVNULL)
    authorized = state / "authorized_keys"
    authorized.write_text(public + "\n")
    authorized.chmod(0o600)
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        # What the ssh service's tmpfiles.d entry would make at boot; without
        # it a root sshd refuses to start ("Missing privilege separation
        # directory"). Empty, root's, 0755: harmless for a system sshd.
        PRIVSEP_DIR.mkdir(mode=0o755)
        print(f"bench: made {PRIVSEP_DIR} (sshd's privilege separation directory, as the ssh service would)",
              flush=True)
    config = state / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"Port {port}\n"
        f"HostKey {host_key}\n"
        f"PidFile {state / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "AuthenticationMethods publickey\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"  # the bench run as root logs in as root, by key
        "UsePAM no\n"
        "StrictModes no\n"
        "PrintMotd no\n"
        "UseDNS no\n"
        "AllowTcpForwarding no\n"
        "X11Forwarding no\n"
        "Subsystem sftp internal-sftp\n"
        "ForceCommand internal-sftp\n"
        "LogLevel ERROR\n")
    server = Server("sshd", [*wrapper, sshd, "-D", "-e", "-f", str(config)], tmp / "sshd.log", cwd=tmp)
    started.append(server)
    wait_for(f"sshd listening on 127.0.0.1:{port}", server, lambda: listening(server, port))
    return server, pwd.getpwuid(os.geteuid()).pw_name, host_key.with_suffix(".pub")


def sftp_get(sftp: str, key: Path, known_hosts: Path, user: str, port: int, path: str, sink: Path,
             timeout: float) -> tuple[int, float, float]:
    """One whole ``get`` of ``path`` by ``sftp -b`` (its default buffer and
    requests in flight: 32 KiB x 64) into ``sink``, a file on tmpfs, removed
    afterwards: bytes received (the sink's size: /dev/null would not tell a
    short transfer), bytes/s and seconds of the get, timed from the moment
    sftp echoes the command (the log-in before it left out) to its exit."""
    argv = [sftp, "-F", "/dev/null", "-b", "-", "-P", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "ConnectTimeout=10", *ALGORITHMS, f"{user}@127.0.0.1"]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.write(f"get {path} {sink}\n".encode())
    process.stdin.close()
    begun = None
    watchdog = threading.Timer(timeout, process.kill)  # only bounds a hung server
    watchdog.start()
    try:
        # sftp's stdout is line-buffered: the echo comes as the get starts.
        for line in iter(process.stdout.readline, b""):
            if line.startswith(b"sftp> get"):
                begun = time.monotonic()
        process.wait()
        ended = time.monotonic()
        errors = process.stderr.read().decode(errors="replace").strip()
        if not watchdog.is_alive():
            raise BenchError(f"sftp get {path} from 127.0.0.1:{port}: no end after {timeout:.0f} s")
        if process.returncode != 0 or begun is None:
            raise BenchError(f"sftp get {path} from 127.0.0.1:{port} failed ({process.returncode}): {errors}")
        size = sink.stat().st_size
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        sink.unlink(missing_ok=True)
    seconds = ended - begun
    return size, size / seconds, seconds


def sshd_program() -> str | None:
    for candidate in ("/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if os.access(candidate, os.X_OK):
            return candidate  # sshd wants to be run by its absolute path (it re-executes itself)
    return None

