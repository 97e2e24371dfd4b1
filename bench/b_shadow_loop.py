"""The shadow loop end to end: decisions planned, posted to the simulator, measured and learned.

Four real services run as they are deployed, each its own process (``python -m services.<name>``) with its own
NATS connection and flags, on the shadow clock they share (its epoch is in the flags bucket); the figure starts
once every one of them is ready, so it measures the loop, not four interpreter start-ups. The planner drafts with the synthetic writer and gates every draft (quality,
uniqueness, rotation); the poster claims and posts to the simulated X; the collector records the simulated
audience's outcomes at +1 h and +24 h of the shadow clock; the learner trains and publishes ``model.updated``,
which the planner's next drafts use. Every event goes through JetStream.

The bench is the scheduler (the services' own schedules are off): four loops publish ``cmd.plan``,
``cmd.posting``, ``cmd.collect`` and ``cmd.learn`` with ``bus.publish_command`` and wait for each run's
``job.completed`` before the next, and starts runs no more often than a deployed scheduler would (posting
every 5 clock minutes, collection every clock hour); a loop whose run found nothing to do waits a few
milliseconds (the shadow clock moves on meanwhile), and the plan loop asks for a run once the queue has room for
half a batch. The learner also learns on its own every ``LEARN_EVERY_N_OUTCOMES``; the bench asks
for one last run once every outcome is in.

The figure is the wall time from the first ``cmd.plan`` to the ``model.updated`` that covers every posted
decision: published after the last outcome and with ``outcomes_used`` = the posted decisions with a known ER
(the learner trains on one sample per decision, its latest horizon with a known ER).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.bus import BusNames, JetStreamBus, Projection, ReadItem
from shared.clock import shared_clock
from shared.events import (
    Command,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionQueued,
    DecisionSkipped,
    JobCompleted,
    ModelUpdated,
    OutcomeRecorded,
    utcnow,
)

from .core import Ctx, Row, readyz, stop_process

#: the shadow clock: one clock hour every 0.1 s of wall time (+24 h horizons come 2.4 s after a post)
SPEED = 36_000
HORIZONS = "1,24"
#: what a user would set for a fast shadow run; nothing else differs from the defaults
SETTINGS = {
    "MODE": "shadow",
    "SHADOW_CLOCK_SPEED": str(SPEED),
    "SHADOW_SEED": "7",
    "MAX_POSTS_PER_HOUR": "120",
    "MIN_POST_INTERVAL_MINUTES": "0",
    "PLAN_BATCH": "100",
    "PLAN_MAX_QUEUED": "1000",
    "POSTING_BATCH": "100",
    "COLLECT_HORIZONS_HOURS": HORIZONS,
    "LEARN_EVERY_N_OUTCOMES": "2000",
    # the bench schedules the jobs itself
    "PLAN_INTERVAL_MINUTES": "0",
    "POSTING_INTERVAL_MINUTES": "0",
    "COLLECT_INTERVAL_HOURS": "0",
    "LEARN_INTERVAL_MINUTES": "0",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}
NOTE_SETTINGS = ("SHADOW_CLOCK_SPEED", "PLAN_BATCH", "PLAN_MAX_QUEUED", "POSTING_BATCH", "MAX_POSTS_PER_HOUR",
                 "MIN_POST_INTERVAL_MINUTES", "LEARN_EVERY_N_OUTCOMES")
SERVICES = ("planner", "poster", "collector", "learner")
OBSERVED = frozenset({
    "decision.queued", "decision.skipped", "decision.posted", "decision.post_failed", "decision.post_skipped",
    "outcome.recorded", "model.updated", "job.completed",
})
#: one job run may take this long before the bench gives up
JOB_TIMEOUT_S = 120.0
#: a loop whose run found nothing to do waits this long before the next, in wall seconds (at x36,000 a collect
#: run finding nothing waits a clock hour, the others six clock minutes)
IDLE_S = {"plan": 0.01, "posting": 0.01, "collect": 0.1, "learn": 0.05}
#: at most one run per this many wall seconds, as a deployed scheduler would start them: posting every 5 clock
#: minutes (POSTING_INTERVAL_MINUTES' default), collection every clock hour (more often than its default 4 h, so
#: the +1 h outcomes are not late); planning and learning as soon as they are wanted
PERIOD_S = {"plan": 0.0, "posting": 300 / SPEED, "collect": 3600 / SPEED, "learn": 0.0}


@dataclass
class Tally:
    """What the bench sees in the log (its own projection, like any other reader)."""

    horizons: int
    queued: set[str] = field(default_factory=set)
    skipped_by: Counter[str] = field(default_factory=Counter)
    posted: set[str] = field(default_factory=set)
    post_failed: set[str] = field(default_factory=set)
    post_skipped: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, set[int]] = field(default_factory=dict)
    outcome_events: int = 0
    #: posted decisions with an outcome at every horizon
    complete: int = 0
    known_er: set[str] = field(default_factory=set)
    last_outcome_seq: int = 0
    models: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, version, outcomes_used)
    jobs: Counter[str] = field(default_factory=Counter)
    covered_at: float | None = None
    waiters: dict[str, asyncio.Future[JobCompleted]] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return len(self.posted) + len(self.post_failed)

    def all_measured(self, n: int) -> bool:
        return len(self.queued) >= n and self.settled >= len(self.queued) and self.complete >= len(self.posted)

    def covering_model(self) -> tuple[int, int, int] | None:
        for m in reversed(self.models):
            if m[0] > self.last_outcome_seq and m[2] >= len(self.known_er):
                return m
        return None

    def apply(self, item: ReadItem, n: int) -> None:
        ev = item.event
        if isinstance(ev, DecisionQueued):
            self.queued.add(ev.decision_id)
        elif isinstance(ev, DecisionSkipped):
            self.skipped_by[ev.gate] += 1
        elif isinstance(ev, DecisionPosted):
            self.posted.add(ev.decision_id)
        elif isinstance(ev, DecisionPostFailed):
            if ev.final:
                self.post_failed.add(ev.decision_id)
        elif isinstance(ev, DecisionPostSkipped):
            self.post_skipped[ev.reason] += 1
        elif isinstance(ev, OutcomeRecorded):
            self.outcome_events += 1
            seen = self.outcomes.setdefault(ev.decision_id, set())
            if int(ev.horizon_hours) not in seen:
                seen.add(int(ev.horizon_hours))
                self.complete += len(seen) == self.horizons
            if ev.er_calculated is not None:
                self.known_er.add(ev.decision_id)
            self.last_outcome_seq = item.seq
        elif isinstance(ev, ModelUpdated):
            self.models.append((item.seq, ev.version, ev.outcomes_used))
            if self.covered_at is None and self.all_measured(n) and self.covering_model() is not None:
                self.covered_at = time.perf_counter()
        elif isinstance(ev, JobCompleted):
            self.jobs[ev.job] += 1
            fut = self.waiters.pop(ev.run_id, None)
            if fut is not None and not fut.done():
                fut.set_result(ev)


class Service:
    """One service as it is deployed: its own process (``python -m services.<name>``), logging JSON to a file."""

    def __init__(self, name: str, environ: dict[str, str], home: Path):
        from xbot.embedded import free_port

        self.name, self.port = name, free_port()
        self.log = home / f"{name}.log"
        env = dict(os.environ, **environ, XBOT_HOME=str(home / name), SERVICE_HEALTH_PORT=str(self.port))
        self.fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, stdout=self.fh,  # noqa: ASYNC220
                                     stderr=subprocess.STDOUT)

    async def ready(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            h = await readyz(self.port)
            if h is not None and h.get("status") == 200:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready within {timeout:.0f}s: {self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-800:]
        return ""

    def lines(self) -> int:
        with open(self.log, "rb") as fh:
            return sum(1 for _ in fh)

    def stop(self) -> None:
        stop_process(self.proc)
        self.fh.close()


async def bench_shadow_loop(ctx: Ctx, n: int | None = None) -> list[Row]:
    n = n or (300 if ctx.quick else 10_000)
    ns = f"sl{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="xbot-shadow-loop-"))
    environ = {"NATS_URL": ctx.nats.url, "XBOT_NAMESPACE": ns, **SETTINGS}
    if ctx.quick:
        environ["LEARN_EVERY_N_OUTCOMES"] = "100"
    from shared.config import CommonSettings, load_settings

    common: CommonSettings = load_settings(CommonSettings, environ)
    tally = Tally(horizons=len(HORIZONS.split(",")))
    runs: Counter[str] = Counter()
    seconds: dict[str, float] = defaultdict(float)
    services: list[Service] = []
    try:
        bus = await JetStreamBus.connect(ctx.nats.url, names=BusNames(ns), settings=common.stream_settings(),
                                         name="xbot-bench-shadow-loop")
        observer: Projection | None = None
        try:
            await bus.ensure()
            ctx.progress("shadow loop: starting planner, poster, collector, learner")
            for name in SERVICES:
                services.append(Service(name, environ, home))
            for svc in services:
                await svc.ready(60)
            observer = Projection(bus, lambda item: tally.apply(item, n), name="bench-shadow-loop",
                                  names=OBSERVED)
            observer.start()
            await observer.wait_caught_up(timeout=30)
            clock = await shared_clock(bus, SPEED)  # the services' own clock (its epoch is in the bucket)
            clock_start = clock.now()
            wall = await _drive(ctx, bus, tally, runs, seconds, n, deadline_s=180.0 if ctx.quick else 600.0)
            clock_span_h = (clock.now() - clock_start).total_seconds() / 3600
        finally:
            if observer is not None:
                await observer.stop()
            for svc in reversed(services):
                svc.stop()
            await bus.delete_namespace()
            await bus.close()
        log_lines = sum(svc.lines() for svc in services)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    posted = len(tally.posted)
    skipped = sum(tally.skipped_by.values())
    _, version, used = tally.covering_model() or (0, 0, 0)
    gates = ", ".join(f"{g} {c:,}" for g, c in sorted(tally.skipped_by.items())) or "none"
    settings = ", ".join(f"{k}={environ[k]}" for k in NOTE_SETTINGS)
    post_skips = ", ".join(f"{r} {c:,}" for r, c in sorted(tally.post_skipped.items())) or "none"
    note = (
        f"{posted / wall:,.0f} decisions/s; queued {len(tally.queued):,}, skipped by gate {skipped:,} ({gates}), "
        f"posted {posted:,}, post failures {len(tally.post_failed)}, posts put off ({post_skips}), "
        f"outcomes {tally.outcome_events:,} (+{HORIZONS.replace(',', ' h, +')} h), models v1..v{version} "
        f"(last trained on {used:,} decisions); job runs (wall s from command to job.completed): "
        f"{', '.join(f'{j} {c} ({seconds[j]:.1f} s)' for j, c in sorted(runs.items()))}; "
        f"{clock_span_h:.0f} clock hours; {log_lines:,} log lines; each service its own process; {settings}"
    )
    name = f"shadow loop: {n:,} decisions planned, posted, measured, learned"
    return [Row(name, wall, "s", goal="< 60 s", met=wall < 60, note=note)]


async def _drive(ctx: Ctx, bus: JetStreamBus, tally: Tally, runs: Counter[str], seconds: dict[str, float], n: int, *,
                 deadline_s: float) -> float:
    """Run the four job loops until a model covers every decision; the wall time from the first plan."""
    loop = asyncio.get_running_loop()

    async def run_job(job: str, i: int) -> JobCompleted:
        run_id = f"bench-{job}-{i}"
        fut: asyncio.Future[JobCompleted] = loop.create_future()
        tally.waiters[run_id] = fut
        t = time.perf_counter()
        await bus.publish_command(Command(job=job, run_id=run_id, requested_at=utcnow(), requested_by="cli"))
        done = await asyncio.wait_for(fut, JOB_TIMEOUT_S)
        runs[job] += 1
        seconds[job] += time.perf_counter() - t
        if done.status == "failed":
            raise RuntimeError(f"{job} run failed: {done.detail}")
        return done

    def did_nothing(done: JobCompleted) -> bool:
        return done.status == "skipped" or not any(
            done.counts.get(k) for k in ("queued", "skipped", "posted", "recorded", "version"))

    async def job_loop(job: str, wanted: Callable[[], bool]) -> None:
        i = 0
        started = -1e9
        while True:
            if not wanted():
                await asyncio.sleep(IDLE_S[job])
                continue
            wait = started + PERIOD_S[job] - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            i += 1
            started = time.perf_counter()
            if did_nothing(await run_job(job, i)):
                await asyncio.sleep(IDLE_S[job])

    asked_at = -1

    def learn_wanted() -> bool:
        # the learner learns every LEARN_EVERY_N_OUTCOMES by itself; once everything is measured, ask for the run
        # that covers it all (and again if the learner's state had not applied every outcome yet)
        nonlocal asked_at
        if not tally.all_measured(n) or tally.covering_model() is not None:
            return False
        if asked_at == tally.last_outcome_seq and tally.models and tally.models[-1][0] < tally.last_outcome_seq:
            return False  # asked for these outcomes already and no model since: the run is on its way
        asked_at = tally.last_outcome_seq
        return True

    max_queued, batch = int(SETTINGS["PLAN_MAX_QUEUED"]), int(SETTINGS["PLAN_BATCH"])

    def plan_wanted() -> bool:
        # as a scheduler would: plan once there is room in the queue for half a batch (or for the rest), not for
        # every single post that leaves it (a run that finds the queue full does nothing but cost a round trip)
        left = n - len(tally.queued)
        room = max_queued - (len(tally.queued) - tally.settled)
        return left > 0 and room >= min(batch // 2, left)

    loops: dict[str, Callable[[], bool]] = {
        "plan": plan_wanted,
        "posting": lambda: tally.settled < len(tally.queued),
        "collect": lambda: tally.complete < len(tally.posted),
        "learn": learn_wanted,
    }
    t0 = time.perf_counter()

    async def report() -> None:
        while True:
            await asyncio.sleep(0.5)
            v = tally.models[-1][1] if tally.models else 0
            ctx.progress(
                f"shadow loop: queued {len(tally.queued):,}/{n:,}, posted {len(tally.posted):,}, "
                f"outcomes {tally.outcome_events:,}, model v{v}, {time.perf_counter() - t0:.0f}s"
            )

    tasks = [asyncio.create_task(job_loop(job, wanted), name=f"bench:{job}") for job, wanted in loops.items()]
    tasks.append(asyncio.create_task(report(), name="bench:report"))

    async def covered() -> None:
        while tally.covered_at is None:
            for t in tasks:
                if t.done():
                    t.result()  # a failed loop fails the bench now, not at the deadline
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(covered(), deadline_s)
    except TimeoutError:
        raise TimeoutError(
            f"not done after {deadline_s:.0f}s: queued {len(tally.queued)}, posted {len(tally.posted)}, "
            f"outcomes {tally.outcome_events}, models {len(tally.models)}"
        ) from None
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert tally.covered_at is not None
    return tally.covered_at - t0
