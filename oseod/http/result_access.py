"""Where a ready item's result is fetched: the one rule both doors follow
(OSEO's DescribeResultAccess and OData's ``Product/$value``), so that the
two hand out the same address for the same file."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..core.deliverables import Deliverables
from ..model.orders import ReadyItem

# url(protocol, order_id, item_id, file): oseod.tap.result_urls.
ResultURLs = Callable[[str, str, str | None, str | None], str]


async def result_addresses(deliverables: Deliverables, result_urls: ResultURLs, owner: str, order_id: str,
                           ready: Sequence[ReadyItem], protocol: str | None = None) -> list[str]:
    """The address of each of ``ready`` (in its order): with packaging, its
    batch's package; else its one file, or the item's directory (a listing
    over HTTP) when it has several. ``protocol`` None: the one the item was
    ordered with; else that one (OData's downloads are over HTTP)."""
    listings = await deliverables.listings(owner, order_id, [r.item.spec.item_id for r in ready if r.package is None])
    urls = []
    for item, item_protocol, _, package in ready:
        using = protocol or item_protocol
        if package is not None:
            urls.append(result_urls(using, order_id, None, package))
        else:
            files = listings[item.spec.item_id]
            only = files[0].name if len(files) == 1 else None
            urls.append(result_urls(using, order_id, item.spec.item_id, only))
    return urls
