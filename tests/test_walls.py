"""The walls of DESIGN.md that a reader checks in the imports, checked on
the code itself: only oseod/store talks to Redis (the rest asks a store,
even for PING and INFO), and the transports do not import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import oseod

ROOT = Path(oseod.__file__).parent
TRANSPORTS = ("admin", "console", "http", "ftp", "sftp")
# The console is pages over the operators' actions (oseod.admin.actions,
# which the admin API serves too): that, not the admin API, is what it uses.
ALLOWED = {("console", "oseod.admin.actions")}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        yield ".".join(relative.parts), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(name: str, tree: ast.Module) -> Iterator[str]:
    package = name.split(".")[:-1]  # a module's package (an __init__'s own)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found = ".".join([*base, node.module] if node.module else base)
            yield found
            yield from (f"{found}.{alias.name}" for alias in node.names)


def _outside_store() -> Iterator[tuple[str, ast.Module]]:
    return ((name, tree) for name, tree in _modules() if not name.startswith("oseod.store"))


def test_only_the_store_uses_the_redis_client() -> None:
    for name, tree in _outside_store():
        assert not any(i.split(".")[0] == "txredisapi" for i in _imports(name, tree)), name


def test_only_the_store_sends_redis_commands() -> None:
    for name, tree in _outside_store():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr != "execute_command", f"{name}:{node.lineno}"
                if node.attr == "conn":  # the Redis handle's command API (not Conch's SSH connection)
                    assert "redis" not in ast.unparse(node.value).lower(), f"{name}:{node.lineno}"


def test_the_transports_do_not_import_each_other() -> None:
    for name, tree in _modules():
        room = name.split(".")[1]
        if room not in TRANSPORTS:
            continue
        for imported in _imports(name, tree):
            parts = imported.split(".")
            if len(parts) < 2 or parts[0] != "oseod" or parts[1] == room or parts[1] not in TRANSPORTS:
                continue
            assert any(imported == allowed or imported.startswith(allowed + ".")
                       for transport, allowed in ALLOWED if transport == room), f"{name} imports {imported}"


# The wire vocabularies: pure translations between a protocol's text and the
# model's values, below every room that does I/O.
VOCABULARIES = ("oseo", "odata")
BELOW_A_VOCABULARY = ("oseod.model", "oseod.config", "oseod.config_keys", "oseod.config_checks", "oseod.__init__")


def test_the_vocabularies_know_only_the_model() -> None:
    """oseo/ and odata/ import nothing of Twisted, Redis or the rooms that
    use them (core, store, auth, the transports...): only the model, the
    configuration's values and each other's own modules."""
    for name, tree in _modules():
        room = name.split(".")[1]
        if room not in VOCABULARIES:
            continue
        for imported in _imports(name, tree):
            top = imported.split(".")[0]
            assert top not in ("twisted", "txredisapi", "klein", "treq"), f"{name} imports {imported}"
            if top == "oseod" and imported.count("."):
                assert (imported.startswith(f"oseod.{room}") or imported.startswith(BELOW_A_VOCABULARY)), \
                    f"{name} imports {imported}"
