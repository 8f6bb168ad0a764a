"""``twistd oseod``: command-line options and the wiring of the whole daemon."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
from twisted.application.service import IService
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import endpoints
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger
from twisted.python import usage

from . import __version__
from .admin.actions import OperatorActions
from .admin.api import AdminApi
from .auth.bearer import BearerTokens
from .auth.checkers import PasswordChain, UserStoreChecker
from .auth.htpasswd import PasswordFileChecker
from .auth.lockout import LockoutLimits, LockoutPortal, LoginLockout
from .auth.ldap import LdapChecker
from .auth.realm import AccountRealm
from .auth.secrets import SecretBox
from .auth.sshkeys import SshKeyChecker
from .auth.tokens import DigestChecker, TextTokenChecker
from .config import Config, ConfigError, ServerConfig, load_config, port_range
from .connections import GuardedFactory, process_budget
from .console.app import Console
from .console.gate import SessionLimits
from .core.accounts import AccountService
from .core.catalogue import Catalogue
from .core.deliverables import Deliverables
from .core.notifications import NotificationSubscriptions
from .core.ordering import OrderingService
from .core.production import ItemProgress
from .core.quotations import QuotationService
from .datadir import DataDir
from .forwarded import ClientAddresses
from .ftp.factory import install_ftp_avatars, make_ftp_factory
from .ftp.factory import refusal_answer as ftp_refusal
from .ftp.results import ResultsTree
from .ftp.tls import CertificatePair, FTPSSettings, reload_on_sighup
from .reactors import IDaemonReactor, daemon_reactor
from .results import ResultFiles
from .http.capabilities import CapabilitiesPresenter
from .http.downloads import Downloads
from .http.frontend import HttpFrontend
from .http.odata import ODataService
from .http.odata_token import TokenEndpoint
from .http.odata_orders import ODataOrders
from .http.operations import OseoOperations
from .http.options import OptionsPresenter
from .http.oseo import OseoEndpoint
from .http.site import OseodSite
from .http.site import refusal_answer as http_refusal
from .http.wsn import WsnOperations
from .inflight import finish_in_flight
from .jobs.engine import Engine
from .jobs.registry import ProcessorRegistry
from .listener import Listener
from .logs import GlobalLogTaming, default_observer
from .metrics import RequestMetrics
from .notify.callbacks import StatusCallbacks
from .notify.quotations import QuotationCallbacks
from .notify.mail import SmtpMailSender
from .notify.mails import MailChannel
from .notify.wsn import Notifications
from .notify.sender import OutboxSender
from .readiness import Readiness
from .sftp.hostkey import host_key, host_key_fingerprint
from .sftp.server import install_sftp_avatars, make_sftp_factory
from .sftp.server import refusal_answer as sftp_refusal
from .service import DaemonService, settle_heap
from .store.connection import Redis, RedisAddress
from .store.embedded import EmbeddedRedis
from .store.outage import RedisWatch
from .store.handback import JobHandBack
from .schedule.scheduler import TICK, PeriodicTask, Scheduler
from .store.jobs import JobStore
from .store.audit import AuditStore
from .store.leader import LeaderLock, TaskRuns
from .store.lockouts import LockoutStore
from .store.nonces import NonceStore
from .store.orders import OrderStore
from .store.outbox import CALLBACK, MAIL, OutboxStore
from .store.wsn import WSN, SubscriptionStore
from .store.quotations import QUOTATION, QuotationStore
from .store.sessions import SessionStore
from .store.sshkeys import SshKeyStore
from .store.stats import StatsStore
from .store.tokens import TokenStore
from .store.users import UserStore
from .threads import ThreadPools


log = Logger()


class Options(usage.Options):
    synopsis = ("[--config FILE] [--data-dir DIR] [--http ENDPOINT] [--ftp ENDPOINT] [--sftp ENDPOINT] "
                "[--admin ENDPOINT] [--redis URL]")
    longdesc = ("Runs the oseod OGC OSEO 1.0 ordering server. With no options: the demo setup "
                "(./var/oseod, HTTP on 127.0.0.1:8080, FTP on 127.0.0.1:2121, an embedded Redis).")
    optParameters = [
        ["config", "c", None, "TOML configuration file (default: the demo setup)."],
        ["data-dir", "d", None, "Data directory (default: [server] data_dir, ./var/oseod)."],
        ["http", None, None, "HTTP endpoint, e.g. tcp:8080:interface=127.0.0.1 (tcp:0 picks a port); an empty "
                             "string: no HTTP listener (a worker daemon; needs [server] public_url)."],
        ["ftp", None, None, "FTP endpoint, e.g. tcp:2121:interface=127.0.0.1; an empty string disables FTP."],
        ["sftp", None, None, "SFTP endpoint, e.g. tcp:2222:interface=127.0.0.1; default: [server] sftp "
                             "(empty: no SFTP)."],
        ["admin", None, None, "Endpoint of the operators' side (console, /admin/api/, /metrics), e.g. "
                              "tcp:8081:interface=127.0.0.1; default: the HTTP endpoint serves it too."],
        ["redis", None, None, "redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH[?db=N]; "
                              "default: an embedded redis-server in the data dir."],
        ["drain-seconds", None, None, "Seconds a SIGTERM keeps serving, not ready, before the daemon stops "
                                      "(default: [server] drain_seconds); 0 stops at once."],
    ]

    config: Config

    def postOptions(self) -> None:
        overrides: list[tuple[str, Any]] = [(key.replace("-", "_"), self[key])
                                            for key in ("data-dir", "http", "ftp", "sftp", "admin", "redis")
                                            if self[key] is not None]
        try:
            if self["drain-seconds"] is not None:
                overrides.append(("drain_seconds", _seconds("--drain-seconds", self["drain-seconds"])))
            self.config = load_config(self["config"], overrides)
            _check_endpoints(self.config)
        except ConfigError as e:
            # One line naming the key, not twistd's whole usage text.
            raise SystemExit(f"oseod: configuration error: {e}") from None


def _seconds(name: str, text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(name, f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ConfigError(name, f"not a number of seconds: {text!r}")
    return seconds


def _check_endpoints(config: Config) -> None:
    from twisted.internet import reactor

    server = config.server
    for name, description in (("server.http", server.http), ("server.ftp", server.ftp),
                              ("server.sftp", server.sftp), ("server.admin", server.admin)):
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
    reactor = daemon_reactor()

    config = options.config
    data_dir = DataDir(config.server.data_dir)
    # SIGTERM drains: not ready at once, serving on for [server] drain_seconds.
    # A plain `twistd -n oseod` logs through the daemon's own text observer
    # (the one `--logger oseod.logs.text_stdout` names): same lines, cheaper.
    root = DaemonService(reactor, readiness=Readiness(), drain_seconds=config.server.drain_seconds,
                         log_observer=default_observer(options.parent))
    # First, so the FTP module's chatter and forged lines are kept out of the
    # log however twistd was told to log (plain `twistd -n oseod` included).
    # Not undone at stop: the last lines (a failed start's cause) pass it too.
    root.step("log filter", GlobalLogTaming().start)
    root.step("data dir", data_dir.prepare, data_dir.release)
    root.step("admin token", data_dir.admin_token)
    digest_secrets = SecretBox(data_dir.secret_key) if config.auth.password_digest else None
    if digest_secrets is not None:
        root.step("secret key", digest_secrets.load)

    if config.server.redis:
        address = RedisAddress.from_config(config.server.redis, config.redis)
    else:
        embedded = EmbeddedRedis(data_dir.path, reactor)
        root.step("embedded redis-server", embedded.start, embedded.stop)
        address = embedded.address
    redis = Redis(address, command_timeout=config.redis.command_timeout, clock=reactor,
                  min_replicas=config.redis.min_replicas, wait_timeout=config.redis.wait_timeout)
    root.step("redis", redis.connect, redis.close)
    watch = RedisWatch(redis, reactor)
    root.step("redis watch", watch.start, watch.stop)
    # Named pools for the work that would block the reactor (oseod.threads);
    # stopped after every part that uses them.
    threads = ThreadPools.sized(IReactorFromThreads(reactor), disk=config.server.disk_threads,
                                cpu=config.server.cpu_threads, engine=config.server.engine_threads)
    root.step("thread pools", threads.start, threads.stop)

    listeners: dict[str, Listener] = {}
    # The same key seals OData orders' NotificationEpPasswords, digest or not:
    # read (or made) at the start, so a broken key file stops it rather than
    # failing each Submit with a NotificationEpPassword.
    notification_secrets = digest_secrets if digest_secrets is not None else SecretBox(data_dir.secret_key)
    if digest_secrets is None and config.odata.enabled:
        root.step("secret key", notification_secrets.load)
    parts = build_parts(config, redis, reactor, admin_token=data_dir.admin_token, digest_secrets=digest_secrets,
                        notification_secrets=notification_secrets,
                        listener_url=lambda scheme: listeners[scheme].url, results=data_dir.path / "results",
                        consumer=f"{socket.gethostname()}:{data_dir.path}", readiness=root.readiness,
                        threads=threads)
    root.step("password checkers", parts.passwords.start)
    # Steps stop last first, the drain's order: the periodic tasks (the
    # leader lock let go), the engine (no more claims, the jobs in hand
    # cancelled and left pending), those jobs handed back to the queue for
    # another daemon, then the outbox.
    if parts.mail is not None:
        root.step("e-mail", parts.mail.start)
    if config.notifications.send:
        root.step("outbox", parts.outbox.start, parts.outbox.stop)
    if config.processing.workers:
        root.step("jobs in hand", lambda: None, lambda: hand_back(JobHandBack(redis), parts.engine.consumer))
    root.step("order processing", parts.engine.start, parts.engine.stop)
    root.step("periodic tasks", parts.scheduler.start, parts.scheduler.stop)

    # Every listener's factory goes through the budget: connections per
    # client address and in all, below the process's open-file limit.
    budget = process_budget(config.server, reactor)

    guarded: list[GuardedFactory] = []

    def site(resource: Any, name: str) -> GuardedFactory:
        factory = budget.guard(OseodSite(resource, config.server.max_request_bytes,
                                         request_timeout=config.server.request_timeout,
                                         closing=root.readiness.is_draining), http_refusal, name)
        guarded.append(factory)
        return factory

    # Roles: a front daemon listens and has [processing] workers = 0; a
    # worker daemon may have no listener at all (http and ftp empty), or
    # only the operators' one ([server] admin) for probes and oseoctl.
    if config.server.admin:
        # The operators' side on a door of its own; the clients' listener
        # does not know it (404).
        if config.server.http:
            listeners["http"] = Listener("http", config.server.http,
                                         site(parts.frontend.client_resource(), "http"), reactor)
        listeners["admin"] = Listener("admin", config.server.admin, site(parts.frontend.operator_resource(), "admin"),
                                      reactor, url_scheme="http")
    elif config.server.http:
        listeners["http"] = Listener("http", config.server.http, site(parts.frontend.resource(), "http"), reactor)
    if config.server.ftp:
        ftps = None
        if config.server.ftp_tls != "off":
            # Read now, so that a missing file or a key that does not match
            # stops the start naming it; SIGHUP reads both again (a renewed
            # certificate serves the sessions that start after it).
            pair = CertificatePair(config.server.tls_certificate, config.server.tls_key)
            root.step("tls certificate", pair.load)
            undo: list[Callable[[], None]] = []
            root.step("SIGHUP reloads the tls certificate", lambda: undo.append(reload_on_sighup(pair, reactor)),
                      lambda: undo.pop()())
            ftps = FTPSSettings(config.server.ftp_tls, pair, reuse_required=config.server.ftp_tls_reuse == "required")
        ftp_factory = make_ftp_factory(parts.portal, passive_ports=port_range(config.server.ftp_passive_ports),
                                       max_connections=config.server.ftp_max_connections,
                                       idle_timeout=config.server.ftp_idle_timeout,
                                       login_timeout=config.server.ftp_login_timeout,
                                       public_host=config.server.ftp_public_host,
                                       max_sessions_per_user=config.server.ftp_max_sessions_per_user,
                                       metrics=parts.metrics, clock=reactor, closing=root.readiness.is_draining,
                                       ftps=ftps)
        ftp_guarded = budget.guard(ftp_factory, ftp_refusal, "ftp")
        guarded.append(ftp_guarded)
        listeners["ftp"] = Listener("ftp", config.server.ftp, ftp_guarded, reactor)
    if config.server.sftp:
        # The FTP sessions' count, so that [server] ftp_max_sessions_per_user spans both.
        sessions = ftp_factory.sessions_per_user if config.server.ftp else None
        sftp_factory = make_sftp_factory(parts.portal, None, idle_timeout=config.server.ftp_idle_timeout,
                                         clock=reactor, closing=root.readiness.is_draining,
                                         max_sessions_per_user=config.server.ftp_max_sessions_per_user,
                                         sessions_per_user=sessions, metrics=parts.metrics)

        def sftp_host_key() -> None:
            # Made in the data dir at first start, once the data dir is there.
            key = host_key(data_dir.path)
            sftp_factory.use_key(key)
            fingerprint = host_key_fingerprint(key)
            log.info("SFTP host key {fingerprint} ({file})", fingerprint=fingerprint,
                     file=data_dir.path / "ssh_host_ed25519_key.pub")
            parts.frontend.probes.details["sftp"] = {"host_key": fingerprint}

        root.step("sftp host key", sftp_host_key)
        sftp_guarded = budget.guard(sftp_factory, sftp_refusal, "sftp")
        guarded.append(sftp_guarded)
        listeners["sftp"] = Listener("sftp", config.server.sftp, sftp_guarded, reactor)
    # Stopped right after the listeners: what is in flight then finishes, at
    # most [server] request_timeout seconds.
    root.step("requests and transfers in flight", lambda: None,
              lambda: finish_in_flight(guarded, reactor, config.server.request_timeout))
    for listener in listeners.values():
        root.step(f"{listener.scheme} listener", listener.start, listener.stop)
    root.step("role", lambda: log_role(config, listeners))
    root.step("endpoints.json", lambda: data_dir.write_endpoints({k: v.url for k, v in listeners.items()}),
              data_dir.remove_endpoints)
    root.step("heap", settle_heap)
    return root


def log_role(config: Config, listeners: dict[str, Listener]) -> None:
    """One line saying which role this daemon plays in a deployment: a
    front takes requests, a worker makes the items, both do both."""
    clients = [name for name in ("http", "ftp", "sftp") if name in listeners]
    workers = config.processing.workers
    role = "both" if clients and workers else "front" if clients else "worker" if workers else "idle"
    log.info("role: {role} (client listeners: {clients}; [processing] workers = {workers})", role=role,
             clients=", ".join(clients) or "none", workers=workers)


async def hand_back(jobs: JobHandBack, consumer: str) -> None:
    handed = await jobs.hand_back(consumer)
    if handed:
        log.info("drain: {count} job(s) handed back to the queue for another daemon", count=handed)


@attrs.frozen
class Parts:
    """The daemon's object graph below its listeners (tests build it too)."""

    portal: Portal
    users: UserStore
    passwords: PasswordChain
    ordering: OrderingService
    engine: Engine
    scheduler: Scheduler
    outbox: OutboxSender
    mail: MailSetup | None
    metrics: RequestMetrics
    frontend: HttpFrontend
    actions: OperatorActions
    # OAuth2 bearer tokens: what POST /odata/v1/token (oseod.http.odata_token) issues.
    tokens: BearerTokens | None = None


