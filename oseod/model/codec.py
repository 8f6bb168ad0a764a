"""The model values as JSON, for the store: pure, no I/O.

One generic rule for every frozen attrs class of :mod:`oseod.model`: an
object becomes a JSON object keyed by field name, an enum its value, a tuple
a list. Fields that are None or an empty tuple are left out (most of an
ItemSpec is absent), and a missing key decodes to the field's default; a key
this code does not know is ignored, so an older daemon reads what a newer one
wrote. Field names are therefore part of the stored format: rename one only
with a migration.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any, TypeVar

import attrs

T = TypeVar("T")


def to_data(value: object) -> Any:
    """``value`` as plain JSON-able data."""
    cls: Any = type(value)
    if attrs.has(cls):
        data: dict[str, Any] = {}
        for field in attrs.fields(cls):
            item = getattr(value, field.name)
            if item is None or item == ():
                continue
            data[field.name] = to_data(item)
        return data
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [to_data(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} values")


def from_data(cls: type[T], data: Any) -> T:
    """The ``cls`` instance that :func:`to_data` turned into ``data``."""
    return typing.cast(T, _decode(cls, data, cls.__name__))


def dumps(value: object) -> str:
    return json.dumps(to_data(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads(cls: type[T], text: str) -> T:
    return from_data(cls, json.loads(text))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # only "X | None" is used
        return _decode(inner, data, where)
    if origin is tuple:
        inner, ellipsis = typing.get_args(tp)
        assert ellipsis is Ellipsis, "only tuple[X, ...] is used"
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a list, got {data!r}")
        return tuple(_decode(inner, v, f"{where}[{i}]") for i, v in enumerate(data))
    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {data!r}")
        hints = _hints(tp)
        kwargs = {
            field.name: _decode(hints[field.name], data[field.name], f"{where}.{field.name}")
            for field in attrs.fields(tp)
            if field.name in data
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if tp in (str, int, bool) and type(data) is tp:
        return data
    raise ValueError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {data!r}")
