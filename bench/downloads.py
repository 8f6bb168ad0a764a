"""
Download throughput of a 1 GiB result over loopback: oseod's FTP server as a
ratio to vsftpd, and oseod's HTTP downloads as a ratio to nginx, all measured
in the same run with the same client (curl) on the same file.

1. A 1 GiB file is written once into the run's temporary directory: real
   blocks, not a sparse file (a hole is read without touching the page cache,
   which no real product does). It is read once before anything is measured,
   so every server reads it from a warm page cache.
2. oseod (``twistd -n oseod``, throwaway data dir, embedded Redis, loopback
   ports) gets a collection whose built-in ``archive`` processor links that
   file into an item's results; a user made with ``oseoctl user add`` submits
   a one-item order over SOAP and the script waits until the result can be
   downloaded: ``ftp://HOST:PORT/<order>/<item>/<file>`` and
   ``http://HOST:PORT/results/<order>/<item>/<file>`` (HTTP Basic).
3. vsftpd (anonymous, read only, ``anon_root`` the file's directory) and
   nginx (``sendfile on``, the same directory as its root) start on free
   loopback ports with configuration files of their own in the temporary
   directory.
4. Each of the four targets is downloaded once uncounted, then ``--rounds``
   times, interleaved (oseod FTP, vsftpd, oseod HTTP, nginx; every other round
   in the reverse order), by ``curl -o /dev/null``; every download must bring
   the whole file. The median of curl's ``speed_download`` is each target's
   figure; oseod FTP / vsftpd and oseod HTTP / nginx are the ratios (target
   >= 0.9).

FTPS (explicit, PROT P, curl ``--ssl-reqd`` with a self-signed certificate
made here): oseod with ``ftp_tls = "optional"`` as a ratio to vsftpd with
``ssl_enable`` (a second vsftpd; curl resumes the TLS session on the data
connection, as vsftpd's default ``require_ssl_reuse`` wants). Target >= 0.5.

SFTP (OpenSSH ``sftp -b``, ``get`` into a file on tmpfs, removed after each
download; key login, both host keys pinned): oseod's SFTP listener as a ratio
to a private OpenSSH sshd (``internal-sftp``, its own config, host key and
authorized keys in the temporary directory), both held to the algorithms
oseod negotiates (aes128-ctr, hmac-sha2-256). Target >= 0.5.

Needs curl (exits with status 2 without it). vsftpd, nginx and sshd are the
baselines (Debian: ``apt-get install vsftpd nginx-light openssh-server``; the
SFTP targets also need ``sftp`` and ``ssh-keygen``): the script installs
nothing, and says which baseline it could not start; the oseod targets are
measured anyway and the ratios to a missing baseline are n/a. Run it with
``make bench-downloads`` (or ``.venv/bin/python bench/downloads.py --help``).
Every server started here is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from harness import (
    BenchError,
    Server,
    ServerExited,
    add_run_arguments,
    machine_info,
    reported,
    rounded,
    start_oseod,
    stop_all,
    wait_for,
)
from ordering import add_user, envelope, post
from sftp_targets import add_user_key, sftp_get, sshd_program, start_sshd, trust_host, user_key

from tests.ports import candidate_ports, socket_inodes

COLLECTION = "urn:oseod:bench-downloads"
PRODUCT = "product-1GiB"
FILE_NAME = f"{PRODUCT}.bin"
ITEM = "item-1"
USER = "bench-downloads"
PASSWORD = "bench-downloads-password"
TARGET = 0.9
FTPS_TARGET = 0.5  # TLS in Twisted's userspace (no sendfile) against vsftpd's OpenSSL
SFTP_TARGET = 0.5  # conch's SSH in Python against OpenSSH's C
MIB = 1024 * 1024
INSTALL = {"vsftpd": "apt-get install vsftpd", "nginx": "apt-get install nginx-light",
           "curl": "apt-get install curl", "sshd": "apt-get install openssh-server",
           "sftp": "apt-get install openssh-client"}
CURL_TIMEOUT = 600  # seconds for one download: only bounds a hung server


@dataclass
class Download:
    target: str
    round: int  # 0: the uncounted warm-up
    bytes_per_second: float
    size: int
    seconds: float
    server_cpu_seconds: float  # the server's processes (tree_cpu)


@dataclass
class Row:
    target: str
    url: str
    median_mb_per_s: float
    runs_mb_per_s: list[float]
    cpu_seconds_per_gib: float


# --- the file ----------------------------------------------------------------------


def write_product(path: Path, size: int) -> None:
    """``size`` bytes of real blocks: one random MiB repeated (nothing here
    compresses, and random data keeps any future gzip from flattering one side)."""
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        left = size
        while left > 0:
            left -= out.write(block[:min(left, MIB)])
        out.flush()
        os.fsync(out.fileno())  # no write-back of a GiB of dirty pages during the measurements


def read_once(path: Path) -> float:
    """Read the whole file (into the page cache); seconds it took."""
    started = time.monotonic()
    with open(path, "rb", buffering=0) as source:
        while source.read(8 * MIB):
            pass
    return time.monotonic() - started


# --- CPU -------------------------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, list[str]]:
    """Every process's /proc/PID/stat fields after the command name."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                pass  # gone meanwhile
    return found


