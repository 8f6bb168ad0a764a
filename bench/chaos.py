"""
The chaos test (issue 14, ../shared/notes/scale-out.md §7): a primary (AOF
on) + two replicas (``--replicas 1``: one) + three sentinels, two front daemons and a worker
(bench/chaos_cluster.py), a load client sending Submits and GetStatus polls
(bench/chaos_load.py), and a seeded sequence of events:

- ``kill-primary``: SIGKILL of the primary, restarted 5 s later (it must
  rejoin as a replica);
- ``stop-primary``: SIGSTOP of the primary for 3 s (the split-brain case);
- ``kill-daemon``: SIGKILL of a front daemon, restarted after 1 s;
- ``term-daemon``: SIGTERM of a front daemon (it drains), then restarted;
- ``kill-worker``: SIGKILL of the worker while it holds jobs, restarted after 1 s.

Then the load stops, a quiet period lets the work finish, and the
invariants of bench/chaos_checks.py are checked and printed, with each
event's window. Exit status 1 when an invariant fails, 2 when the set-up
does not work. Every process is stopped by the PID this script recorded.

    make chaos                                   # about 4 minutes on 2 cores
    make chaos CHAOS_ARGS='--seed 7 --events 3'
    .venv/bin/python bench/chaos.py --help
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos_checks import Check, Window, check_all, queue_left, read_orders, unfinished
from chaos_cluster import Deployment, kill, pid_of, ready, restart, start_deployment, wait_until
from chaos_load import LoadClient, envelope, submit_payload
from harness import signals_raise

EVENTS = ("kill-primary", "stop-primary", "kill-daemon", "term-daemon", "kill-worker")
# The note's targets of unavailability per event (scale-out.md §7), printed
# beside each window: with two replicas and min_replicas = 1, the one left
# after a failover acknowledges the writes (with one replica, no write is
# acknowledged from a primary's loss until it has rejoined: --replicas 1).
TARGETS = {"kill-primary": 5.0, "stop-primary": 5.0, "kill-daemon": 2.0, "term-daemon": 2.0, "kill-worker": 2.0}
GRACE = 3.0  # seconds after an event's repair during which failures still count as its own


@dataclass
class Settings:
    seed: int
    sequence: list[str]
    duration: float = 150.0  # seconds of load, the events spread over it
    quiet: float = 30.0  # at most this long for the work to finish after the load
    rate: float = 20.0  # Submits a second
    status_rate: float = 10.0  # GetStatus a second
    # [redis] min_replicas of every daemon: 1, so that an acknowledged order
    # survives the primary's loss; with two replicas, as README advises, so
    # that orders are still taken after it.
    min_replicas: int = 1
    replicas: int = 2
    root: Path | None = None  # where the processes' files go (default: a temporary directory)
    keep: bool = False


@dataclass
class Outcome:
    checks: list[Check]
    windows: list[Window]
    figures: dict[str, Any]
    timeline: list[str] = field(default_factory=list)
    root: Path | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class Chaos:
    def __init__(self, deployment: Deployment, rng: random.Random, started: float) -> None:
        self.deployment = deployment
        self.rng = rng
        self.t0 = started
        self.timeline: list[str] = []
        self.windows: list[Window] = []

    def note(self, text: str) -> None:
        line = f"+{time.monotonic() - self.t0:6.1f} s  {text}"
        self.timeline.append(line)
        print(line, flush=True)

    def strike(self, event: str) -> Window:
        window = Window(event, time.monotonic())
        self.windows.append(window)
        getattr(self, event.replace("-", "_"))(window)
        window.repaired = time.monotonic()
        self.note(f"{event} repaired after {window.repaired - window.started:.1f} s{window.note}")
        return window

    def kill_primary(self, window: Window) -> None:
        primary = self.deployment.current_primary()
        self.note(f"kill-primary: SIGKILL of the primary (port {primary.port}, pid {primary.pid()})")
        window.started = time.monotonic()
        primary.signal(signal.SIGKILL)
        self._wait_failover(primary, window)
        time.sleep(max(0.0, 5.0 - (time.monotonic() - window.started)))
        primary.restart()
        self.note(f"old primary restarted (pid {primary.pid()})")
        self._wait_rejoined(primary, window)

    def stop_primary(self, window: Window) -> None:
        primary = self.deployment.current_primary()
        self.note(f"stop-primary: SIGSTOP of the primary (port {primary.port}) for 3 s")
        window.started = time.monotonic()
        primary.signal(signal.SIGSTOP)
        time.sleep(3.0)
        primary.signal(signal.SIGCONT)
        self.note("SIGCONT")
        self._wait_rejoined(primary, window)

    def _wait_failover(self, old: Any, window: Window) -> None:
        if wait_until(lambda: self.deployment.primary_port() not in (None, old.port), 15):
            self.note(f"sentinels name a new primary (port {self.deployment.primary_port()}) after "
                      f"{time.monotonic() - window.started:.1f} s")

    def _wait_rejoined(self, server: Any, window: Window) -> None:
        """Until the sentinels agree on a primary, no failover in progress,
        that primary answers as one and the other data node (``server`` or
        not) as its replica, for 3 s in a row."""
        since: list[float] = []

        def settled() -> bool:
            if not self.deployment.settled():
                since.clear()
                return False
            since.append(time.monotonic())
            return since[-1] - since[0] >= 3.0  # and stays so: a failover may only be starting

        if not wait_until(settled, 40, 0.25):
            window.note = f"; {server.name} (port {server.port}) did NOT settle as a replica within 40 s"
        else:
            window.note = f"; port {server.port} is a {self.deployment.role(server)}"

    def _daemon(self) -> tuple[int, Any]:
        n = self.rng.randrange(len(self.deployment.fronts))
        return n, self.deployment.fronts[n]

    def kill_daemon(self, window: Window) -> None:
        n, daemon = self._daemon()
        self.note(f"kill-daemon: SIGKILL of front daemon {n} (pid {pid_of(daemon)})")
        window.started = time.monotonic()
        kill(pid_of(daemon), signal.SIGKILL)
        time.sleep(1.0)
        restart(daemon)
        wait_until(lambda: ready(daemon), 30)

    def term_daemon(self, window: Window) -> None:
        n, daemon = self._daemon()
        self.note(f"term-daemon: SIGTERM of front daemon {n} (pid {pid_of(daemon)})")
        window.started = time.monotonic()
        kill(pid_of(daemon), signal.SIGTERM)
        # While it drains ([server] drain_seconds, 1 s here) it still serves, but not ready.
        window.ready_503 = wait_until(lambda: daemon.get("/ready")[0] == 503, 0.9, 0.02)
        self.note(f"front daemon {n}: /ready {'answered 503' if window.ready_503 else 'did NOT answer 503'} "
                  f"while draining")
        daemon.process.wait(60)
        self.note(f"front daemon {n} exited with status {daemon.process.returncode}")
        restart(daemon)
        wait_until(lambda: ready(daemon), 30)

    def kill_worker(self, window: Window) -> None:
        worker = self.deployment.worker
        assert worker is not None
        redis = self.deployment.redis()
        holding = wait_until(lambda: sum(v for k, v in queue_left(redis).items() if k.startswith("pending")) > 0,
                             10, 0.02)
        redis.close()
        self.note(f"kill-worker: SIGKILL of the worker (pid {pid_of(worker)}), "
                  f"{'mid-job' if holding else 'NOT holding a job'}")
        window.started = time.monotonic()
        kill(pid_of(worker), signal.SIGKILL)
        time.sleep(1.0)
        restart(worker)
        wait_until(lambda: ready(worker), 30)


def idempotency(deployment: Deployment, load: LoadClient, count: int = 5) -> Check:
    """Acknowledged Submits sent again, each with its wsa:MessageID, to the
    other daemon: each must answer the orderId it first did (run last:
    without idempotency it stores orders the other checks would count)."""
    sent = [a for a in load.attempts if a.kind == "submit" and a.outcome == "ok"][:count]
    same, answers = 0, []
    for n in range(len(deployment.fronts)):
        load._url(n, refresh=True)  # a daemon restarted since listens on another port
    for attempt in sent:
        body = envelope(submit_payload(attempt.reference), attempt.message_id)
        again = load._post("submit", (attempt.daemon + 1) % len(deployment.fronts), body)
        answers.append(again.order_id or again.outcome)
        same += again.order_id == attempt.order_id
    return Check("a Submit sent again with its wsa:MessageID answers the same orderId", bool(sent) and same == len(sent),
                 f"{same} of {len(sent)} answered the first orderId (answers {answers})")


def run(settings: Settings) -> Outcome:
    root = settings.root or Path(tempfile.mkdtemp(prefix="oseod-chaos-"))
    rng = random.Random(settings.seed)
    print(f"chaos: seed {settings.seed}, events {', '.join(settings.sequence)}; files in {root}", flush=True)
    deployment = start_deployment(root / "run", min_replicas=settings.min_replicas, replicas=settings.replicas)
    chaos = Chaos(deployment, rng, time.monotonic())
    load = LoadClient(deployment.fronts, rate=settings.rate, status_rate=settings.status_rate, seed=settings.seed,
                      tag=f"chaos-{settings.seed}-{int(time.time())}")
    try:
        chaos.note(f"deployment up: primary port {deployment.primary_port()}, fronts "
                   f"{[d.http for d in deployment.fronts]}, min_replicas {settings.min_replicas}; load "
                   f"{settings.rate}/s Submits, {settings.status_rate}/s GetStatus")
        load.start()
        began = time.monotonic()
        count = len(settings.sequence)
        for k, event in enumerate(settings.sequence):
            # Evenly spread, with some jitter, never before the previous one is repaired.
            at = began + settings.duration * (k + 1) / (count + 1) + rng.uniform(-2.0, 2.0)
            time.sleep(max(0.0, at - time.monotonic()))
            chaos.strike(event)
        time.sleep(max(0.0, began + settings.duration - time.monotonic()))
        chaos.note("load stops")
        load.stop()
        chaos.note(f"load stopped; quiet period (at most {settings.quiet:.0f} s)")
        acked = {o for _, o in load.acks}

        def finished() -> bool:
            redis = deployment.redis()
            try:
                found = read_orders(redis)
                return not unfinished(found, acked & set(found.orders)) and not any(queue_left(redis).values())
            finally:
                redis.close()

        wait_until(finished, settings.quiet, 1.0)
        chaos.note("checking")
        redis = deployment.redis()
        try:
            assert deployment.worker is not None
            checks, figures = check_all(redis, deployment.worker.data_dir / "results", load.attempts, load.acks,
                                        load.unacknowledged, chaos.windows, GRACE, chaos.t0)
            checks.append(idempotency(deployment, load))
        finally:
            redis.close()
    finally:
        load.stop()
        deployment.stop()
    figures["tracebacks in the daemons' logs"] = sum(
        d.log_path.read_text(errors="replace").count("Traceback") for d in deployment.daemons())
    outcome = Outcome(checks, chaos.windows, figures, chaos.timeline, root)
    # Kept with the servers' and daemons' logs when something failed.
    (root / "timeline.txt").write_text("\n".join(chaos.timeline) + report(outcome) + "\n")
    with open(root / "requests.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["kind", "daemon", "started_s", "ended_s", "status", "outcome", "order_id", "reference",
                         "message_id", "retry_after", "detail"])
        for a in load.attempts:
            writer.writerow([a.kind, a.daemon, f"{a.started - chaos.t0:.3f}", f"{a.ended - chaos.t0:.3f}", a.status,
                             a.outcome, a.order_id, a.reference, a.message_id, a.retry_after, a.detail])
    if outcome.ok and not settings.keep and settings.root is None:
        shutil.rmtree(root, ignore_errors=True)
        outcome.root = None
    return outcome


def report(outcome: Outcome, t0: float | None = None) -> str:
    lines = ["", "== chaos windows (client side: from the event to the end of its last failed request)"]
    for w in outcome.windows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(w.by_outcome.items())) or "none"
        target = TARGETS.get(w.event, 0.0)
        verdict = "within" if w.outage <= target else "OVER"
        lines.append(f"  {w.event:13} unavailability {w.outage:5.1f} s ({verdict} {target:.0f} s), repaired after "
                     f"{w.repaired - w.started:5.1f} s; failed requests: {kinds}{w.note}")
    lines.append("== figures")
    lines += [f"  {k}: {v}" for k, v in outcome.figures.items()]
    lines.append("== invariants")
    lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in outcome.checks]
    lines.append(f"== {'all invariants hold' if outcome.ok else 'INVARIANTS FAILED'}"
                 + (f"; files kept in {outcome.root}" if outcome.root else ""))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Chaos test of oseod on Redis Sentinel (issue 14).")
    parser.add_argument("--seed", type=int, default=None, help="the events' seed (default: random, printed)")
    parser.add_argument("--events", type=int, default=len(EVENTS),
                        help=f"how many events (default {len(EVENTS)}: each kind once, in a seeded order)")
    parser.add_argument("--sequence", help=f"these events in this order, comma-separated, from {', '.join(EVENTS)}")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load (30 to 600)")
    parser.add_argument("--quiet", type=float, default=30.0, help="at most this long for the work to finish")
    parser.add_argument("--rate", type=float, default=20.0, help="Submits per second")
    parser.add_argument("--status-rate", type=float, default=10.0, help="GetStatus per second")
    parser.add_argument("--min-replicas", type=int, default=1, choices=[0, 1], help="[redis] min_replicas")
    parser.add_argument("--replicas", type=int, default=2, choices=[1, 2], help="Redis replicas (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the processes' files (logs) even when all holds")
    parser.add_argument("--json", type=Path, help="also write the outcome as JSON here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    rng = random.Random(seed)
    if args.sequence:
        sequence = [e.strip() for e in args.sequence.split(",") if e.strip()]
        unknown = [e for e in sequence if e not in EVENTS]
        if unknown:
            parser.error(f"unknown events {unknown}")
    elif args.events <= len(EVENTS):
        sequence = rng.sample(EVENTS, max(args.events, 0))
    else:
        sequence = [*rng.sample(EVENTS, len(EVENTS)), *rng.choices(EVENTS, k=args.events - len(EVENTS))]
    settings = Settings(seed, sequence, duration=min(max(args.duration, 30.0), 600.0), quiet=max(args.quiet, 5.0),
                        rate=args.rate, status_rate=args.status_rate, keep=args.keep,
                        min_replicas=args.min_replicas, replicas=args.replicas)
    try:
        with signals_raise():  # SIGTERM/SIGHUP stop every process started, as Ctrl-C does
            outcome = run(settings)
    except KeyboardInterrupt:
        print("chaos: interrupted; every process started was stopped", file=sys.stderr)
        return 130
    except (RuntimeError, AssertionError, OSError) as e:
        print(f"chaos: the set-up failed: {e}", file=sys.stderr)
        return 2
    print(report(outcome))
    print(f"(seed {seed}: `make chaos CHAOS_ARGS='--seed {seed}'` replays the same sequence)")
    if args.json:
        args.json.write_text(json.dumps({"seed": seed, "sequence": sequence, "ok": outcome.ok,
                                         "checks": [asdict(c) for c in outcome.checks],
                                         "windows": [asdict(w) for w in outcome.windows],
                                         "figures": outcome.figures, "timeline": outcome.timeline},
                                        indent=2, default=str) + "\n")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
