"""What an order logs beside its status: downloads counted per item,
transfers of its results, the history of its changes of status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from .. import keys
from ..orderids import ORDER_ID
from ..stats import bucket_keys
from .base import OrderStoreBase
from .layout import HISTORY_KEPT, _score, script
from .values import HistoryLine, Transfer

_RECORD_TRANSFER = script("order_record_transfer")


class OrderRecords(OrderStoreBase):
    """Downloads, transfers and the history of an order."""

    async def record_download(self, order_id: str, item_id: str, name: str, at: float) -> set[str]:
        """Count a complete download of file ``name`` of the item, at ``at``;
        the names of the item's files downloaded completely so far."""
        prefix = f"d/{json.dumps(item_id)}/"
        items_key = keys.order_items(order_id)
        await self._redis.conn.hincrby(items_key, prefix + name, 1)
        await self._redis.conn.hset(items_key, f"dl/{item_id}", _score(at))
        fields = await self._redis.conn.hkeys(items_key)
        return {f[len(prefix):] for f in fields if f.startswith(prefix)}

    async def record_downloads(self, order_id: str, item_ids: Sequence[str], name: str, at: float) -> None:
        """Count a complete download of ``name`` for each of the items, at
        ``at``: a package holding them all."""
        items_key = keys.order_items(order_id)
        for item_id in item_ids:
            await self._redis.conn.hincrby(items_key, f"d/{json.dumps(item_id)}/{name}", 1)
        if item_ids:
            await self._redis.conn.hmset(items_key, {f"dl/{item_id}": _score(at) for item_id in item_ids})

    async def downloads(self, order_id: str) -> dict[str, tuple[int, float]]:
        """Per item: complete downloads so far (all files) and the last one's time."""
        fields: dict[str, str] = await self._redis.conn.hgetall(keys.order_items(order_id))
        counts: dict[str, int] = {}
        for field, value in fields.items():
            if field.startswith("d/"):
                item_id, _ = json.JSONDecoder().raw_decode(field[2:])
                counts[item_id] = counts.get(item_id, 0) + int(value)
        return {item_id: (count, float(fields.get(f"dl/{item_id}", "0"))) for item_id, count in counts.items()}

    async def record_transfer(self, order_id: str, transfer: Transfer) -> None:
        """Log one transfer of the order's results, complete or not (a
        complete one counts in the downloads of its hour and minute)."""
        if ORDER_ID.match(order_id):
            await self._redis.conn.eval(
                _RECORD_TRANSFER, [keys.order(order_id), keys.order_downloads(order_id), *bucket_keys(transfer.at)],
                [json.dumps(attrs.asdict(transfer), ensure_ascii=False), "1" if transfer.complete else ""])

    async def transfers(self, order_id: str) -> list[Transfer]:
        """The transfers of the order's results, oldest first (the last DOWNLOADS_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        found = await self._redis.conn.lrange(keys.order_downloads(order_id), 0, -1) or ()
        return [Transfer(**json.loads(text)) for text in found]

    async def history(self, order_id: str) -> list[HistoryLine]:
        """The order's changes of status, oldest first (the last HISTORY_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        # Layout 2's list, else layout 3's lines in the order hash (see lua/order_prelude.lua's remember).
        listed = await self._redis.conn.lrange(keys.order_history(order_id), 0, -1)
        if listed:
            return [_history_line(json.loads(text)) for text in listed]
        fields: dict[str, str] = await self._redis.conn.hgetall(keys.order(order_id))
        last = int(fields.get("h", 0))
        return [_history_line([*json.loads(fields[f"h/{n}"]), fields.get(f"i/{n}", "")])
                for n in range(max(1, last - HISTORY_KEPT + 1), last + 1) if f"h/{n}" in fields]


def _history_line(entry: list[Any] | dict[str, Any]) -> HistoryLine:
    """A line of history as stored: layout 3's [at, status, by, info] (info
    left out when empty) or layout 2's object."""
    if isinstance(entry, dict):
        return HistoryLine(**entry)
    at, status, by, *info = entry
    return HistoryLine(at, status, info[0] if info else "", by)
