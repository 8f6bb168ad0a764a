"""Key-value-pair (HTTP GET query) parameters, as OWS Common 2.0 reads them.

Parameter names are case-insensitive, values are case-sensitive, and lists
are comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping

from oseod.oseo.errors import OseoError, quote


def fold_keys(params: Mapping[str, str]) -> dict[str, str]:
    """``params`` keyed by lower-case name.

    ``service=OS&SERVICE=WMS`` is ambiguous, so two spellings of one name
    with different values are refused rather than one silently winning.
    """
    folded: dict[str, str] = {}
    for key, value in params.items():
        name = key.lower()
        if name in folded and folded[name] != value:
            raise OseoError.invalid(key, f"parameter {quote(key)} is given twice with different values")
        folded[name] = value
    return folded


def split_list(value: str) -> tuple[str, ...]:
    """The items of a comma-separated KVP list, blanks dropped."""
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)