def build_parts(config: Config, redis: Redis, reactor: IDaemonReactor, *, admin_token: Callable[[], str],
                digest_secrets: SecretBox | None, listener_url: Callable[[str], str], results: Path,
                consumer: str, threads: ThreadPools, readiness: Readiness | None = None,
                notification_secrets: SecretBox | None = None) -> Parts:
    """``notification_secrets``: seals the NotificationEpPasswords of OData
    orders (None: ``digest_secrets``);
    ``listener_url(scheme)``: where the listener of that scheme ended up;
    ``results``: where processors put the items' results; ``consumer``: this
    daemon's name on the job queue (the same across restarts, so that it
    takes back its own unfinished jobs); ``threads``: the daemon's thread
    pools; ``readiness``: what /ready says besides Redis's PING."""
    users = UserStore(redis, clock=reactor)
    realm = AccountRealm(users)
    sources = password_sources(config, users, reactor, threads)
    passwords = PasswordChain(sources)
    nonces, max_age = NonceStore(redis), config.auth.token_max_age_seconds
    metrics = RequestMetrics()
    audit = AuditStore(redis)
    # Who a client is, believing [server] trusted_proxies' forwarding headers only.
    clients = ClientAddresses(config.server.trusted_proxies)
    # One lock-out in front of every password check, whatever the transport.
    lockout = LoginLockout(LockoutStore(redis), reactor, LockoutLimits(
        per_user=config.auth.max_failures_per_user, per_address=config.auth.max_failures_per_address,
        seconds=config.auth.lockout_minutes * 60), audit=audit, observer=metrics)
    # DigestChecker stays registered with digests off, to say so to the client.
    ssh_keys = SshKeyStore(redis)
    token_store = TokenStore(redis)
    tokens = BearerTokens(token_store, users, reactor, lifetime=config.odata.token_seconds,
                          max_per_user=config.odata.max_tokens_per_user)
    portal = LockoutPortal(realm, [passwords, DigestChecker(users, nonces, digest_secrets, reactor, max_age),
                                   TextTokenChecker(passwords, nonces, reactor, max_age),
                                   SshKeyChecker(ssh_keys, users), tokens.checker()],
                           lockout)

    catalogue = Catalogue(config)
    # Each collection's processor, built first: the Submit checks (identifiers
    # it claims, items it refuses), GetQuotation and the engine all ask it.
    processors = ProcessorRegistry(config, reactor, reactor, threads=threads)
    orders = OrderStore(redis, mail=bool(config.email.smtp_host))
    # The engine writes its items' progress; accepted orders wake it and
    # cancelled ones stop its work on them (the dispatcher).
    engine = Engine(ItemProgress(orders, config, reactor), JobStore(redis), config, reactor, reactor,
                    processors=processors, results=results, consumer=consumer, threads=threads)
    ordering = OrderingService(orders, config, reactor, catalogue=catalogue, resolve=processors.resolve,
                               check_item=processors.check_item, dispatcher=engine)
    task_runs = TaskRuns(redis)
    scheduler = Scheduler(LeaderLock(redis, consumer), reactor, [
        PeriodicTask("expire results", config.processing.expire_interval,
                     lambda: ordering.expire_results(engine.clean)),
        PeriodicTask("purge old orders", config.processing.purge_interval, ordering.purge_final_orders,
                     fenced=True),
        PeriodicTask("end subscriptions", config.processing.terminate_interval, ordering.terminate_subscriptions),
        PeriodicTask("index older orders", TICK, ordering.index_older_orders, fenced=True),
    ], runs=task_runs)

    deliverables = Deliverables(ordering, results, threads)
    install_ftp_avatars(realm, lambda account: ResultsTree(account, ordering, deliverables, metrics, reactor))
    install_sftp_avatars(realm, lambda account: ResultFiles(account, ordering, deliverables, metrics, reactor),
                         reactor)

    result_url = result_urls(config.server, listener_url)

    # Items are priced by their collection's processor when it provides IQuotes.
    quotations = QuotationService(QuotationStore(redis), ordering, config, reactor, quote_item=processors.quote)
    capabilities = CapabilitiesPresenter(config, catalogue)
    operations = OseoOperations(ordering=ordering, capabilities=capabilities,
                                options=OptionsPresenter(catalogue, ordering.checker.resolve),
                                result_urls=result_url, deliverables=deliverables, reactor=reactor,
                                threads=threads, quotations=quotations)
    oseo = OseoEndpoint(portal=portal, operations=operations, capabilities=capabilities, metrics=metrics,
                        clock=reactor, threads=threads, public_url=config.server.public_url,
                        anonymous_capabilities=config.auth.anonymous_capabilities, clients=clients,
                        max_items_per_order=config.orders.max_items_per_order)
    accounts = AccountService(users, reactor, config.auth.min_password_length, secrets=digest_secrets,
                              threads=threads)
    outbox_store = OutboxStore(redis)
    password_file = next((c for _, c in sources if isinstance(c, PasswordFileChecker)), None)
    actions = OperatorActions(config=config, clock=reactor, ordering=ordering, orders=orders, accounts=accounts,
                              audit=audit, stats=StatsStore(redis), outbox=outbox_store,
                              leader=scheduler.leader, task_runs=task_runs,
                              task_names=[t.name for t in scheduler.tasks], processing=engine, redis=redis,
                              file_accounts=password_file.accounts if password_file is not None else None)
    admin = AdminApi(token=admin_token, actions=actions, metrics=metrics, clock=reactor, clients=clients,
                     ssh_keys=ssh_keys, tokens=tokens)
    downloads = Downloads(portal=portal, deliverables=deliverables, metrics=metrics, clock=reactor, threads=threads,
                          clients=clients)
    mailer = SmtpMailSender(config.email, reactor) if config.email.smtp_host else None
    # Seals (OData's side) and opens (the outbox's) NotificationEpPasswords.
    odata_secrets = notification_secrets if notification_secrets is not None else digest_secrets
    channels: dict[str, Any] = {
        # OData orders' NotificationEndpoints too: their passwords opened with
        # notification_secrets, mailto: ones sent by the mailer.
        CALLBACK: StatusCallbacks(ordering, reactor, threads=threads, timeout=config.notifications.timeout,
                                  allowed_networks=config.notifications.allowed_networks,
                                  secrets=odata_secrets,
                                  listings=deliverables.listings, mailer=mailer, mail_from=config.email.sender,
                                  service=config.service.title),
        QUOTATION: QuotationCallbacks(reactor, reactor, threads=threads, timeout=config.notifications.timeout,
                                      allowed_networks=config.notifications.allowed_networks),
    }
    mail: MailSetup | None = None
    if mailer is not None:
        channel = MailChannel(config, ordering, users, mailer, result_url=result_url,
                              console_base=console_base(config.server, listener_url))
        mail = MailSetup(mailer, channel)
        channels[MAIL] = channel
    subscriptions = SubscriptionStore(redis)
    operations.handlers.update(WsnOperations(NotificationSubscriptions(
        subscriptions, reactor, config.notifications.allowed_networks)).handlers())
    http_side = http_base(config.server, listener_url)
    channels[WSN] = Notifications(subscriptions, reactor, threads=threads, timeout=config.notifications.timeout,
                                  allowed_networks=config.notifications.allowed_networks,
                                  producer=lambda: config.server.public_url or f"{http_side()}/oseo")
    outbox = OutboxSender(outbox_store, channels, reactor, max_attempts=config.notifications.max_attempts,
                          retry_delay=config.notifications.retry_delay, timeout=config.notifications.timeout,
                          concurrency=config.notifications.concurrency,
                          per_destination=config.notifications.per_destination)
    # The operator console (/console/): admins through the same portal, sessions in Redis.
    console = Console(portal=portal, actions=actions, store=SessionStore(redis), clock=reactor,
                      limits=SessionLimits(idle_seconds=config.console.idle_minutes * 60,
                                           max_seconds=config.console.max_hours * 3600),
                      live_interval=config.console.live_interval,
                      public=console_base(config.server, listener_url), clients=clients, metrics=metrics)
    # /odata/v1: the same ordering core in OData's JSON ([odata] enabled).
    odata = ODataService(
        portal=portal, metrics=metrics, clock=reactor, clients=clients,
        public_base=http_base(config.server, listener_url)() if config.server.public_url else "",
        token_endpoint=TokenEndpoint(portal=portal, tokens=tokens, clock=reactor, metrics=metrics, clients=clients),
        orders=ODataOrders(ordering=ordering, catalogue=catalogue, deliverables=deliverables,
                           result_urls=result_url, config=config, version=__version__,
                           secrets=odata_secrets),
    ) if config.odata.enabled else None
    frontend = HttpFrontend(oseo=oseo, admin=admin, redis=redis, metrics=metrics, processing=engine,
                            downloads=downloads, sources=(outbox,), console=console, readiness=readiness,
                            ping_timeout=config.redis.command_timeout, clock=reactor, odata=odata)
    return Parts(portal, users, passwords, ordering, engine, scheduler, outbox, mail, metrics, frontend,
                 actions=actions, tokens=tokens)


