"""``twistd oseod``: command-line options and the wiring of the whole daemon."""

from __future__ import annotations

from twisted.application.service import IService
from twisted.cred.portal import Portal
from twisted.internet import endpoints
from twisted.python import usage

from .admin.api import AdminApi
from .auth.checkers import UserStoreChecker
from .auth.realm import AccountRealm
from .config import Config, ConfigError, load_config
from .core.accounts import AccountService
from .core.catalogue import Catalogue
from .datadir import DataDir
from .ftp.factory import install_ftp_avatars, make_ftp_factory
from .http.capabilities import CapabilitiesPresenter
from .http.frontend import HttpFrontend
from .http.oseo import OseoEndpoint
from .http.site import OseodSite
from .listener import Listener
from .metrics import RequestMetrics
from .service import DaemonService
from .store.connection import Redis, RedisAddress
from .store.embedded import EmbeddedRedis
from .store.users import UserStore


class Options(usage.Options):
    synopsis = "[--config FILE] [--data-dir DIR] [--http ENDPOINT] [--ftp ENDPOINT] [--redis URL]"
    longdesc = ("Runs the oseod OGC OSEO 1.0 ordering server. With no options: the demo setup "
                "(./var/oseod, HTTP on 127.0.0.1:8080, FTP on 127.0.0.1:2121, an embedded Redis).")
    optParameters = [
        ["config", "c", None, "TOML configuration file (default: the demo setup)."],
        ["data-dir", "d", None, "Data directory (default: [server] data_dir, ./var/oseod)."],
        ["http", None, None, "HTTP endpoint, e.g. tcp:8080:interface=127.0.0.1 (tcp:0 picks a port)."],
        ["ftp", None, None, "FTP endpoint, e.g. tcp:2121:interface=127.0.0.1; an empty string disables FTP."],
        ["redis", None, None, "redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH[?db=N]; "
                              "default: an embedded redis-server in the data dir."],
    ]

    config: Config

    def postOptions(self) -> None:
        overrides = [(key.replace("-", "_"), self[key]) for key in ("data-dir", "http", "ftp", "redis")
                     if self[key] is not None]
        try:
            self.config = load_config(self["config"], overrides)
            _check_endpoints(self.config)
        except ConfigError as e:
            # One line naming the key, not twistd's whole usage text.
            raise SystemExit(f"oseod: configuration error: {e}") from None


def _check_endpoints(config: Config) -> None:
    from twisted.internet import reactor

    server = config.server
    for name, description in (("server.http", server.http), ("server.ftp", server.ftp)):
        if description:
            try:
                endpoints.serverFromString(reactor, description)
            except Exception as e:  # Twisted raises ValueError, TypeError, KeyError...
                raise ConfigError(name, f"bad endpoint {description!r}: {e}") from None
    if server.redis:
        try:
            RedisAddress.from_url(server.redis)
        except ValueError as e:
            raise ConfigError("server.redis", str(e)) from None


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = options.config
    data_dir = DataDir(config.server.data_dir)
    root = DaemonService(reactor)
    root.step("data dir", data_dir.prepare, data_dir.release)
    root.step("admin token", data_dir.admin_token)

    if config.server.redis:
        address = RedisAddress.from_url(config.server.redis)
    else:
        embedded = EmbeddedRedis(data_dir.path, reactor)
        root.step("embedded redis-server", embedded.start, embedded.stop)
        address = embedded.address
    redis = Redis(address)
    root.step("redis", redis.connect, redis.close)

    users = UserStore(redis)
    realm = AccountRealm(users)
    install_ftp_avatars(realm)
    portal = Portal(realm, [UserStoreChecker(users, reactor, config.auth.password_cache_seconds)])
    metrics = RequestMetrics()

    oseo = OseoEndpoint(portal=portal, capabilities=CapabilitiesPresenter(config, Catalogue(config)),
                        metrics=metrics, clock=reactor, public_url=config.server.public_url,
                        anonymous_capabilities=config.auth.anonymous_capabilities)
    admin = AdminApi(token=data_dir.admin_token, accounts=AccountService(users, reactor, config.auth.min_password_length), metrics=metrics,
                     clock=reactor)
    frontend = HttpFrontend(oseo=oseo, admin=admin, redis=redis, metrics=metrics)

    listeners = [Listener("http", config.server.http, OseodSite(frontend.resource(), config.server.max_request_bytes),
                          reactor)]
    if config.server.ftp:
        listeners.append(Listener("ftp", config.server.ftp, make_ftp_factory(portal), reactor))
    for listener in listeners:
        root.step(f"{listener.scheme} listener", listener.start, listener.stop)
    root.step("endpoints.json", lambda: data_dir.write_endpoints({l.scheme: l.url for l in listeners}),
              data_dir.remove_endpoints)
    return root
