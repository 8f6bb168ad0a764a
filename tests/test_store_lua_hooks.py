"""The Lua of the stores lives in oseod/store/lua (as the orders store's
does): their scripts and the hooks the orders scripts include are loaded
from files, complete."""

from __future__ import annotations

from pathlib import Path

from oseod import store
from oseod.store import leader, lua, outbox, stats, wsn
from oseod.store.orders import layout


def test_no_store_module_holds_lua_of_its_own() -> None:
    for path in Path(store.__file__).parent.rglob("*.py"):
        assert "redis.call" not in path.read_text(encoding="utf-8"), path


def test_their_scripts_are_complete() -> None:
    for text in (stats.BUCKET_HOOK, stats._READ_HASHES, stats._SIZES, leader._HOLD, leader._RELEASE,
                 leader._LEADS, leader.FENCE_HOOK, leader._RECORD, wsn.NOTIFY_HOOK):
        assert "-- include:" not in text and "${" not in text
    assert "redis.call('EXPIRE', hour_key, %d)" % stats.HOUR_TTL in stats.BUCKET_HOOK
    assert "redis.call('EXPIRE', minute_key, %d)" % stats.MINUTE_TTL in stats.BUCKET_HOOK
    assert leader._RECORD.index("local function fenced") < leader._RECORD.index("if fenced(KEYS[2], ARGV[3])")


def test_the_orders_scripts_include_the_hooks_from_their_files() -> None:
    assert layout._VALUES["fence_hook"] == lua.load("fence_hook")
    assert layout._VALUES["notify_hook"] == lua.load("notify_hook")
    purge = layout.script("order_purge")
    assert stats.BUCKET_HOOK in purge and leader.FENCE_HOOK in purge
    assert wsn.NOTIFY_HOOK in layout.script("order_set_status")


def test_the_outbox_scripts_include_their_fragments() -> None:
    for text in (outbox._DONE, outbox._RETRY, outbox._GIVE_UP):
        assert "-- include:" not in text and "${" not in text
        assert "redis.call('LTRIM', key, -%d, -1)" % outbox.LOG_KEPT in text
        assert "redis.call('EXPIRE', key, %d)" % outbox.LOG_SECONDS in text
    for text in (outbox._DONE, outbox._GIVE_UP):
        assert "if redis.call('LLEN', KEYS[1]) > 0 then" in text
