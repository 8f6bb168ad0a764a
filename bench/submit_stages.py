"""Where a Submit's CPU goes, stage by stage, in-process (no HTTP, no Redis).

Each stage of a 10-item PRODUCT_ORDER Submit (the body bench/ordering.py
sends) timed on its own with timeit, in µs per call: the SOAP unwrap, the
UsernameToken, parse_submit, the Submit check, the order built, the store's
encoding of the create script's arguments, the RESP frame of the EVALSHA,
the SubmitAck rendered. The whole core Submit (OrderingService.submit on a
store whose Redis answers at once) is timed too. Relative numbers: they say
which stage to cut, the daemon's CPU per request (bench/ordering.py) says
what was gained.

    .venv/bin/python bench/submit_stages.py [--number 2000]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import attrs  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from oseod.config import Config  # noqa: E402
from oseod.core.ordering import OrderingService, jobs_of  # noqa: E402
from oseod.model.accounts import Account  # noqa: E402
from oseod.model.orders import Notification  # noqa: E402
from oseod.oseo import soap  # noqa: E402
from oseod.oseo.security import parse_username_token  # noqa: E402
from oseod.oseo.submit import parse_submit, render_submit_ack  # noqa: E402
from oseod.oseo.xmlparse import XmlLimits  # noqa: E402
from oseod.store import scripting  # noqa: E402
from oseod.store.orders import OrderStore  # noqa: E402

import ordering as bench  # noqa: E402


class _Conn:
    """A Redis connection whose create script answers "made" at once; it
    encodes the command as scripting does, so that the frame counts."""

    def __init__(self) -> None:
        self.last: tuple[Any, Any] = ((), ())

    def eval(self, source: str, keys: Any = (), args: Any = (), **kwargs: Any) -> defer.Deferred[Any]:
        self.last = (keys, args)
        return defer.succeed([1, "x"])


class _Redis:
    def __init__(self) -> None:
        self.conn = _Conn()


def _sync(d: Any) -> Any:
    result: list[Any] = []
    defer.ensureDeferred(d).addBoth(result.append)
    if isinstance(result[0], Exception) or hasattr(result[0], "raiseException"):
        result[0].raiseException()
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=2000)
    number = parser.parse_args().number
    body = bench.envelope(bench.SUBMIT_USER, "secret", bench.submit_payload("bench"))
    limits = XmlLimits.for_orders_of(200)
    content_type = bench.SOAP12_CONTENT_TYPE
    message = soap.unwrap(body, content_type, None, limits)
    request = parse_submit(message.payload)
    spec = request.spec
    assert spec is not None
    config = Config()
    clock = task.Clock()
    clock.advance(1_700_000_000)
    redis = _Redis()
    store = OrderStore(redis)
    service = OrderingService(store, config, clock)

    class _Dispatcher:
        def order_accepted(self, order: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    service.dispatcher = _Dispatcher()  # type: ignore[assignment]
    account = Account(bench.SUBMIT_USER)
    notification = Notification()
    checked = service.checker.check(account, spec)
    order = _sync(service.submit(account, spec, notification))
    keys, args = redis.conn.last
    new = attrs.evolve(order, order_id="")
    jobs = jobs_of("x", spec, new.items)

    stages = {
        "unwrap (XML parse, SOAP envelope)": lambda: soap.unwrap(body, content_type, None, limits),
        "body_operation": lambda: soap.body_operation(message.payload, ("Submit", "GetStatus")),
        "parse_username_token": lambda: parse_username_token(message.headers),
        "parse_submit": lambda: parse_submit(message.payload),
        "Submit check": lambda: service.checker.check(account, spec),
        "core submit + store create (Redis answers at once)":
            lambda: _sync(service.submit(account, checked.spec, notification)),
        "store create alone (Redis answers at once)":
            lambda: _sync(store.create(new, max_active_items=100, jobs=lambda order_id: jobs, acknowledged=True)),
        "EVALSHA frame (scripting._tail)": lambda: scripting._tail(keys, args),
        "SubmitAck rendered and wrapped": lambda: soap.wrap(message.encoding, render_submit_ack(order.order_id, None)),
    }
    print(f"µs per call ({number} calls, best of 5)")
    for label, call in stages.items():
        best = min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6
        print(f"  {label:<55} {best:8.1f}")


if __name__ == "__main__":
    main()
