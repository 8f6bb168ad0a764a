"""Packages: what a Submit's ``packaging`` makes of an order's results.

With packaging, the result files of each batch of the order (all of a
product order's items; each batch of a massive order; each timeslot of a
subscription) are offered as one archive, ``<order>-<batch>`` with the
format's suffix, which holds each item's files under ``<itemId>/<file>``
(the item id as one path component, see :func:`.deliverables.path_name`).
The engine builds it (:mod:`oseod.jobs.packaging`) before it marks the
batch's items Completed; the core hands it out (DescribeResultAccess,
downloads) for as long as its items' results are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# The packaging values oseod builds, and the suffix of each one's package.
SUFFIXES: Final[Mapping[str, str]] = {"zip": ".zip", "tar": ".tar", "tgz": ".tar.gz", "bzip2": ".tar.bz2"}


def packaged(packaging: str | None) -> bool:
    """Whether an order with this ``packaging`` gets packages."""
    return packaging in SUFFIXES


def package_name(order_id: str, batch: int, packaging: str) -> str:
    """The file name of the package of batch ``batch`` of the order."""
    return f"{order_id}-{batch}{SUFFIXES[packaging]}"


def is_package_name(order_id: str, name: str) -> bool:
    """Whether ``name`` is what a package of the order would be called."""
    if not name.startswith(f"{order_id}-"):
        return False
    rest = name[len(order_id) + 1:]
    return any(rest.endswith(suffix) and rest[: -len(suffix)].isdigit() for suffix in SUFFIXES.values())
