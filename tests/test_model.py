"""The walls around oseod/model/ (DESIGN.md: the domain values every room
shares), read from the code's imports:

* model/ is pure: the standard library, attrs, orjson and zope.interface
  (plus twisted.cred's UnauthorizedLogin, which a lock-out refusal is), and
  nothing of oseod outside model/: no reactor, no Redis, no XML;
* core/, admin/, console/ and the other rooms above the store (transports,
  notify/, schedule/) take no value type or error from store/ or auth/ (they
  are handed stores and services, and may name those and call their
  functions): every class they import from there is a service, not an attrs
  value, a named tuple or an exception. (jobs/ is not held to it yet: its
  engine is being split.)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

import attrs
import pytest

import oseod

ROOT = Path(oseod.__file__).parent
ALLOWED_IN_MODEL = ("attrs", "orjson", "zope.interface", "twisted.cred.error")
SHARED_ROOMS = ("core", "admin", "console", "http", "ftp", "sftp", "notify", "schedule")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names) of every import in ``path``."""
    package = ".".join(("oseod", *path.relative_to(ROOT).parent.parts)).rstrip(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join([*base, module]) if module else ".".join(base)
            found.append((module, [alias.name for alias in node.names]))
    return found


def _py(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("path", _py("model"), ids=lambda p: p.name)
def test_model_is_pure(path: Path) -> None:
    for module, _ in _imports(path):
        top = module.split(".")[0]
        if module.startswith("oseod."):
            assert module.startswith("oseod.model"), f"{path.name} imports {module}"
        elif top not in sys.stdlib_module_names and top != "__future__":
            assert module.startswith(ALLOWED_IN_MODEL), f"{path.name} imports {module}"


def _is_value(obj: object) -> bool:
    return inspect.isclass(obj) and (attrs.has(obj) or issubclass(obj, (BaseException, tuple)))


@pytest.mark.parametrize("path", [p for room in SHARED_ROOMS for p in _py(room)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_rooms_take_their_types_from_model(path: Path) -> None:
    for module, names in _imports(path):
        if not module.startswith(("oseod.store", "oseod.auth")):
            continue
        imported = importlib.import_module(module)
        values = [name for name in names if _is_value(getattr(imported, name, None))]
        assert not values, f"{path.relative_to(ROOT)} takes {values} from {module}: they belong in oseod.model"
