"""The configuration's rules across keys: what no single value's checker
(:mod:`oseod.config_checks`) can see, such as a key required because
another is set, or a price naming an option of its collection. Each rule
refuses with a :class:`ConfigError` naming the key to change.

:mod:`oseod.config` declares the keys and parses; it calls these once the
values are checked one by one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from .config_checks import ConfigError

if TYPE_CHECKING:
    from .config_keys import CollectionConfig, Config, OptionConfig

# Option names become SWE field names in GetOptions: XML NCNames.
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# Deprecated [console] keys of the lock-out (from when it guarded the console
# alone): each applies when [auth] does not set its key.
_LOCKOUT_ALIASES = (("max_failures_per_user", "max_failures_per_user"),
                    ("max_failures_per_address", "max_failures_per_address"),
                    ("window_minutes", "lockout_minutes"))


def check_collections(collections: tuple[CollectionConfig, ...]) -> None:
    """Every [[collection]]: its id once, a protocol at least, its options
    and scene-selection parameters well-formed, its prices naming them."""
    seen: set[str] = set()
    for i, collection in enumerate(collections):
        if collection.id in seen:
            raise ConfigError(f"collection[{i}].id", f'"{collection.id}" is defined twice')
        seen.add(collection.id)
        if not collection.online_data_access:
            raise ConfigError(f"collection[{i}].online_data_access", "must offer at least one protocol")
        _check_options(collection.option, f"collection[{i}].option")
        _check_options(collection.scene_selection, f"collection[{i}].scene_selection")
        _check_prices(collection, f"collection[{i}].prices")


def _check_options(options: tuple[OptionConfig, ...], where: str) -> None:
    names = [o.name for o in options]
    for j, option in enumerate(options):
        here = f"{where}[{j}]"
        if names.count(option.name) > 1:
            raise ConfigError(f"{here}.name", f'option "{option.name}" is defined twice')
        if not _XML_NAME.match(option.name):
            raise ConfigError(f"{here}.name", f'"{option.name}" is not an XML name (letters, digits, _ . -)')
        if not option.choices:
            raise ConfigError(f"{here}.choices", "must list at least one choice")
        if option.default and option.default not in option.choices:
            raise ConfigError(f"{here}.default", f'"{option.default}" is not one of the choices')


def _check_prices(collection: CollectionConfig, where: str) -> None:
    choices = {o.name: o.choices for o in collection.option}
    for name in collection.prices:
        option, _, choice = name.partition("=")
        if option not in choices:
            raise ConfigError(f"{where}.{name}", f'the collection has no option "{option}" '
                                                 f"(options: {', '.join(choices) or 'none'})")
        if choice not in choices[option]:
            raise ConfigError(f"{where}.{name}", f'"{choice}" is not a choice of option "{option}" '
                                                 f"(choices: {', '.join(choices[option])})")


def lockout_aliases(config: Config, document: Mapping[str, object]) -> Config:
    """``config`` with the deprecated [console] lock-out keys the file sets
    (``document``) applied where [auth] does not set its own."""
    console, auth = document.get("console"), document.get("auth")
    if not isinstance(console, Mapping):
        return config
    given = auth if isinstance(auth, Mapping) else {}
    taken = {new: getattr(config.console, old) for old, new in _LOCKOUT_ALIASES
             if old in console and new not in given}
    return attrs.evolve(config, auth=attrs.evolve(config.auth, **taken)) if taken else config


def check_config(config: Config) -> None:
    """The rules across sections, on a whole configuration."""
    _check_auth(config)
    _check_email(config)
    check_listeners(config)


def check_listeners(config: Config) -> None:
    """The listeners' rules (checked again after the command line's overrides)."""
    # Result URLs (in e-mails, WS-N notifications) name the HTTP listener
    # unless public_url says where clients reach the front daemons.
    if not config.server.http and not config.server.public_url:
        raise ConfigError("server.public_url", "is required when server.http is empty (no HTTP listener): "
                                               "result URLs name where clients reach the front daemons")
    # FTPS needs a certificate and its key (read at start, naming the file
    # that is missing or wrong).
    if config.server.ftp and config.server.ftp_tls != "off":
        for name in ("tls_certificate", "tls_key"):
            if not getattr(config.server, name):
                raise ConfigError(f"server.{name}", f'is required when server.ftp_tls is "{config.server.ftp_tls}"')
    if config.server.ftp.startswith("ssl:") and config.server.ftp_tls_reuse != "off":
        raise ConfigError("server.ftp_tls_reuse", 'must be "off" with an ssl: FTP endpoint (implicit FTPS): '
                                                  "its data connections cannot resume the TLS session")


def _check_auth(config: Config) -> None:
    if "file" in config.auth.checkers and not config.auth.password_file:
        raise ConfigError("auth.password_file", 'is required when auth.checkers names "file"')
    if "ldap" in config.auth.checkers:
        ldap = config.ldap
        if not ldap.url:
            raise ConfigError("ldap.url", 'is required when auth.checkers names "ldap"')
        if bool(ldap.user_dn_template) == bool(ldap.user_base):
            raise ConfigError("ldap.user_base", "set either ldap.user_dn_template (bind as the user) or "
                                                "ldap.user_base (search, then bind), not both")


def _check_email(config: Config) -> None:
    if config.email.username and not config.email.password_file:
        raise ConfigError("email.password_file", "is required when email.username is set")
    if config.email.password_file and not config.email.username:
        raise ConfigError("email.username", "is required when email.password_file is set")
