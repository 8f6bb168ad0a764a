"""A throwaway OpenLDAP slapd on a loopback port, for the LDAP checker's tests
(notes/twisted-stack.md §1.4): its own config, database and TLS certificate
in a temp dir, the directory below loaded offline with slapadd.

    dc=example,dc=org
      ou=people: alice (mail alice@example.org), bob, carol, "dave, jr" (a comma in his uid)
      ou=groups: cn=gold (alice, dave), cn=oseod-admins (bob; groupOfUniqueNames)
      cn=reader: the service account that searches

Every user's password is "<uid>-pw". slapd listens on ldap:// and ldaps://
(a certificate for "localhost" signed by a CA made here, ``ca_pem``).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.ports import start_listening

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
READER = f"cn=reader,{SUFFIX}"
GOLD = f"cn=gold,{GROUPS}"
ADMINS = f"cn=oseod-admins,{GROUPS}"
USERS = ("alice", "bob", "carol", "dave, jr")


def available() -> str | None:
    """Why slapd cannot run here, or None."""
    for tool in (SLAPD, "/usr/sbin/slapadd", "/usr/sbin/slappasswd"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (Debian: apt-get install slapd ldap-utils; .ci/run installs them)"
    return None


def _password_hash(password: str) -> str:
    done = subprocess.run(["/usr/sbin/slappasswd", "-s", password], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _user_dn(uid: str) -> str:
    return f"uid={uid.replace(',', chr(92) + ',')},{PEOPLE}"


def _certificates(where: Path) -> tuple[Path, Path, Path]:
    """A CA, and a key and certificate for "localhost" signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oseod test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, key_pem, cert_pem = where / "ca.pem", where / "server.key", where / "server.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, key_pem, cert_pem


class Slapd:
    def __init__(self, where: Path) -> None:
        self.where = where
        self.port = self.tls_port = 0  # known once started
        self.process: subprocess.Popen[bytes] | None = None
        self.ca_pem, key_pem, cert_pem = _certificates(where)
        (where / "db").mkdir()
        modules = "/usr/lib/ldap"
        (where / "slapd.conf").write_text("\n".join([
            *(f"include /etc/ldap/schema/{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")),
            f"modulepath {modules}", "moduleload back_mdb",
            f"pidfile {where}/slapd.pid", f"argsfile {where}/slapd.args",
            f"TLSCACertificateFile {self.ca_pem}", f"TLSCertificateFile {cert_pem}",
            f"TLSCertificateKeyFile {key_pem}",
            "database mdb", "maxsize 104857600", f'suffix "{SUFFIX}"',
            f'rootdn "cn=admin,{SUFFIX}"', f"rootpw {_password_hash('admin-pw')}",
            f"directory {where}/db", "index uid eq", "index member,uniqueMember eq",
            "access to attrs=userPassword by self read by anonymous auth by * none",
            "access to * by * read", "",
        ]))
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
            f"dn: {READER}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: reader\n"
            f"userPassword: {_password_hash('reader-pw')}",
        ]
        for uid in USERS:
            mail = f"\nmail: {uid}@example.org" if uid == "alice" else ""
            entries.append(f"dn: {_user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}"
                           f"{mail}\nuserPassword: {_password_hash(uid + '-pw')}")
        entries.append(f"dn: {GOLD}\nobjectClass: groupOfNames\ncn: gold\nmember: {_user_dn('alice')}\n"
                       f"member: {_user_dn('dave, jr')}")
        entries.append(f"dn: {ADMINS}\nobjectClass: groupOfUniqueNames\ncn: oseod-admins\n"
                       f"uniqueMember: {_user_dn('bob')}")
        (where / "base.ldif").write_text("\n\n".join(entries) + "\n")
        subprocess.run(["/usr/sbin/slapadd", "-f", str(where / "slapd.conf"), "-l", str(where / "base.ldif")],
                       check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    def start(self) -> Slapd:
        """Start slapd on two loopback ports. It cannot bind port 0 (it reads
        ``:0`` as its default, 389), so it gets free-looking ports and is
        started again on others when it could not bind them (tests/ports.py)."""
        def launch(ports: list[int]) -> subprocess.Popen[bytes]:
            urls = f"ldap://127.0.0.1:{ports[0]}/ ldaps://127.0.0.1:{ports[1]}/"
            # -d 0: in the foreground, quiet; it runs as this user (the test's).
            with open(self.where / "slapd.log", "wb") as log:
                return subprocess.Popen([SLAPD, "-f", str(self.where / "slapd.conf"), "-h", urls, "-d", "0"],
                                        stdout=subprocess.DEVNULL, stderr=log)

        try:
            self.process, (self.port, self.tls_port) = start_listening(launch, 2, "slapd")
        except AssertionError as e:
            log = (self.where / "slapd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{e}; slapd's last log: {log}") from None
        return self

    def connections(self) -> int:
        """Established TCP connections to slapd's ports now (from /proc)."""
        ports = {f"{self.port:04X}", f"{self.tls_port:04X}"}
        count = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] in ports and fields[3] == "01":  # local port ours, ESTABLISHED
                count += 1
        return count

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.where / "db", ignore_errors=True)
