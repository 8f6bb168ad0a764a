"""The command processor: real child processes (the test's own Python), the
clock for timeouts."""

from __future__ import annotations

import sys
from typing import Any

import attrs
import pytest
import pytest_twisted

from oseod.config import CollectionConfig, ProcessingConfig
from oseod.jobs.command import CommandProcessor
from oseod.jobs.processors import ProcessorConfigError
from oseod.model.orders import Notification, OrderStatus
from oseod.store.connection import Redis
from tests.polling import eventually
from tests.test_jobs_engine import ALICE, CONFIG, Daemon, daemon, spec
from tests.pools import POOLS

S = OrderStatus
WRITE = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"


def with_command(redis: Redis, **options: Any) -> Daemon:
    collection = CollectionConfig(id="urn:x:cmd", processor="command", processor_options=options)
    config = attrs.evolve(CONFIG, collections=(collection,), processing=ProcessingConfig(workers=2, max_attempts=1))
    return daemon(redis, config=config)


async def run(d: Daemon, *products: str) -> Any:
    order = await d.service.submit(ALICE, spec(*products, collection="urn:x:cmd"), Notification())
    await d.engine.start()
    await d.engine.drain()
    return await d.service.get(ALICE, order.order_id)


@pytest_twisted.ensureDeferred
async def test_the_program_writes_each_result(redis: Redis) -> None:
    d = with_command(redis, argv=[sys.executable, "-c", WRITE, "{output}", "{product_id} of {owner}"],
                     output="{product_id}.txt")
    order = await run(d, "scene/1", "scene-2")
    assert order.status.status is S.Completed
    files = sorted(p for p in d.results.rglob("*") if p.is_file())
    assert sorted(p.name for p in files) == ["scene-2.txt", "scene_1.txt"]
    assert sorted(p.read_text() for p in files) == ["scene-2 of alice", "scene/1 of alice"]
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_failing_program_says_why(redis: Redis) -> None:
    d = with_command(redis, argv=[sys.executable, "-c", "import sys; sys.stderr.write('no such scene\\n'); "
                                                        "sys.exit(3)"])
    order = await run(d, "p")
    item = order.items[0].status
    assert item.status is S.Failed
    assert item.additional_info == f"{sys.executable.rsplit('/', 1)[-1]} exited with status 3: no such scene"
    assert not [p for p in d.results.rglob("*") if p.is_file()]
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_program_that_writes_nothing_fails(redis: Redis) -> None:
    d = with_command(redis, argv=[sys.executable, "-c", "pass"])
    order = await run(d, "p")
    assert order.items[0].status.status is S.Failed
    assert "wrote no {output} file" in (order.items[0].status.additional_info or "")
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_program_past_its_timeout_is_killed(redis: Redis) -> None:
    d = with_command(redis, argv=[sys.executable, "-c", "import time; time.sleep(600)"], timeout=5)
    order = await d.service.submit(ALICE, spec("p", collection="urn:x:cmd"), Notification())
    await d.engine.start()
    await eventually(lambda: _in_production(d, order.order_id), what="the program to start")
    d.clock.advance(5)
    await d.engine.drain()
    item = (await d.service.get(ALICE, order.order_id)).items[0].status
    assert item.status is S.Failed and item.additional_info is not None
    assert "timed out after 5 s" in item.additional_info
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_cancel_kills_the_program(redis: Redis) -> None:
    d = with_command(redis, argv=[sys.executable, "-c", "import time; time.sleep(600)"])
    order = await d.service.submit(ALICE, spec("p", collection="urn:x:cmd"), Notification())
    await d.engine.start()
    await eventually(lambda: _in_production(d, order.order_id), what="the program to start")
    await d.service.cancel(ALICE, order.order_id, Notification())
    await d.engine.drain()  # returns: the program is gone (it would sleep ten minutes)
    assert (await d.service.get(ALICE, order.order_id)).status.status is S.Cancelled
    await d.engine.stop()


async def _in_production(d: Daemon, order_id: str) -> bool:
    return (await d.service.get(ALICE, order_id)).items[0].status.status is S.InProduction


@pytest.mark.parametrize(("options", "message"), [
    ({}, "argv must be a non-empty list"),
    ({"argv": "echo {output}"}, "argv must be a non-empty list"),
    ({"argv": ["echo", "{password}"]}, "unknown field {password}"),
    ({"argv": ["echo"], "output": "{secret}"}, "unknown field {secret}"),
])
def test_bad_configurations_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ProcessorConfigError) as error:
        CommandProcessor(options, None, None, threads=POOLS)
    assert message in str(error.value)
