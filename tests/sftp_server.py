"""A client's writable SFTP server for push tests: conch on loopback, port 0,
one user (bob, password "secret", or a public key) whose home is a
temporary directory; an ed25519 host key made for the test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.conch import avatar
from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.interfaces import IConchUser, ISFTPFile, ISFTPServer
from twisted.conch.ssh import factory, filetransfer, keys, session
from twisted.cred import checkers
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from zope.interface import implementer


def new_key() -> keys.Key:
    return keys.Key(Ed25519PrivateKey.generate())


def _attrs(s: os.stat_result) -> dict[str, int]:
    return {"size": s.st_size, "uid": s.st_uid, "gid": s.st_gid, "permissions": s.st_mode,
            "atime": int(s.st_atime), "mtime": int(s.st_mtime)}


@implementer(ISFTPFile)
class _File:
    def __init__(self, path: Path, flags: int, server: SftpServer) -> None:
        self._server = server
        mode = os.O_RDWR if flags & filetransfer.FXF_WRITE else os.O_RDONLY
        if flags & filetransfer.FXF_CREAT:
            mode |= os.O_CREAT
        if flags & filetransfer.FXF_TRUNC:
            mode |= os.O_TRUNC
        self._fd = os.open(path, mode, 0o644)

    def readChunk(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def writeChunk(self, offset: int, data: bytes) -> None:
        if self._server.drop_at_write:
            self._server.drop_at_write = False
            self._server.drop_sessions()
        os.pwrite(self._fd, data, offset)

    def close(self) -> None:
        os.close(self._fd)

    def getAttrs(self) -> dict[str, int]:
        return _attrs(os.fstat(self._fd))

    def setAttrs(self, attrs: Any) -> None:
        pass


@implementer(ISFTPServer)
class _Files:
    """Read-write access to one directory tree, the login directory."""

    def __init__(self, home: Path, server: SftpServer) -> None:
        self._home = home
        self._server = server

    def _path(self, path: bytes) -> Path:
        text = path.decode()
        return self._home / text.lstrip("/") if text not in ("", ".") else self._home

    def gotVersion(self, otherVersion: int, extData: Any) -> dict[bytes, bytes]:
        return {}

    def openFile(self, filename: bytes, flags: int, attrs: Any) -> _File:
        return _File(self._path(filename), flags, self._server)

    def removeFile(self, filename: bytes) -> None:
        self._path(filename).unlink()

    def renameFile(self, oldpath: bytes, newpath: bytes) -> None:
        target = self._path(newpath)
        if target.exists():  # as OpenSSH: no rename over an existing file
            raise filetransfer.SFTPError(filetransfer.FX_FAILURE, "target exists")
        self._path(oldpath).rename(target)
        self._server.renamed.append(newpath.decode())

    def makeDirectory(self, path: bytes, attrs: Any) -> None:
        self._path(path).mkdir()

    def removeDirectory(self, path: bytes) -> None:
        self._path(path).rmdir()

    def openDirectory(self, path: bytes) -> Any:
        raise NotImplementedError

    def getAttrs(self, path: bytes, followLinks: bool) -> dict[str, int]:
        return _attrs(self._path(path).stat())

    def setAttrs(self, path: bytes, attrs: Any) -> None:
        pass

    def readLink(self, path: bytes) -> bytes:
        raise NotImplementedError

    def makeLink(self, linkPath: bytes, targetPath: bytes) -> None:
        raise NotImplementedError

    def realPath(self, path: bytes) -> bytes:
        return path

    def extendedRequest(self, extendedName: bytes, extendedData: bytes) -> bytes:
        raise NotImplementedError


class _User(avatar.ConchUser):
    def __init__(self, home: Path, server: SftpServer) -> None:
        avatar.ConchUser.__init__(self)
        self.home = home
        self.server = server
        self.channelLookup[b"session"] = session.SSHSession
        # The subsystem's "avatar" is what it serves: ISFTPServer(it) is it.
        self.subsystemLookup[b"sftp"] = lambda data, avatar: filetransfer.FileTransferServer(
            data, avatar=_Files(home, server))


@implementer(IRealm)
class _Realm:
    def __init__(self, server: SftpServer) -> None:
        self._server = server

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:
        self._server.logins.append(avatar_id.decode())
        home = self._server.root / avatar_id.decode()
        home.mkdir(exist_ok=True)
        return IConchUser, _User(home, self._server), lambda: None


@attrs.define
class SftpServer:
    root: Path
    host_key: keys.Key = attrs.field(factory=new_key)
    client_key: keys.Key | None = None
    port: int = 0
    listening: Any = None
    logins: list[str] = attrs.field(factory=list)
    renamed: list[str] = attrs.field(factory=list)
    drop_at_write: bool = False  # drop every session at the next write
    sessions: list[Any] = attrs.field(factory=list)

    @property
    def fingerprint(self) -> str:
        return "SHA256:" + self.host_key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")

    def start(self) -> None:
        portal = Portal(_Realm(self))
        portal.registerChecker(checkers.InMemoryUsernamePasswordDatabaseDontUse(bob=b"secret"))
        if self.client_key is not None:
            portal.registerChecker(SSHPublicKeyChecker(InMemorySSHKeyDB({b"bob": [self.client_key.public()]})))
        server = self

        class Factory(factory.SSHFactory):
            def buildProtocol(self, addr: Any) -> Any:
                built = factory.SSHFactory.buildProtocol(self, addr)
                server.sessions.append(built)
                return built

        ssh = Factory()
        ssh.portal = portal
        ssh.privateKeys = {b"ssh-ed25519": self.host_key}
        ssh.publicKeys = {b"ssh-ed25519": self.host_key.public()}
        ssh.primes = None
        self.listening = reactor.listenTCP(0, ssh, interface="127.0.0.1")
        self.port = self.listening.getHost().port

    def drop_sessions(self) -> None:
        for session in self.sessions:
            if session.transport is not None:
                session.transport.abortConnection()

    def files(self) -> dict[str, bytes]:
        home = self.root / "bob"
        return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def main() -> None:
    """``python -m tests.sftp_server ROOT``: serve until killed (for tests
    of the real daemon, whose reactor is in another process); prints the
    port and the host key's fingerprint, one line."""
    import sys

    server = SftpServer(Path(sys.argv[1]))
    server.start()
    print(server.port, server.fingerprint, flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
