"""The daemon's configuration: one TOML file, every key defaulted and validated.

A bad file must stop the start with one line that names the offending key, so
every value goes through a checker and the rest of the code can trust the
frozen objects it receives. The keys are declared in :mod:`oseod.config_keys`
(and named here, the face the rest of the code imports them from); this
module reads a file into them, then applies the rules across keys of
:mod:`oseod.config_rules`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from . import config_rules as rules
from .config_checks import ConfigError, port_range
from .config_keys import (
    AuthConfig,
    CollectionConfig,
    Config,
    ConsoleConfig,
    DEMO_COLLECTION,
    DEMO_COLLECTION_ID,
    DeliveryConfig,
    EmailConfig,
    LdapConfig,
    NotificationsConfig,
    ONLINE_PROTOCOLS,
    ORDER_TYPES,
    OptionConfig,
    OrdersConfig,
    PACKAGING_FORMATS,
    PUSH_PROTOCOLS,
    ProcessingConfig,
    ProviderConfig,
    ODataConfig,
    QuotationConfig,
    SECTIONS,
    RedisConfig,
    ServerConfig,
    ServiceIdentificationConfig,
    key,
    section,
)

__all__ = ["AuthConfig", "CollectionConfig", "Config", "ConsoleConfig", "DEMO_COLLECTION", "DEMO_COLLECTION_ID", "DeliveryConfig", "EmailConfig", "LdapConfig", "NotificationsConfig", "ONLINE_PROTOCOLS", "ORDER_TYPES", "ODataConfig", "OptionConfig", "OrdersConfig", "PACKAGING_FORMATS", "PUSH_PROTOCOLS", "ProcessingConfig", "ProviderConfig", "QuotationConfig", "RedisConfig", "ServerConfig", "ServiceIdentificationConfig", "key", "section", "ConfigError", "load_config", "parse_config", "port_range"]


def _collections(value: object) -> tuple[CollectionConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("collection", "must be one or more [[collection]] tables")
    collections = tuple(section(CollectionConfig, t, f"collection[{i}]") for i, t in enumerate(value))
    rules.check_collections(collections)
    return collections


def parse_config(document: Mapping[str, object]) -> Config:
    """Build a Config from a parsed TOML document, refusing anything unknown."""
    kwargs: dict[str, object] = {}
    for name, value in document.items():
        if name == "collection":
            kwargs["collections"] = _collections(value)
        elif name in SECTIONS:
            kwargs[name] = section(SECTIONS[name], value, name)
        else:
            raise ConfigError(name, "unknown section or key")
    config = rules.lockout_aliases(Config(**kwargs), document)  # type: ignore[arg-type]
    rules.check_config(config)
    return config


def load_config(path: str | Path | None, overrides: Sequence[tuple[str, str]] = ()) -> Config:
    """Read the TOML file at ``path`` (None: the demo setup), then apply
    command-line ``overrides`` given as ``(server key, value)`` pairs."""
    document: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                document = tomllib.load(f)
        except OSError as e:
            raise ConfigError("--config", f"cannot read {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("--config", f"{path} is not valid TOML: {e}") from None
    config = parse_config(document)
    if path is None:
        # The demo setup: call-backs and pushes may reach this machine, so
        # that a client tried out on it can hear from the daemon.
        config = attrs.evolve(config, notifications=attrs.evolve(config.notifications,
                                                                 allowed_networks=("127.0.0.0/8",)))
    if overrides:
        server = attrs.evolve(config.server, **dict(overrides))  # type: ignore[arg-type]
        config = attrs.evolve(config, server=server)
        rules.check_listeners(config)
    return config
