"""The store's Lua scripts: one ``NAME.lua`` file each, shipped as package
data, each headed by a comment naming its KEYS and ARGV.

:func:`load` gives a script's text, as sent to Redis. Two things are filled
in, so that what several scripts share is written once:

* a line ``-- include: NAME`` becomes the fragment given to :func:`load`
  under that name (a hook another module loaded with values of its own,
  such as :data:`oseod.store.stats.BUCKET_HOOK` from ``bucket_hook.lua``),
  else the file ``NAME.lua`` here, itself expanded the same way
  (``order_prelude.lua``: the helpers and KEYS layout of the scripts that
  change an order; ``fence_hook.lua``: the leader's fencing);
* ``${NAME}`` becomes the value given under that name (constants Python
  owns, such as the statuses of :class:`oseod.model.orders.OrderStatus`).

Callers load their scripts once, at import: the text never changes while the
daemon runs, so its SHA (EVALSHA) does not either.
"""

from __future__ import annotations

import importlib.resources
import re

_INCLUDE = re.compile(r"^-- include: (\w+)[ \t]*\n", re.MULTILINE)
_VALUE = re.compile(r"\$\{(\w+)\}")


def read(name: str) -> str:
    """The text of ``NAME.lua``, as it is in the file."""
    return (importlib.resources.files(__name__) / f"{name}.lua").read_text(encoding="utf-8")


def load(name: str, **values: object) -> str:
    """The script ``NAME.lua`` with its includes and ``${...}`` values filled
    in (KeyError for a value not given: a typo must not reach Redis)."""

    def include(match: re.Match[str]) -> str:
        fragment = match.group(1)
        if fragment in values:
            text = str(values[fragment])
            return text if text.endswith("\n") else text + "\n"
        return _INCLUDE.sub(include, read(fragment))

    text = _INCLUDE.sub(include, read(name))
    return _VALUE.sub(lambda match: str(values[match.group(1)]), text)