def http_base(server: ServerConfig, listener_url: Callable[[str], str]) -> Callable[[], str]:
    """Where clients reach the HTTP side: beside [server] public_url (its
    /oseo taken off), else the listener's own address."""
    if server.public_url:
        parts = urlsplit(server.public_url)
        prefix = parts.path[:-len("/oseo")] if parts.path.endswith("/oseo") else ""
        public = f"{parts.scheme}://{parts.netloc}{prefix}"
        return lambda: public
    return lambda: listener_url("http")


def console_base(server: ServerConfig, listener_url: Callable[[str], str]) -> Callable[[], str]:
    """Where operators reach the console: the admin listener when [server]
    admin puts it on one, else the HTTP side."""
    if server.admin:
        return lambda: listener_url("admin")
    return http_base(server, listener_url)


def result_urls(server: ServerConfig, listener_url: Callable[[str], str]) -> Callable[
        [str, str, str | None, str | None], str]:
    """Where clients download an item's results: ``url(protocol, order_id,
    item_id, file)``, the item's directory when ``file`` is None; with
    ``item_id`` None, the order's package ``file``. FTP serves
    each user's tree from its root, HTTP under /results beside /oseo;
    protocols without a listener of their own point at HTTP. The public
    names of [server] come first, the listeners' own addresses otherwise."""
    bases = {"ftp": (lambda: server.public_ftp_url or listener_url("ftp")), "http": http_base(server, listener_url)}

    def url(protocol: str, order_id: str, item_id: str | None, file: str | None) -> str:
        scheme = protocol if protocol in ("http", "ftp") else "http"
        where = "" if scheme == "ftp" else "/results"
        path = "/".join(quote(part, safe="") for part in (order_id, item_id) if part is not None)
        return f"{bases[scheme]()}{where}/{path}/" + (quote(file, safe="") if file else "")

    return url


@attrs.frozen
class MailSetup:
    """E-mail, when [email] smtp_host is set: what its start step checks."""

    mailer: SmtpMailSender
    channel: MailChannel

    def start(self) -> None:
        self.mailer.start()
        self.channel.start()


def password_sources(config: Config, users: UserStore, reactor: IDaemonReactor,
                     threads: ThreadPools) -> list[tuple[str, ICredentialsChecker]]:
    """The [auth] checkers, in their order."""
    cache = config.auth.password_cache_seconds
    sources: list[tuple[str, ICredentialsChecker]] = []
    for position, name in enumerate(config.auth.checkers, 1):
        checker: ICredentialsChecker
        if name == "redis":
            # Its decoy check for unknown names is for the last source only.
            checker = UserStoreChecker(users, reactor, cache, threads=threads,
                                       decoy=position == len(config.auth.checkers))
        elif name == "file":
            checker = PasswordFileChecker(config.auth.password_file, reactor, cache, threads=threads, logins=users)
        else:
            checker = LdapChecker(config.ldap, reactor, cache, logins=users)
        sources.append((name, checker))
    return sources
