"""The checkers every configuration value goes through: each takes the TOML
value and its dotted key, and returns the value to keep or raises a
:class:`ConfigError` naming the key (oseod.config declares the keys)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .model.addresses import mail_address


class ConfigError(ValueError):
    """A configuration value is wrong; ``key`` names it in dotted form."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


Check = Callable[[object, str], Any]


def _describe(value: object) -> str:
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false (got {_describe(value)})")
    return value


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value: object, key: str) -> int:
        # TOML booleans are not numbers, however Python feels about it.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer (got {_describe(value)})")
        if minimum is not None and value < minimum:
            raise ConfigError(key, f"must be at least {minimum} (got {value})")
        if maximum is not None and value > maximum:
            raise ConfigError(key, f"must be at most {maximum} (got {value})")
        return value

    return check


def number(minimum: float | None = None) -> Check:
    def check(value: object, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number (got {_describe(value)})")
        if minimum is not None and value < minimum:
            raise ConfigError(key, f"must be at least {minimum} (got {value})")
        return float(value)

    return check


def string(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string (got {_describe(value)})")
    return value


def nonempty_string(value: object, key: str) -> str:
    text = string(value, key)
    if not text.strip():
        raise ConfigError(key, "must not be empty")
    return text


def port_range_text(value: object, key: str) -> str:
    """"" (any free port) or "FIRST-LAST", both TCP ports."""
    text = string(value, key).strip()
    if not text:
        return ""
    first, sep, last = text.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit() or not (
            1024 <= int(first) <= int(last) <= 65535):
        raise ConfigError(key, f'must be "FIRST-LAST" with 1024 <= FIRST <= LAST <= 65535, or "" (got {text!r})')
    return f"{int(first)}-{int(last)}"


def ipv4_or_empty(value: object, key: str) -> str:
    text = string(value, key).strip()
    if text:
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise ConfigError(key, f"must be an IPv4 address, or \"\" (got {text!r})") from None
    return text


def public_url(*schemes: str) -> Check:
    def check(value: object, key: str) -> str:
        text = string(value, key).strip()
        if text:
            parts = urlsplit(text)
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ConfigError(key, f"has a bad port (got {text!r})") from None
            if parts.scheme not in schemes or not parts.hostname or parts.query or parts.fragment:
                raise ConfigError(key, f"must be an absolute {' or '.join(schemes)} URL (got {text!r})")
            if "ftp" in schemes and parts.path.strip("/"):
                raise ConfigError(key, f"must name the server only, ftp://HOST[:PORT] (got {text!r})")
        return text.rstrip("/")

    return check


def port_range(text: str) -> range | None:
    """A checked "FIRST-LAST" as a range (None: any port)."""
    if not text:
        return None
    first, _, last = text.partition("-")
    return range(int(first), int(last) + 1)


def choice(*allowed: str) -> Check:
    def check(value: object, key: str) -> str:
        if value not in allowed:
            choices = ", ".join(f'"{a}"' for a in allowed)
            raise ConfigError(key, f"must be one of {choices} (got {_describe(value)})")
        return str(value)

    return check


def list_of(item: Check, *, unique: bool = True) -> Check:
    def check(value: object, key: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list (got {_describe(value)})")
        items = tuple(item(v, f"{key}[{i}]") for i, v in enumerate(value))
        if unique and len(set(items)) != len(items):
            raise ConfigError(key, "must not repeat a value")
        return items

    return check


def mail_address_text(display_name: bool = False) -> Check:
    def check(value: object, key: str) -> str:
        text = string(value, key).strip()
        try:
            mail_address(text, display_name=display_name)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
        return text

    return check


def network(value: object, key: str) -> str:
    text = string(value, key)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(key, f"must be a CIDR network such as 10.0.0.0/8 (got {_describe(value)})") from None
    return text


def table(value: object, key: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a table (got {_describe(value)})")
    return value


def str_table(value: object, key: str) -> dict[str, str]:
    entries = table(value, key)
    return {name: nonempty_string(v, f"{key}.{name}") for name, v in entries.items()}


def currency(value: object, key: str) -> str:
    """An ISO 4217 code or a special one such as QUOTA: 1 to 10 characters
    (the OSEO CurrencyType)."""
    text = nonempty_string(value, key).strip()
    if len(text) > 10:
        raise ConfigError(key, f"must be at most 10 characters, e.g. \"EUR\" or \"QUOTA\" (got {_describe(value)})")
    return text


def price_table(value: object, key: str) -> dict[str, float]:
    """GetQuotation prices per option choice: "NAME=CHOICE" = amount (the
    names and choices are checked against the collection's options)."""
    entries = table(value, key)
    prices: dict[str, float] = {}
    for name, price in entries.items():
        option, sep, choice = name.partition("=")
        if not sep or not option.strip() or not choice.strip():
            raise ConfigError(f"{key}.{name}", 'must be "OPTION=CHOICE", e.g. "format=NetCDF" = 2.5')
        prices[f"{option.strip()}={choice.strip()}"] = number(0.0)(price, f"{key}.{name}")
    return prices
