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
import math
import types
import typing
from typing import Any, TypeVar

import attrs
import orjson

T = TypeVar("T")


def to_data(value: object) -> Any:
    """``value`` (a model object) as plain JSON-able data."""
    cls = type(value)
    if not attrs.has(cls):
        raise TypeError(f"cannot encode {cls.__name__} values")
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _record_encoder(cls)
    return encoder(value)


def from_data(cls: type[T], data: Any) -> T:
    """The ``cls`` instance that :func:`to_data` turned into ``data``."""
    try:
        return typing.cast(T, _decoder(cls)(data))
    except _BadData as e:
        raise ValueError(f"{cls.__name__}{e.path}: {e.problem}") from None


def dumps(value: object) -> str:
    return json_text(to_data(value))


def loads(cls: type[T], text: str | bytes) -> T:
    return from_data(cls, orjson.loads(text))


def json_text(data: Any) -> str:
    """Plain data as compact JSON, non-ASCII characters as they are.

    orjson, not the standard library: a Submit encodes its order's spec,
    statuses and jobs, and the stdlib encoder was a twentieth of the
    request's CPU; orjson does the same in a tenth of the time. It writes
    NaN and infinities as null where the stdlib can refuse them, so the
    model's float fields refuse them when encoded (_finite)."""
    return orjson.dumps(data).decode()


# ------------------------------------------------------------------ encoding

Encoder = typing.Callable[[Any], Any]

# One encoder per type, built once from the type hints (as the decoders are):
# a Submit writes a spec of hundreds of values, and walking attrs.fields()
# for each of them cost a good part of the request.
_ENCODERS: dict[Any, Encoder] = {}


def _value_encoder(tp: Any) -> Encoder | None:
    """How to encode a field of type ``tp``; None: the value is JSON as it is."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        (inner_type,) = [a for a in typing.get_args(tp) if a is not type(None)]  # only "X | None" is used
        return _value_encoder(inner_type)  # None itself is left out by the record
    if origin is tuple:
        inner_type, ellipsis = typing.get_args(tp)
        assert ellipsis is Ellipsis, "only tuple[X, ...] is used"
        inner = _value_encoder(inner_type)
        if inner is None:
            return list
        return lambda values: [inner(v) for v in values]
    if isinstance(tp, type) and attrs.has(tp):
        encoder = _ENCODERS.get(tp)
        if encoder is None:
            encoder = _ENCODERS[tp] = _record_encoder(tp)
        return encoder
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_value
    if tp is float:
        return _finite
    if tp in (str, int, bool):
        return None
    raise TypeError(f"cannot encode {tp!r} values")


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be stored: not a finite number")
    return value


def _record_encoder(cls: type) -> Encoder:
    """The encoder of ``cls``, written out field by field and compiled (as
    attrs writes its __init__): a loop over the fields with a getattr each
    cost twice as much, for every item of every Submit."""
    hints = typing.get_type_hints(cls)
    namespace: dict[str, Any] = {}
    lines = ["def encode(value):", "    data = {}"]
    for index, field in enumerate(attrs.fields(cls)):
        inner = _value_encoder(hints[field.name])
        # Left out: None, and the empty tuple (only a tuple field can hold one).
        empty = " and item != ()" if _may_be_tuple(hints[field.name]) else ""
        lines += [f"    item = value.{field.name}", f"    if item is not None{empty}:"]
        if inner is None:
            lines.append(f"        data[{field.name!r}] = item")
        else:
            namespace[f"inner{index}"] = inner
            lines.append(f"        data[{field.name!r}] = inner{index}(item)")
    lines.append("    return data")
    exec(compile("\n".join(lines), f"<codec encoder of {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    return typing.cast(Encoder, namespace["encode"])


def _may_be_tuple(tp: Any) -> bool:
    """Whether a field of type ``tp`` may hold a tuple (else its values never equal ())."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return any(_may_be_tuple(a) for a in typing.get_args(tp) if a is not type(None))
    return not (tp in (str, int, bool, float) or (isinstance(tp, type) and (attrs.has(tp) or issubclass(tp, enum.Enum))))


# ------------------------------------------------------------------ decoding


class _BadData(Exception):
    """Raised deep inside a decoder; the path is built on the way out, so
    decoding good data (the only hot path) formats nothing."""

    def __init__(self, problem: str, path: str = "") -> None:
        self.problem = problem
        self.path = path


Decoder = typing.Callable[[Any], Any]

# One decoder per type, built once: reading an order decodes hundreds of
# values, and inspecting type hints for each of them cost milliseconds.
_DECODERS: dict[Any, Decoder] = {}


def _decoder(tp: Any) -> Decoder:
    decoder = _DECODERS.get(tp)
    if decoder is None:
        decoder = _DECODERS[tp] = _build(tp)
    return decoder


def _build(tp: Any) -> Decoder:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        (inner_type,) = [a for a in typing.get_args(tp) if a is not type(None)]  # only "X | None" is used
        return _optional(inner_type)
    if origin is tuple:
        inner_type, ellipsis = typing.get_args(tp)
        assert ellipsis is Ellipsis, "only tuple[X, ...] is used"
        return _sequence(inner_type)
    if isinstance(tp, type) and attrs.has(tp):
        return _record(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enumeration(tp)
    if tp is float:
        return _float
    if tp in (str, int, bool):
        return _exactly(tp)
    raise TypeError(f"cannot decode {tp!r} values")


def _optional(inner_type: Any) -> Decoder:
    def decode(data: Any) -> Any:
        return None if data is None else _decoder(inner_type)(data)

    return decode


def _sequence(inner_type: Any) -> Decoder:
    def decode(data: Any) -> Any:
        if not isinstance(data, list):
            raise _BadData(f"expected a list, got {data!r}")
        inner = _decoder(inner_type)
        values = []
        for index, value in enumerate(data):
            try:
                values.append(inner(value))
            except _BadData as e:
                raise _BadData(e.problem, f"[{index}]{e.path}") from None
        return tuple(values)

    return decode


def _record(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls)
    fields = [(field.name, hints[field.name]) for field in attrs.fields(cls)]

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise _BadData(f"expected an object, got {data!r}")
        kwargs = {}
        for name, hint in fields:
            if name in data:
                try:
                    kwargs[name] = _decoder(hint)(data[name])
                except _BadData as e:
                    raise _BadData(e.problem, f".{name}{e.path}") from None
        return cls(**kwargs)

    return decode


def _enumeration(cls: type[enum.Enum]) -> Decoder:
    def decode(data: Any) -> Any:
        try:
            return cls(data)
        except ValueError:
            raise _BadData(f"{data!r} is not a {cls.__name__}") from None

    return decode


def _float(data: Any) -> float:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    raise _BadData(f"expected float, got {data!r}")


def _exactly(tp: type) -> Decoder:
    def decode(data: Any) -> Any:
        if type(data) is tp:
            return data
        raise _BadData(f"expected {tp.__name__}, got {data!r}")

    return decode
