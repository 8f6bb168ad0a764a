# mypy: untyped-calls-exclude=twisted.protocols.ftp
"""What the daemon wires: the FTP listener's factory and the FTP avatars."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.protocols import ftp

from ..auth.realm import AccountRealm
from ..connections import Refusal
from ..metrics import RequestMetrics
from ..model.accounts import Account
from .protocol import OseodFTP
from .shell import ReadOnlyShell
from .tls import FTPSSettings
from .tree import EmptyTree, IDeliverableTree

DEFAULT_BANNER = "oseod FTP server ready"

TreeSource = Callable[[Account], IDeliverableTree]


def _empty_tree(account: Account) -> IDeliverableTree:
    return EmptyTree()


class OseodFTPFactory(ftp.FTPFactory):
    """The stock factory with safe defaults: no anonymous login (a USER
    "anonymous" is checked like any other name, and fails unless such an
    account exists), and a banner that does not name the software version."""

    protocol = OseodFTP
    allowAnonymous = False
    welcomeMessage = DEFAULT_BANNER
    noisy = False  # the Listener logs where it listens
    # The IPv4 address PASV announces instead of the control connection's
    # local one (behind NAT); "" keeps the local one.
    public_host = ""
    max_sessions_per_user = 0  # 0: no limit
    # Seconds a connection has to log in (0: only the idle timeout), on this
    # clock (None: the reactor).
    login_timeout = 0
    clock: IReactorTime | None = None
    metrics: RequestMetrics | None = None  # where sessions' request lines go
    # Whether the daemon drains: new logins then get 421 (None: never).
    closing: Callable[[], bool] | None = None
    ftps: FTPSSettings | None = None  # None: no FTPS (AUTH answers 502)

    def __init__(self, portal: Portal) -> None:
        ftp.FTPFactory.__init__(self, portal)
        self.sessions_per_user: dict[str, int] = {}


def refusal_answer(refusal: Refusal) -> bytes:
    """The one line a connection refused by the connection limits gets."""
    return f"421 {refusal.reason}\r\n".encode()


def make_ftp_factory(
    portal: Portal,
    *,
    passive_ports: range | None = None,
    max_connections: int = 1000,
    idle_timeout: int = 600,
    banner: str = DEFAULT_BANNER,
    public_host: str = "",
    max_sessions_per_user: int = 0,
    login_timeout: int = 30,
    clock: IReactorTime | None = None,
    metrics: RequestMetrics | None = None,
    closing: Callable[[], bool] | None = None,
    ftps: FTPSSettings | None = None,
) -> OseodFTPFactory:
    """The factory for ``strports.service(endpoint, ...)``.

    ``portal`` is the daemon's one Portal; its realm must have the FTP
    avatars (:func:`install_ftp_avatars`). ``passive_ports`` is the range
    PASV/EPSV ports are taken from (for a firewall; default: any free port).
    Past ``max_connections`` control connections a client gets 421;
    ``idle_timeout`` seconds without a command closes a session; one that
    has not logged in ``login_timeout`` seconds after it connected gets 421
    and is closed (``clock`` measures both; default: the reactor).
    ``public_host`` (IPv4) is the address PASV announces, behind NAT.
    One account may hold ``max_sessions_per_user`` sessions at once (0: any).
    ``metrics`` gets a request line per login (refused ones too) and logout.
    While ``closing()`` (the daemon drains), a new connection or login gets
    421 and is closed; sessions already logged in go on.
    ``ftps``: explicit FTPS (AUTH TLS), its mode and certificate.
    """
    if "\r" in banner or "\n" in banner:
        raise ValueError("the FTP banner must be one line")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections}")
    if idle_timeout < 1:
        raise ValueError(f"idle_timeout must be at least 1 second, not {idle_timeout}")
    if passive_ports is not None and (
        len(passive_ports) == 0 or passive_ports.step != 1 or passive_ports.start < 1 or passive_ports.stop > 65536
    ):
        raise ValueError(f"passive_ports must be a non-empty range of ports within 1-65535, not {passive_ports}")
    factory = OseodFTPFactory(portal)
    factory.welcomeMessage = banner
    # Twisted's class default is None, which mypy takes for the attribute's type.
    factory.connectionLimit = max_connections  # type: ignore[assignment]
    factory.timeOut = idle_timeout
    if login_timeout < 1:
        raise ValueError(f"login_timeout must be at least 1 second, not {login_timeout}")
    factory.login_timeout = login_timeout
    factory.clock = clock
    if max_sessions_per_user < 0:
        raise ValueError(f"max_sessions_per_user must be 0 or more, not {max_sessions_per_user}")
    factory.max_sessions_per_user = max_sessions_per_user
    factory.metrics = metrics
    factory.closing = closing
    factory.ftps = ftps
    if public_host:
        if len(public_host.split(".")) != 4 or not all(p.isdigit() and int(p) < 256 for p in public_host.split(".")):
            raise ValueError(f"public_host must be an IPv4 address, not {public_host!r}")
        factory.public_host = public_host
    if passive_ports is not None:
        factory.passivePortRange = passive_ports
    return factory


def install_ftp_avatars(realm: AccountRealm, trees: TreeSource = _empty_tree) -> None:
    """Make ``realm`` answer FTP logins with a :class:`ReadOnlyShell` over
    ``trees(account)`` (an empty tree until deliveries are published)."""
    realm.register(ftp.IFTPShell, lambda account: ReadOnlyShell(account, trees(account)))
