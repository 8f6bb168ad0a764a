"""The configuration's keys: each section a frozen attrs class, each key
with its default and its checker from :mod:`oseod.config_checks`
(:mod:`oseod.config` reads a file into them; :mod:`oseod.config_rules`
holds the rules across keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from . import config_checks as checks
from .config_checks import Check, ConfigError
from .model.mailevents import MAIL_EVENTS

ORDER_TYPES = ("PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "MASSIVE_ORDER", "TASKING_ORDER")
ONLINE_PROTOCOLS = ("ftp", "http", "https", "sftp", "ftps")
PUSH_PROTOCOLS = ("ftp", "ftps", "sftp")
PACKAGING_FORMATS = ("zip", "tar", "tgz", "bzip2")
DEMO_COLLECTION_ID = "urn:oseod:demo"


T = TypeVar("T")


def key(default: T, check: Check, *, required: bool = False) -> T:
    """An attrs field that the loader fills from TOML through ``check``."""
    return attrs.field(default=default, metadata={"check": check, "required": required})


@attrs.frozen
class ServerConfig:
    data_dir: str = key("var/oseod", checks.nonempty_string)
    # Empty: no listener for clients (a worker daemon); [server] admin may
    # still give operators /health, /ready, /metrics and oseoctl's API.
    http: str = key("tcp:8080:interface=127.0.0.1", checks.string)
    ftp: str = key("tcp:2121:interface=127.0.0.1", checks.string)  # empty: no FTP listener
    redis: str = key("", checks.string)  # empty: the daemon runs its own redis-server
    # The URL clients use to reach /oseo, when a proxy sits in front; empty: taken
    # from each request's Host header. Result URLs over HTTP (/results/...) are
    # made beside it.
    public_url: str = key("", checks.public_url("http", "https"))
    # ftp://HOST[:PORT] clients reach the FTP listener at (a DNS name, NAT), for
    # the result URLs; empty: the listener's own address.
    public_ftp_url: str = key("", checks.public_url("ftp"))
    max_request_bytes: int = key(10 * 1024 * 1024, checks.integer(1024))
    ftp_passive_ports: str = key("", checks.port_range_text)
    # FTP control connections at once. Not 200 as it was: with 64 per address,
    # four addresses would have locked everybody else out; the open-file
    # budget (max_connections) keeps room for each session's data connection.
    ftp_max_connections: int = key(1000, checks.integer(1))
    ftp_idle_timeout: int = key(600, checks.integer(10))
    ftp_public_host: str = key("", checks.ipv4_or_empty)
    ftp_max_sessions_per_user: int = key(10, checks.integer(0))
    # An FTP connection that has not logged in within this many seconds is closed.
    ftp_login_timeout: int = key(30, checks.integer(1))
    # FTPS (explicit, RFC 4217: AUTH TLS) on the FTP listener: "off", "optional",
    # or "required" (no login and no data connection without TLS). Needs
    # tls_certificate and tls_key.
    ftp_tls: str = key("off", checks.choice("off", "optional", "required"))
    # "required": a data connection must resume the control connection's TLS
    # session (vsftpd's require_ssl_reuse; Python's ftplib never does).
    ftp_tls_reuse: str = key("off", checks.choice("off", "required"))
    # The server's certificate (PEM, with its chain) and private key, for FTPS;
    # reloaded on SIGHUP.
    tls_certificate: str = key("", checks.string)
    tls_key: str = key("", checks.string)
    # SFTP (SSH, read-only results tree) listener, a Twisted endpoint string,
    # e.g. tcp:2222:interface=127.0.0.1; empty: none.
    sftp: str = key("", checks.string)
    # Where the operators' side (the console, /admin/api/, /metrics) listens, a
    # Twisted endpoint string; empty: on the main HTTP listener, beside /oseo.
    admin: str = key("", checks.string)
    # Only from these CIDRs (a reverse proxy) are X-Forwarded-For and Forwarded
    # believed: the client address of lock-outs, audit, transfer logs and limits.
    trusted_proxies: tuple[str, ...] = key((), checks.list_of(checks.network))
    # Connections one client address may hold open at once, on HTTP and on FTP.
    max_connections_per_address: int = key(64, checks.integer(1))
    # Connections of all clients together; 0: derived from the process's file
    # limit, with room left for Redis, result files and data connections.
    max_connections: int = key(0, checks.integer(0))
    # A whole HTTP request, head and body, must arrive within this many seconds
    # (a deadline, not an idle timeout that each trickled byte would reset).
    request_timeout: float = key(30.0, checks.number(1.0))
    # On SIGTERM: not ready at once (/ready answers 503), still serving for
    # this many seconds so load balancers stop sending, then drained.
    drain_seconds: float = key(10.0, checks.number(0.0))
    # Threads for the file work of requests (listings and stat for
    # DescribeResultAccess and downloads), for the engine's (result files,
    # clean-up, packages: few, as each takes turns at the GIL with the
    # requests) and for work that holds a core (password hashes, large
    # request bodies): pools apart, so that a login never waits behind a
    # package build, nor a download's open behind result files.
    disk_threads: int = key(8, checks.integer(1, 256))
    engine_threads: int = key(2, checks.integer(1, 256))
    cpu_threads: int = key(2, checks.integer(1, 64))


@attrs.frozen
class AuthConfig:
    anonymous_capabilities: bool = key(True, checks.boolean)
    # A successful password check is remembered this long, so that scrypt's
    # deliberate slowness is paid once per client rather than once per request.
    password_cache_seconds: float = key(60.0, checks.number(0.0))
    # Shorter passwords are refused; passwords shorter than 12 are accepted
    # with a warning to the operator who set them.
    min_password_length: int = key(1, checks.integer(1, 1024))
    # WS-Security PasswordDigest tokens. They need the password itself at login,
    # so while this is on every password set is also kept encrypted with
    # DATA_DIR/secret.key; off: no such secrets are stored, digest tokens are refused.
    password_digest: bool = key(True, checks.boolean)
    # A UsernameToken's Created may be this many seconds old, and this far ahead
    # of the server's clock (skew); its Nonce is remembered for twice as long.
    token_max_age_seconds: int = key(300, checks.integer(1, 3600))
    # Where user names and passwords are checked, in this order: the first
    # that accepts wins. "redis": the accounts oseoctl manages; "file":
    # password_file; "ldap": the [ldap] directory.
    checkers: tuple[str, ...] = key(("redis",), checks.list_of(checks.choice("redis", "file", "ldap")))
    # htpasswd-style NAME:HASH[:GROUP] lines (bcrypt or oseod scrypt hashes).
    password_file: str = key("", checks.string)
    # Failed logins within lockout_minutes that lock a user name, and a client
    # address, out of every way in (SOAP, HTTP, FTP, SFTP, the console) until
    # the window ends, even with the right password. Counted in Redis, so the
    # daemons sharing it count together.
    max_failures_per_user: int = key(5, checks.integer(1))
    max_failures_per_address: int = key(20, checks.integer(1))
    lockout_minutes: float = key(15.0, checks.number(1.0))


@attrs.frozen
class LdapConfig:
    # ldap://HOST[:PORT] or ldaps://HOST[:PORT] (certificate and host name verified).
    url: str = key("", checks.string)
    # PEM file of the CAs that sign the directory's certificate; "": the system's.
    ca_file: str = key("", checks.string)
    # Either bind as the user at once, the name put in place of {user}...
    user_dn_template: str = key("", checks.string)
    # ...or search for user_attribute=NAME under user_base, then bind as the entry found.
    user_base: str = key("", checks.string)
    user_attribute: str = key("uid", checks.nonempty_string)
    # Who searches ("": anonymously).
    service_dn: str = key("", checks.string)
    service_password: str = key("", checks.string)
    # Groups (groupOfNames, groupOfUniqueNames) listing the user as member,
    # under this; mapped by [ldap.groups] (group DN = oseod group, the first
    # that matches wins), admins are the members of admin_groups.
    group_base: str = key("", checks.string)
    groups: Mapping[str, str] = key(attrs.Factory(dict), checks.str_table)
    admin_groups: tuple[str, ...] = key((), checks.list_of(checks.nonempty_string))
    email_attribute: str = key("mail", checks.nonempty_string)
    timeout: float = key(10.0, checks.number(0.1))


@attrs.frozen
class ServiceIdentificationConfig:
    title: str = key("oseod ordering service", checks.string)
    abstract: str = key("OGC OSEO 1.0 ordering service for Earth Observation products.", checks.string)
    keywords: tuple[str, ...] = key(("OSEO", "ordering", "Earth Observation"), checks.list_of(checks.string))
    fees: str = key("NONE", checks.string)
    access_constraints: tuple[str, ...] = key(("NONE",), checks.list_of(checks.string))


@attrs.frozen
class ProviderConfig:
    name: str = key("oseod demo provider", checks.nonempty_string)
    site: str = key("", checks.string)
    individual_name: str = key("", checks.string)
    position_name: str = key("", checks.string)
    phone: str = key("", checks.string)
    email: str = key("", checks.string)
    delivery_point: str = key("", checks.string)
    city: str = key("", checks.string)
    administrative_area: str = key("", checks.string)
    postal_code: str = key("", checks.string)
    country: str = key("", checks.string)


@attrs.frozen
class OrdersConfig:
    moderation: str = key("auto", checks.choice("auto", "manual"))
    item_availability_days: int = key(10, checks.integer(1))
    max_items_per_order: int = key(200, checks.integer(1))
    max_active_items_per_user: int = key(400, checks.integer(1))
    retention_days: int = key(0, checks.integer(0))


@attrs.frozen
class ProcessingConfig:
    # 0: this daemon takes orders and leaves their processing to the other
    # daemons on the same Redis (a front daemon).
    workers: int = key(8, checks.integer(0, 1024))
    max_attempts: int = key(3, checks.integer(1))
    retry_delay: float = key(30.0, checks.number(0.0))
    lease_seconds: float = key(60.0, checks.number(0.1))
    expire_interval: float = key(600.0, checks.number(0.0))
    purge_interval: float = key(3600.0, checks.number(0.0))
    terminate_interval: float = key(600.0, checks.number(0.0))


@attrs.frozen
class RedisConfig:
    # Every Redis call made for a client waits at most this long (seconds):
    # past it the client gets a retryable answer (503), never a hang.
    command_timeout: float = key(2.0, checks.number(0.1))
    # 1 or more: every write a client is told about waits (WAIT) until this
    # many replicas have it, at most wait_timeout seconds; 0: no waiting.
    min_replicas: int = key(0, checks.integer(0, 16))
    wait_timeout: float = key(0.5, checks.number(0.01))
    # TLS (rediss://): the CAs that sign the server's certificate ("": the
    # system's), and a client certificate and key for servers that ask one.
    ca_file: str = key("", checks.string)
    certificate: str = key("", checks.string)
    private_key: str = key("", checks.string)
    # The sentinels' own password, when it differs from the data nodes'.
    sentinel_password: str = key("", checks.string)


@attrs.frozen
class ConsoleConfig:
    # A console session ends after this long without a request, and in any
    # case this long after its login.
    idle_minutes: float = key(30.0, checks.number(1.0))
    max_hours: float = key(12.0, checks.number(0.1))
    # Deprecated: [auth] max_failures_per_user, max_failures_per_address and
    # lockout_minutes (the lock-out now guards every way in). Each still
    # applies when [auth] does not set its key.
    max_failures_per_user: int = key(5, checks.integer(1))
    max_failures_per_address: int = key(20, checks.integer(1))
    window_minutes: float = key(15.0, checks.number(1.0))
    # How often the overview's live counters are sent, in seconds.
    live_interval: float = key(3.0, checks.number(0.5))


@attrs.frozen
class NotificationsConfig:
    allowed_networks: tuple[str, ...] = key((), checks.list_of(checks.network))
    max_attempts: int = key(8, checks.integer(1))
    retry_delay: float = key(5.0, checks.number(0.0))
    timeout: float = key(30.0, checks.number(0.1))
    # false: this daemon queues what is to be sent (in Redis, with the
    # changes) and leaves the sending to the other daemons on the same Redis.
    send: bool = key(True, checks.boolean)
    # Messages being sent at once, and of those to one destination (a host).
    concurrency: int = key(256, checks.integer(1, 10_000))
    per_destination: int = key(32, checks.integer(1, 10_000))


@attrs.frozen
class DeliveryConfig:
    # Pushes to the client's own server (onlineDataDelivery): seconds to wait
    # for the connection, and for any sign of life once connected (a reply,
    # or room to send more of a file).
    connect_timeout: float = key(30.0, checks.number(0.1))
    idle_timeout: float = key(120.0, checks.number(0.1))
    # Sessions this daemon opens at once to one server (host, port, user).
    max_sessions_per_server: int = key(2, checks.integer(1, 64))
    # ftps pushes: PEM file of the CAs that sign the client servers'
    # certificates; "": the system's. (sftp host keys: the order's
    # fingerprint, else DATA_DIR/known_hosts.)
    ca_file: str = key("", checks.string)


@attrs.frozen
class ODataConfig:
    """/odata/v1: ODIP production orders, LTA orders and batch orders as JSON."""

    enabled: bool = key(True, checks.boolean)
    # Rows of a list answered at most at once; the rest through @odata.nextLink.
    # A $top above it is answered in pages of this size.
    page_size: int = key(100, checks.integer(1, 5000))
    # Orders a $filter that the indexes cannot narrow may examine per page:
    # beyond it the page ends early with a nextLink (no request scans for ever).
    search_budget: int = key(10_000, checks.integer(100, 1_000_000))
    # Lifetime of the OAuth2 bearer tokens of POST /odata/v1/token.
    token_seconds: int = key(3600, checks.integer(60, 30 * 24 * 3600))
    # Unexpired tokens a user may hold; the oldest is revoked past it.
    max_tokens_per_user: int = key(20, checks.integer(1, 10_000))


@attrs.frozen
class QuotationConfig:
    mode: str = key("synchronous", checks.choice("synchronous", "monitoring", "asynchronous", "off"))
    validity_hours: int = key(72, checks.integer(1))


@attrs.frozen
class EmailConfig:
    smtp_host: str = key("", checks.string)  # empty: no e-mail at all
    smtp_port: int = key(25, checks.integer(1, 65535))
    # "optional": STARTTLS when the server offers it, except that a username
    # makes it required (a password never crosses in clear because someone
    # struck STARTTLS from the server's answer); "required"; "off": never.
    # Under TLS the server's certificate and name are always verified.
    starttls: str = key("optional", checks.choice("optional", "required", "off"))
    # SMTP AUTH (PLAIN or LOGIN) as this user when set, with the password in
    # password_file (read at each mail; not readable by others).
    username: str = key("", checks.string)
    password_file: str = key("", checks.string)
    # PEM file of the CAs that sign the server's certificate; "": the system's.
    ca_file: str = key("", checks.string)
    # Seconds to wait for the connection and for each of the server's replies.
    timeout: float = key(30.0, checks.number(0.1))
    sender: str = key("oseod@localhost", checks.mail_address_text(display_name=True))
    admins: tuple[str, ...] = key((), checks.list_of(checks.mail_address_text()))
    # A file NAME.txt here replaces the built-in template NAME.txt
    # (oseod/notify/templates/); "": the built-in texts.
    templates_dir: str = key("", checks.string)


@attrs.frozen
class OptionConfig:
    """A processing option offered by a collection (a SWE Category with allowed tokens)."""

    name: str = key("", checks.nonempty_string, required=True)
    choices: tuple[str, ...] = key((), checks.list_of(checks.nonempty_string))
    description: str = key("", checks.string)
    default: str = key("", checks.string)


@attrs.frozen
class CollectionConfig:
    id: str = key("", checks.nonempty_string, required=True)
    title: str = key("", checks.string)
    moderation: str = key("", checks.choice("", "auto", "manual"))  # empty: [orders] decides
    processor: str = key("dummy", checks.nonempty_string)
    order_types: tuple[str, ...] = key(("PRODUCT_ORDER",), checks.list_of(checks.choice(*ORDER_TYPES)))
    online_data_access: tuple[str, ...] = key(("ftp", "http"), checks.list_of(checks.choice(*ONLINE_PROTOCOLS)))
    # Pushes to the client's own server: ftp, ftps (explicit TLS) or sftp.
    online_data_delivery: tuple[str, ...] = key(("ftp",), checks.list_of(checks.choice(*PUSH_PROTOCOLS)))
    processor_options: Mapping[str, object] = key(attrs.Factory(dict), checks.table)
    # GetQuotation: an item costs price_per_item plus, for each option it is
    # made with, prices["NAME=CHOICE"] (a processor providing IQuotes may
    # price items itself). "QUOTA" is a currency too.
    price_per_item: float = key(0.0, checks.number(0.0))
    currency: str = key("EUR", checks.currency)
    prices: Mapping[str, float] = key(attrs.Factory(dict), checks.price_table)
    packaging: tuple[str, ...] = key((), checks.list_of(checks.choice(*PACKAGING_FORMATS)))
    # Groups allowed to see and order this collection; empty: everybody.
    groups: tuple[str, ...] = key((), checks.list_of(checks.nonempty_string))
    option: tuple[OptionConfig, ...] = key((), checks.list_of(lambda v, k: section(OptionConfig, v, k)))
    # Product identifiers starting with one of these belong to this collection
    # (GetOptions and Submit by identifier without a collectionId).
    identifier_prefixes: tuple[str, ...] = key((), checks.list_of(checks.nonempty_string))
    # Offered in GetOptions paymentOptions; a Submit's paymentMethod must be one.
    payment_methods: tuple[str, ...] = key((), checks.list_of(checks.nonempty_string))
    # Scene-selection parameters offered in GetOptions (same form as option).
    scene_selection: tuple[OptionConfig, ...] = key((), checks.list_of(lambda v, k: section(OptionConfig, v, k)))
    # The e-mails sent about this collection's orders (oseod/model/mailevents.py).
    email_events: tuple[str, ...] = key(MAIL_EVENTS, checks.list_of(checks.choice(*MAIL_EVENTS)))

    def supports(self, order_type: str) -> bool:
        return order_type in self.order_types


DEMO_COLLECTION = CollectionConfig(
    id=DEMO_COLLECTION_ID,
    title="oseod demo collection",
    processor="dummy",
    order_types=("PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "MASSIVE_ORDER"),
    online_data_access=("ftp", "http"),
    online_data_delivery=PUSH_PROTOCOLS,  # the demo shows every push, secure ones included
    processor_options={"size": 1024, "delay": 0.0, "fail_rate": 0.0},
    packaging=PACKAGING_FORMATS,
    option=(OptionConfig(name="format", choices=("GeoTIFF", "NetCDF"), description="Output file format",
                         default="GeoTIFF"),),
)


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    ldap: LdapConfig = LdapConfig()
    service: ServiceIdentificationConfig = ServiceIdentificationConfig()
    provider: ProviderConfig = ProviderConfig()
    orders: OrdersConfig = OrdersConfig()
    processing: ProcessingConfig = ProcessingConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    quotation: QuotationConfig = QuotationConfig()
    odata: ODataConfig = ODataConfig()
    email: EmailConfig = EmailConfig()
    console: ConsoleConfig = ConsoleConfig()
    redis: RedisConfig = RedisConfig()
    collections: tuple[CollectionConfig, ...] = (DEMO_COLLECTION,)

    def collection(self, collection_id: str) -> CollectionConfig | None:
        for collection in self.collections:
            if collection.id == collection_id:
                return collection
        return None


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "auth": AuthConfig,
    "ldap": LdapConfig,
    "service": ServiceIdentificationConfig,
    "provider": ProviderConfig,
    "orders": OrdersConfig,
    "processing": ProcessingConfig,
    "notifications": NotificationsConfig,
    "delivery": DeliveryConfig,
    "quotation": QuotationConfig,
    "odata": ODataConfig,
    "email": EmailConfig,
    "console": ConsoleConfig,
    "redis": RedisConfig,
}


def section(cls: type[T], table: object, where: str) -> T:
    values = checks.table(table, where)
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, object] = {}
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            raise ConfigError(f"{where}.{name}", "unknown key")
        kwargs[name] = field.metadata["check"](value, f"{where}.{name}")
    for name, field in fields.items():
        if field.metadata["required"] and name not in kwargs:
            raise ConfigError(f"{where}.{name}", "is required")
    return cls(**kwargs)
