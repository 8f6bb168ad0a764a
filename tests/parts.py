"""The daemon's object graph for in-process tests (oseod.tap.build_parts)
with a results directory and a job-queue consumer of its own."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from oseod.auth.secrets import SecretBox
from oseod.config import Config
from oseod.connections import ConnectionBudget, GuardedFactory
from oseod.forwarded import ClientAddresses
from oseod.http.site import refusal_answer
from oseod.store.connection import Redis
from oseod.tap import Parts, build_parts
from tests.pools import POOLS

RESULTS = Path(tempfile.mkdtemp(prefix="oseod-test-results-"))
atexit.register(shutil.rmtree, RESULTS, True)


def make_parts(config: Config, redis: Redis, *, admin_token: Callable[[], str] = lambda: "the-token",
               digest_secrets: SecretBox | None = None,
               listener_url: Callable[[str], str] = lambda scheme: f"{scheme}://127.0.0.1:1") -> Parts:
    name = uuid.uuid4().hex
    return build_parts(config, redis, reactor, admin_token=admin_token, digest_secrets=digest_secrets,
                       listener_url=listener_url, results=RESULTS / name, consumer=f"tests-{name}",
                       threads=POOLS)


async def started(parts: Parts) -> Parts:
    parts.passwords.start()
    await parts.engine.start()
    return parts


def results_of(parts: Parts) -> Any:
    return parts.engine.results


def guarded(site: Any, config: Config, limit: int = 1000) -> GuardedFactory:
    """``site`` behind a connection budget of ``limit``, as the daemon's
    listeners are (so the bytes take the same way to the socket)."""
    budget = ConnectionBudget(limit, per_address=config.server.max_connections_per_address,
                              clients=ClientAddresses(config.server.trusted_proxies), clock=reactor)
    return budget.guard(site, refusal_answer, "http")
