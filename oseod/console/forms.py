"""Reading a console form or query: only the fields a page knows, UTF-8,
bounded, each refusal a one-line reason (a 400 page or a flash message),
never an exception that reaches the client as a 500."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable

from twisted.web.iweb import IRequest

# What any field may hold at most (a reason, an e-mail address...); a password a little more.
MAX_FIELD = 1000
MAX_VALUES = 500  # of one repeated field (the moderation page's check boxes)

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$")


class FormError(Exception):
    """A form or query that cannot be used as sent; the message says why."""


class Form:
    """The fields of ``request.args`` (query string and form body alike),
    checked against ``allowed`` at once."""

    def __init__(self, request: IRequest, allowed: Iterable[str]) -> None:
        self._fields: dict[str, list[str]] = {}
        known = set(allowed)
        for raw_name, raw_values in (request.args or {}).items():
            try:
                name = raw_name.decode("utf-8")
                values = [value.decode("utf-8") for value in raw_values]
            except UnicodeDecodeError:
                raise FormError("the form is not UTF-8") from None
            if name not in known:
                raise FormError(f"unknown field {name[:40]!r}")
            if len(values) > MAX_VALUES:
                raise FormError(f"too many values for {name}")
            for value in values:
                if len(value) > MAX_FIELD:
                    raise FormError(f"{name} is longer than {MAX_FIELD} characters")
                if "\0" in value:
                    raise FormError(f"{name} holds a NUL character")
            self._fields[name] = values

    def text(self, name: str, *, required: str | None = None, max_length: int = MAX_FIELD,
             strip: bool = True) -> str:
        """The field's one value ("" when absent); ``required``: the message
        when it is empty."""
        values = self._fields.get(name, [])
        if len(values) > 1:
            raise FormError(f"{name} given more than once")
        value = values[0] if values else ""
        if strip:
            value = value.strip()
        if len(value) > max_length:
            raise FormError(f"{name} is longer than {max_length} characters")
        if required is not None and not value:
            raise FormError(required)
        return value

    def optional(self, name: str, *, max_length: int = MAX_FIELD) -> str | None:
        return self.text(name, max_length=max_length) or None

    def values(self, name: str) -> list[str]:
        return [value.strip() for value in self._fields.get(name, []) if value.strip()]

    def flag(self, name: str) -> bool:
        """A check box: present and not "0"/"off"/"false"."""
        return self.text(name).lower() not in ("", "0", "off", "false", "no")

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        value = self.text(name) or default
        if value not in set(choices):
            raise FormError(f"{name}: {value[:40]!r} is not one of {', '.join(sorted(choices))}")
        return value

    def date(self, name: str, *, end_of_day: bool = False) -> float | None:
        """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC, as Unix time; a bare
        date as the end of the day when ``end_of_day``."""
        value = self.text(name, max_length=40)
        if not value:
            return None
        match = _DATE.match(value)
        if match is None:
            raise FormError(f"{name}: {value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
        year, month, day, hour, minute, second = (int(g) if g else None for g in match.groups())
        assert year is not None and month is not None and day is not None
        bare = hour is None
        try:
            moment = calendar.timegm(time.struct_time(
                (year, month, day, hour or 0, minute or 0, second or 0, 0, 0, 0)))
            time.strptime(f"{year:04d}-{month:02d}-{day:02d} {hour or 0:02d}:{minute or 0:02d}:{second or 0:02d}",
                          "%Y-%m-%d %H:%M:%S")
        except (ValueError, OverflowError):
            raise FormError(f"{name}: {value!r} is not a date") from None
        return float(moment + (86399 if bare and end_of_day else 0))
