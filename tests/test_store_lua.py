"""The store's Lua files (oseod/store/lua): every one loads, with its
includes and values filled in, and says what its KEYS and ARGV are."""

from __future__ import annotations

import importlib.resources

import pytest

from oseod.store import lua
from oseod.store.orders import layout as orders


def _names() -> list[str]:
    return sorted(f.name[:-4] for f in importlib.resources.files(lua.__name__).iterdir() if f.name.endswith(".lua"))


def test_every_file_names_its_keys_and_argv() -> None:
    for name in _names():
        header = lua.read(name).split("\n\n", 1)[0]
        assert "KEYS" in header, f"{name}.lua: its header comment must name its KEYS"
        assert header.startswith("--"), f"{name}.lua: starts with a comment"


def test_includes_and_values_are_filled_in() -> None:
    text = lua.load("order_purge", **orders._VALUES)
    assert "-- include:" not in text and "${" not in text
    assert "local function reindex" in text and "local function fenced" in text
    assert "local function count_event" in text  # the prelude's own include
    assert "local N = %d" % len(orders._STATUSES) in text


def test_every_order_script_is_complete() -> None:
    for name in _names():
        if name.startswith("order"):
            text = lua.load(name, **orders._VALUES)
            assert "-- include:" not in text and "${" not in text, name


def test_a_value_not_given_is_an_error() -> None:
    with pytest.raises(KeyError):
        lua.load("order_record_transfer", bucket_hook="")