def _tree(root: int, processes: dict[int, list[str]]) -> list[int]:
    members, todo = [], [root]
    while todo:
        pid = todo.pop()
        members.append(pid)
        todo += [p for p, fields in processes.items() if int(fields[1]) == pid]
    return [p for p in members if p in processes]


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a server: its process and every
    descendant, alive (utime, stime) or already reaped (cutime, cstime):
    vsftpd's per-session processes, nginx's worker, oseod's embedded
    redis-server."""
    processes = _processes()
    return sum(sum(int(f) for f in processes[pid][11:15]) for pid in _tree(root, processes)) / TICK


def tree_size(root: int) -> int:
    return len(_tree(root, _processes()))


def settled_cpu(server: Server, idle_size: int) -> float:
    """tree_cpu once the server is back to its idle processes (vsftpd's
    session processes end, and are reaped, just after the client's QUIT)."""
    deadline = time.monotonic() + 5
    while tree_size(server.process.pid) > idle_size and time.monotonic() < deadline:
        time.sleep(0.01)
    return tree_cpu(server.process.pid)


# --- the servers ---------------------------------------------------------------------


# vsftpd, nginx and sshd cannot bind port 0 and say which port they got, and
# a port probed free and handed over later may be taken in between. So each
# gets a port below the kernel's ephemeral range (no client socket is handed
# one meanwhile), counts as up only once its own process tree listens there
# (a stranger holding the port is not mistaken for it), and is started again
# on another port when it exits first (most likely, the port was taken).


T = TypeVar("T")


def listening(server: Server, port: int) -> bool | None:
    """True once ``server`` (its process or a descendant) listens on
    127.0.0.1:``port``; None until then."""
    inodes = set().union(*(socket_inodes(pid) for pid in _tree(server.process.pid, _processes())))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
            return True
    return None


def on_own_port(what: str, start: Callable[[int], T]) -> tuple[T, int]:
    """``start(port)`` (which waits for ``listening``) on candidate ports
    until one works; its result and the port."""
    for _ in range(20):
        [port] = candidate_ports(1)
        try:
            return start(port), port
        except ServerExited as e:
            last: BenchError = e
    raise BenchError(f"{what} could not start on 20 ports; the last time: {last}")


def _has_user(name: str) -> bool:
    try:
        return Path(pwd.getpwnam(name).pw_dir).is_dir()
    except KeyError:
        return False


# Runs a program under a "child subreaper" (Linux prctl): a process whose
# parent has gone is handed to this wrapper rather than to init, and reaped
# here, so its CPU time ends up in the wrapper's cutime/cstime. vsftpd's
# session process does not always outlive the process it forks for the
# transfer, and without this that one's CPU would not be counted anywhere.
# SIGTERM is passed on; the wrapper ends with the program.
SUBREAPER = """
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(child, signal.SIGTERM))
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        sys.exit(os.waitstatus_to_exitcode(status))
"""


def start_vsftpd(vsftpd: str, tmp: Path, root: Path, started: list[Server],
                 tls: tuple[Path, Path] | None = None) -> tuple[Server, int]:
    """Anonymous, read only, in the foreground, on a free loopback port; passive
    data ports are taken on the control connection's address (loopback).
    With ``tls`` (certificate, key): FTPS required for logins and data, with
    vsftpd's default session reuse check."""
    name = "vsftpd-tls" if tls else "vsftpd"
    empty = tmp / f"{name}-empty"  # where its unprivileged helper is chrooted
    empty.mkdir(mode=0o755)
    return on_own_port(name, lambda port: _start_vsftpd(vsftpd, tmp, root, started, tls, name, empty, port))


def _start_vsftpd(vsftpd: str, tmp: Path, root: Path, started: list[Server], tls: tuple[Path, Path] | None,
                  name: str, empty: Path, port: int) -> Server:
    # Anonymous sessions run as the "ftp" user the Debian package creates
    # (vsftpd changes to its home first). Without root, or without that user,
    # vsftpd runs as whoever started it: no chroot, no user change, loopback
    # only and for this run only.
    as_ftp = os.geteuid() == 0 and _has_user("ftp")
    lines = {
        "listen": "YES", "listen_ipv6": "NO", "listen_address": "127.0.0.1", "listen_port": str(port),
        "background": "NO", "anonymous_enable": "YES", "no_anon_password": "YES", "anon_root": str(root),
        "local_enable": "NO", "write_enable": "NO", "pasv_enable": "YES", "port_enable": "NO",
        "use_sendfile": "YES", "xferlog_enable": "NO", "seccomp_sandbox": "NO",  # seccomp fails in containers
        "secure_chroot_dir": str(empty), "max_clients": "16", "idle_session_timeout": "600",
        "data_connection_timeout": "600",
    }
    if as_ftp:
        lines["ftp_username"] = "ftp"
    else:
        lines["run_as_launching_user"] = "YES"
    if tls:
        lines.update({"ssl_enable": "YES", "allow_anon_ssl": "YES", "force_anon_logins_ssl": "YES",
                      "force_anon_data_ssl": "YES", "require_ssl_reuse": "YES",
                      "rsa_cert_file": str(tls[0]), "rsa_private_key_file": str(tls[1])})
    config = tmp / f"{name}.conf"
    config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    server = Server(name, [sys.executable, "-c", SUBREAPER, vsftpd, str(config)], tmp / f"{name}.log", cwd=tmp)
    started.append(server)
    wait_for(f"vsftpd listening on 127.0.0.1:{port}", server, lambda: listening(server, port))
    return server


def start_nginx(nginx: str, tmp: Path, root: Path, started: list[Server]) -> tuple[Server, int]:
    """One worker, ``sendfile on`` (with ``tcp_nopush``, as a tuned static
    server has it), no access log, everything it writes inside ``tmp``."""
    state = tmp / "nginx"
    state.mkdir()
    return on_own_port("nginx", lambda port: _start_nginx(nginx, tmp, root, started, state, port))


def _start_nginx(nginx: str, tmp: Path, root: Path, started: list[Server], state: Path, port: int) -> Server:
    temp_paths = "".join(f"    {kind}_temp_path {state / kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = tmp / "nginx.conf"
    config.write_text(
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {state / 'nginx.pid'};\n"
        f"error_log {state / 'error.log'};\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    access_log off;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    default_type application/octet-stream;\n"
        f"{temp_paths}"
        f"    server {{ listen 127.0.0.1:{port}; root {root}; }}\n"
        "}\n")
    server = Server("nginx", [nginx, "-c", str(config), "-p", str(state)], tmp / "nginx.log", cwd=tmp)
    started.append(server)
    wait_for(f"nginx listening on 127.0.0.1:{port}", server, lambda: listening(server, port))
    return server


def make_certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (ECDSA P-256, as a modern
    deployment has) and its key, PEM, readable by vsftpd and oseod alike."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, key_path = tmp / "tls-cert.pem", tmp / "tls-key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert, key_path


# --- the order -------------------------------------------------------------------------


def write_config(path: Path, archive: Path, tls: tuple[Path, Path]) -> None:
    path.write_text(
        "[server]\n"
        "# FTPS offered beside plain FTP: the same listener serves both targets.\n"
        'ftp_tls = "optional"\n'
        f'tls_certificate = "{tls[0]}"\n'
        f'tls_key = "{tls[1]}"\n\n'

        "[auth]\n"
        "# One scrypt check for the whole run, as for any client that comes back\n"
        "# (vsftpd's anonymous login checks nothing).\n"
        "password_cache_seconds = 3600\n\n"
        "[[collection]]\n"
        f'id = "{COLLECTION}"\n'
        'title = "1 GiB products for bench/downloads.py"\n'
        'processor = "archive"\n'
        'order_types = ["PRODUCT_ORDER"]\n'
        f'processor_options = {{ root = "{archive}", pattern = "{{product_id}}.bin" }}\n')


def submit_payload() -> str:
    return (f'<oseo:Submit service="OS" version="1.0.0"><oseo:orderSpecification>'
            f"<oseo:orderType>PRODUCT_ORDER</oseo:orderType>"
            f"<oseo:orderItem><oseo:itemId>{ITEM}</oseo:itemId><oseo:productId>"
            f"<oseo:identifier>{PRODUCT}</oseo:identifier><oseo:collectionId>{COLLECTION}</oseo:collectionId>"
            f"</oseo:productId></oseo:orderItem></oseo:orderSpecification>"
            f"<oseo:statusNotification>None</oseo:statusNotification></oseo:Submit>")


def order_result(daemon: Server, http_url: str) -> str:
    """Submit the one-item order and wait until its result downloads; its path."""
    status, answer = post(f"{http_url}/oseo", envelope(USER, PASSWORD, submit_payload()))
    found = answer.split(b"orderId>")
    if status != 200 or len(found) < 2:
        raise BenchError(f"Submit answered {status}: {answer[:600]!r}")
    path = f"/{found[1].split(b'<')[0].decode()}/{ITEM}/{FILE_NAME}"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def ready() -> bool | None:
        request = urllib.request.Request(f"{http_url}/results{path}", method="HEAD",
                                         headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10):
                return True
        except urllib.error.HTTPError:
            return None  # 404 until the archive processor has linked the file
        except OSError as e:
            raise BenchError(f"HEAD {http_url}/results{path}: {e}") from None

    wait_for("the order's result (archive processor)", daemon, ready)
    return path


# --- downloads -------------------------------------------------------------------------


def curl(curl_path: str, url: str, user: str | None, extra: list[str]) -> tuple[int, float, float, str]:
    """One whole download to /dev/null: bytes, curl's average speed (bytes/s),
    seconds, and the last response code (226 for FTP, 200 for HTTP)."""
    argv = [curl_path, *extra, "--silent", "--show-error", "--noproxy", "*", "--max-time", str(CURL_TIMEOUT),
            "--output", "/dev/null", "--write-out", "%{size_download} %{speed_download} %{time_total} "
            "%{response_code}"]
    if user:
        argv += ["--user", user]
    try:
        done = subprocess.run(argv + [url], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=CURL_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"curl {url}: no end after {CURL_TIMEOUT + 30} s") from None
    if done.returncode != 0:
        raise BenchError(f"curl {url} failed ({done.returncode}): {done.stderr.strip()}")
    size, speed, seconds, code = done.stdout.split()
    return int(size), float(speed), float(seconds), code


def median_row(target: str, url: str, downloads: list[Download], size: int) -> Row:
    runs = [d.bytes_per_second / 1e6 for d in downloads if d.target == target and d.round > 0]
    cpu = [d.server_cpu_seconds for d in downloads if d.target == target and d.round > 0]
    return Row(target, url, statistics.median(runs), [round(r, 1) for r in runs],
               statistics.median(cpu) * (1024**3 / size))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="oseod FTP, FTPS, HTTP and SFTP download throughput of a 1 GiB file vs. vsftpd, nginx and sshd.")
    parser.add_argument("--size-mib", type=int, default=1024, help="the file's size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=7, help="counted downloads per target (default 7)")
    add_run_arguments(parser)
    args = parser.parse_args()
    size = max(1, args.size_mib) * MIB
    rounds = min(max(args.rounds, 1), 20)

    programs = {name: shutil.which(name) or shutil.which(f"/usr/sbin/{name}") for name in ("vsftpd", "nginx", "curl")}
    if programs["curl"] is None:
        print(f"bench: curl not found; install with: {INSTALL['curl']}", file=sys.stderr)
        return 2
    for name in ("vsftpd", "nginx"):
        if programs[name] is None:
            print(f"bench: baseline {name} not found, so not started (install with: {INSTALL[name]}); "
                  f"the ratios to it are n/a", file=sys.stderr, flush=True)
    if not args.twistd.exists():
        parser.error(f"{args.twistd} not found: run `make bench-downloads`, or pass --twistd")
    vsftpd, nginx, curl_path = programs["vsftpd"], programs["nginx"], str(programs["curl"])
    sftp_client = shutil.which("sftp") if shutil.which("ssh-keygen") else None
    sshd = sshd_program()
    if sftp_client is None:
        print(f"bench: sftp or ssh-keygen not found, so no SFTP targets (install with: {INSTALL['sftp']})",
              file=sys.stderr, flush=True)
    elif sshd is None:
        print(f"bench: baseline sshd not found, so not started (install with: {INSTALL['sshd']}); "
              f"the ratio to it is n/a", file=sys.stderr, flush=True)

    info = machine_info()
    tmp = Path(tempfile.mkdtemp(prefix="oseod-bench-downloads-"))
    tmp.chmod(0o755)  # started by root, nginx's workers run as nobody
    archive = tmp / "archive"
    archive.mkdir(mode=0o755)
    servers: list[Server] = []
    downloads: list[Download] = []
    try:
        with reported():
            product = archive / FILE_NAME
            print(f"writing {size // MIB} MiB to {product} ...", flush=True)
            write_product(product, size)
            product.chmod(0o644)
            print(f"reading it once (page cache): {read_once(product):.1f} s", flush=True)

            tls = make_certificate(tmp)
            config = tmp / "oseod.toml"
            write_config(config, archive, tls)
            print(f"starting oseod ({args.twistd}) ...", flush=True)
            daemon, http_url = start_oseod(args.twistd, tmp, servers, oseod_options=[
                "--config", str(config), "--sftp", "tcp:0:interface=127.0.0.1"])
            data = tmp / "data"
            add_user(Path(sys.executable).parent / "oseoctl", data, USER, PASSWORD + "\n")
            path = order_result(daemon, http_url)
            delivered = data / "results" / USER / path.lstrip("/")
            linked = delivered.exists() and delivered.stat().st_ino == product.stat().st_ino
            endpoints = json.loads((data / "endpoints.json").read_text())
            ftp_url = endpoints["ftp"]
            print(f"the baselines on the same directory ({'hard link: one inode' if linked else 'a copy'}) ...",
                  flush=True)
            # PROT P (curl's default with --ssl-reqd); the certificate trusted as a CA.
            ftps = ["--ssl-reqd", "--cacert", str(tls[0])]
            targets: dict[str, tuple[str, str | None, list[str]]] = {
                "oseod FTP": (f"{ftp_url}{path}", f"{USER}:{PASSWORD}", []),
                "oseod FTPS": (f"{ftp_url}{path}", f"{USER}:{PASSWORD}", ftps)}
            serving = {"oseod FTP": daemon, "oseod FTPS": daemon, "oseod HTTP": daemon}
            if vsftpd is not None:
                serving["vsftpd"], vsftpd_port = start_vsftpd(vsftpd, tmp, archive, servers)
                targets["vsftpd"] = (f"ftp://127.0.0.1:{vsftpd_port}/{FILE_NAME}", None, [])
                serving["vsftpd FTPS"], tls_port = start_vsftpd(vsftpd, tmp, archive, servers, tls)
                targets["vsftpd FTPS"] = (f"ftp://127.0.0.1:{tls_port}/{FILE_NAME}", None, ftps)
            targets["oseod HTTP"] = (f"{http_url}/results{path}", f"{USER}:{PASSWORD}", [])
            if nginx is not None:
                serving["nginx"], nginx_port = start_nginx(nginx, tmp, archive, servers)
                targets["nginx"] = (f"http://127.0.0.1:{nginx_port}/{FILE_NAME}", None, [])
            # SFTP: who logs in, on which port, and the file's path there.
            sftp_gets: dict[str, tuple[str, int, str]] = {}
            if sftp_client is not None:
                key, public = user_key(tmp)
                add_user_key(Path(sys.executable).parent / "oseoctl", data, USER, public)
                known_hosts = tmp / "known_hosts"
                sftp_port = int(endpoints["sftp"].rstrip("/").rsplit(":", 1)[1])
                trust_host(known_hosts, sftp_port, data / "ssh_host_ed25519_key.pub")
                sftp_gets["oseod SFTP"] = (USER, sftp_port, path)
                serving["oseod SFTP"] = daemon
                if sshd is not None:
                    wrapper = [sys.executable, "-c", SUBREAPER]
                    (serving["sshd SFTP"], sshd_user, sshd_key), sshd_port = on_own_port(
                        "sshd", lambda port: start_sshd(sshd, tmp, public, port, servers, wrapper, listening))
                    trust_host(known_hosts, sshd_port, sshd_key)
                    sftp_gets["sshd SFTP"] = (sshd_user, sshd_port, str(product))
                for target, (who, port, remote) in sftp_gets.items():
                    targets[target] = (f"sftp://{who}@127.0.0.1:{port}{remote}", None, [])
                shm = Path("/dev/shm")  # the client writes to memory, as curl to /dev/null nearly does
                sink = (shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp) / f"oseod-bench-{os.getpid()}.bin"
            idle = {server.name: tree_size(server.process.pid) for server in serving.values()}
            order = list(targets)
            for n in range(rounds + 1):
                for target in (order if n % 2 == 0 else order[::-1]):
                    url, user, extra = targets[target]
                    server = serving[target]
                    before = settled_cpu(server, idle[server.name])
                    if target in sftp_gets:
                        who, port, remote = sftp_gets[target]
                        got, speed, seconds = sftp_get(str(sftp_client), key, known_hosts, who, port, remote,
                                                       sink, CURL_TIMEOUT)
                        code = "226"  # sftp exited 0
                    else:
                        got, speed, seconds, code = curl(curl_path, url, user, extra)
                    spent = settled_cpu(server, idle[server.name]) - before
                    if got != size or code not in ("200", "226"):
                        culprit = daemon if target.startswith("oseod") else None
                        raise BenchError(f"{target}: {url} brought {got} of {size} bytes (code {code})"
                                         + (f"\n{culprit.log_tail()}" if culprit else ""))
                    downloads.append(Download(target, n, speed, got, seconds, spent))
                    print(f"{'warm-up' if n == 0 else f'round {n}'}: {target:<11} {speed / 1e6:8.0f} MB/s"
                          f"  ({seconds:.2f} s)", flush=True)
    finally:
        stop_all(servers)
        shutil.rmtree(tmp, ignore_errors=True)

    rows = {t: median_row(t, targets[t][0], downloads, size) for t in targets}
    pairs = {"oseod FTP / vsftpd": ("oseod FTP", "vsftpd", TARGET),
             "oseod FTPS / vsftpd FTPS": ("oseod FTPS", "vsftpd FTPS", FTPS_TARGET),
             "oseod HTTP / nginx": ("oseod HTTP", "nginx", TARGET),
             "oseod SFTP / sshd SFTP": ("oseod SFTP", "sshd SFTP", SFTP_TARGET)}
    if "oseod SFTP" not in rows:  # no sftp client: neither side measured
        del pairs["oseod SFTP / sshd SFTP"]
    targets_of = {name: goal for name, (_, _, goal) in pairs.items()}

    def ratio_of(ours: str, theirs: str, field: str) -> float | None:
        if theirs not in rows:  # the baseline could not be started
            return None
        return _ratio(getattr(rows[ours], field), getattr(rows[theirs], field))

    ratios = {name: ratio_of(ours, theirs, "median_mb_per_s") for name, (ours, theirs, _) in pairs.items()}
    cpu_ratios = {f"CPU/GiB {name}": ratio_of(ours, theirs, "cpu_seconds_per_gib")
                  for name, (ours, theirs, _) in pairs.items()}
    verdicts = {name: "n/a" if value is None else "PASS" if value >= targets_of[name] else "MISS"
                for name, value in ratios.items()}
    print()
    print(f"machine: nproc {info['nproc']} ({info['cpus']} CPUs), {info['system']}, {info['python']}, "
          f"Twisted {info['twisted']}, oseod {info['oseod']}")
    print(f"file:    {size // MIB} MiB, page cache warm; curl to /dev/null, sftp to tmpfs, over 127.0.0.1; "
          f"median of {rounds} "
          f"after one uncounted download each; client and servers share this machine")
    print()
    print(f"{'target':<12} {'MB/s':>8}   {'runs':<36} {'server CPU s/GiB':>16}")
    for row in rows.values():
        runs = " ".join(f"{r:.0f}" for r in row.runs_mb_per_s)
        print(f"{row.target:<12} {row.median_mb_per_s:>8.0f}   {runs:<36} {row.cpu_seconds_per_gib:>16.2f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<36} {_shown(value)}   (target >= {targets_of[name]}: {verdicts[name]})")
    for name, value in cpu_ratios.items():
        print(f"{name:<36} {_shown(value)}   (for information)")
    # What the daemon's one thread could do at most, were it alone on a core.
    for row in rows.values():
        if row.target.startswith("oseod") and row.cpu_seconds_per_gib > 0:
            print(f"{row.target:<12} daemon CPU {row.cpu_seconds_per_gib:.2f} s/GiB: at most "
                  f"{1024**3 / 1e6 / row.cpu_seconds_per_gib:.0f} MB/s on one core")
    missing = [name for name in ("vsftpd", "nginx") if programs[name] is None]
    missing += ["sshd"] if sftp_client is not None and sshd is None else []
    if missing:
        print(f"not started (not installed): {', '.join(missing)}")

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = args.results_dir / f"downloads-{stamp}.json"
    record.write_text(json.dumps({
        "when": stamp, "machine": info, "size": size, "rounds": rounds, "hard_linked": linked,
        "rows": [rounded(asdict(r)) for r in rows.values()],
        "downloads": [rounded(asdict(d)) for d in downloads],
        "ratios": rounded(ratios), "target": TARGET, "targets": targets_of, "verdicts": verdicts,
        "cpu_ratios": rounded(cpu_ratios), "baselines_not_started": missing,
    }, indent=2) + "\n")
    print(f"\nsaved {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
