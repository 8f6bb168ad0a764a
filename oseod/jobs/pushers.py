"""The pushers of the protocols oseod pushes results over
(onlineDataDelivery), by protocol, made from the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..config import Config
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .push import FtpPusher, IPusher
from .push_ftps import FtpsPusher
from .push_sftp import SftpPusher


def default_pushers(config: Config, reactor: IDaemonReactor, clock: IReactorTime, threads: ThreadPools) -> dict[str, IPusher]:
    """The pushers of the protocols oseod pushes over, by protocol."""
    common: dict[str, Any] = dict(connect_timeout=config.delivery.connect_timeout,
                                  idle_timeout=config.delivery.idle_timeout,
                                  allowed_networks=config.notifications.allowed_networks,
                                  max_sessions_per_server=config.delivery.max_sessions_per_server)
    data_dir = Path(config.server.data_dir)
    return {"ftp": FtpPusher(reactor, clock, **common),
            "ftps": FtpsPusher(reactor, clock, threads=threads, ca_file=config.delivery.ca_file, **common),
            "sftp": SftpPusher(reactor, clock, known_hosts=data_dir / "known_hosts",
                               client_key=data_dir / "push_id_ed25519", **common)}
