"""Many X accounts in one stack: 1,000 accounts for 24 clock hours in shadow mode, each posting at its profile's
rate; what it costs in wall time, memory per account, restart time and deliveries per decision.

The six services run as they are deployed, each its own process (``python -m services.<name>``), with an accounts
file (``XBOT_ACCOUNTS_FILE``) of ``n`` accounts, every one with the simulated publisher, 2-3 topics of its own and
its own limits (``max_posts_per_hour`` 1, ``min_post_interval_minutes`` 60, 120 or 180, 2-4 replies a day). The
services' own schedules run every job for every account (planning hourly, replies every 30 min, posting every
5 min, collection hourly, learning hourly) on the shared shadow clock at ``SPEED``; the bench only watches the log.

1. Wall time: from every service ready (the clock's start) until every scheduled job has completed the run of the
   slot in progress at the end of the clock span (the stack did the span's work, not only let the clock pass).
   The same stack with ONE account runs right after, with the same settings: its RSS is the baseline of the
   memory per account, ``(RSS_n - RSS_1) / (n - 1)`` per service.
2. Restart: the planner and the poster are killed (-9) after the run and started again; the figure is the time the
   runtime logs itself (``state rebuilt from the log``: snapshot load plus tail replay); the baseline is the same
   restart with ``SNAPSHOT_EVERY_EVENTS=0`` (the full replay).
3. Deliveries per decision: the messages the services' projections are delivered, summed over the six services,
   per decision (queued posts, replies and skipped drafts). Read from each service's health endpoint when it has
   a delivered counter (``RECEIVED_KEYS``); none has one yet, so the bench counts what the runtime logs once, in
   ``state rebuilt from the log`` (``events``: ``Projection.applied_count``), at the planner's and the poster's
   full-replay restart, and counts the same for the other four, whose projections read the same whole stream
   (``bus.read`` with no subject filter: the ``names`` filter only decides which messages to decode after they
   arrived). The note says which way the figure was got.

The accounts are recorded once before the services start (``xbot accounts apply``, as an operator does): six
services starting together on a new file race to record it, and one of them can give up (``record_accounts``:
"could not record the accounts after 3 attempts").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.bus import BusNames, JetStreamBus, Projection, ReadItem
from shared.clock import shared_clock
from shared.events import (
    DecisionPosted,
    DecisionQueued,
    DecisionSkipped,
    JobCompleted,
    OutcomeRecorded,
)

from .core import Ctx, Row, readyz, stop_process

#: the shadow clock: 24 clock hours in 30 wall seconds (posting runs every 0.1 s of wall time)
SPEED = 2880
SERVICES = ("gateway", "planner", "replier", "poster", "collector", "learner")
#: the schedules (service clock): the defaults, but collection hourly so +1 h outcomes are read within the span
SETTINGS = {
    "MODE": "shadow",
    "SHADOW_CLOCK_SPEED": str(SPEED),
    "SHADOW_SEED": "7",
    "PLAN_INTERVAL_MINUTES": "60",
    "REPLY_INTERVAL_MINUTES": "30",
    "POSTING_INTERVAL_MINUTES": "5",
    "COLLECT_INTERVAL_HOURS": "1",
    "LEARN_INTERVAL_MINUTES": "60",
    "COLLECT_HORIZONS_HOURS": "1,24",
    "SNAPSHOT_CHECK_SECONDS": "1",
    "READY_MAX_LAG": "1000000",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}
NOTE_SETTINGS = ("SHADOW_CLOCK_SPEED", "PLAN_INTERVAL_MINUTES", "REPLY_INTERVAL_MINUTES", "POSTING_INTERVAL_MINUTES",
                 "COLLECT_INTERVAL_HOURS", "LEARN_INTERVAL_MINUTES", "SNAPSHOT_CHECK_SECONDS")
#: job -> interval in clock seconds (as the services' schedules compute their slots)
INTERVALS = {"plan": 3600.0, "reply": 1800.0, "posting": 300.0, "collect": 3600.0, "learn": 3600.0}
OBSERVED = frozenset({"decision.queued", "decision.skipped", "decision.posted", "outcome.recorded", "job.completed"})
TOPICS = ("ai_tools", "startups", "productivity", "devops", "marathon", "nutrition", "contracts", "legal_tech",
          "design", "security", "data", "cloud", "gaming", "finance", "travel", "cooking")
INTERVAL_CHOICES = (60, 120, 180)
#: health fields that would count the messages a service's projection was delivered (none exists yet)
RECEIVED_KEYS = ("projection_received", "received", "projection_delivered", "delivered")
#: goals of the brief (kB of RSS per account beyond the empty state)
KB_GOAL = {"planner": 300, "replier": 300}
KB_GOAL_OTHERS = 50


def accounts_toml(n: int) -> str:
    out = []
    for i in range(n):
        k = 2 + i % 2
        topics = [TOPICS[(i * 3 + j * 5) % len(TOPICS)] for j in range(k)]
        out.append(
            f'[[account]]\nid = "a{i:04d}"\nusername = "acct{i:04d}"\npublisher = "simulated"\n'
            f'timezone = "UTC"\nactive_hours = [0, 24]\ntopics = {json.dumps(topics)}\n'
            f'[account.limits]\nmax_posts_per_hour = 1\nmin_post_interval_minutes = {interval_of(i)}\n'
            f'posts_per_day = {24 * 60 // interval_of(i)}\nreplies_per_day = {2 + i % 3}\n'
            f'[account.replies]\ntargets = []\nsearches = ["{topics[0].replace("_", " ")}"]\n'
        )
    return "\n".join(out)


def interval_of(i: int) -> int:
    return INTERVAL_CHOICES[i % len(INTERVAL_CHOICES)]


@dataclass
class Tally:
    queued: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    gates: Counter[str] = field(default_factory=Counter)
    posted: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: (service, job) -> highest slot completed, and the clock lag (s) of each completion past its slot's start
    done_slot: dict[tuple[str, str], int] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    failed_runs: Counter[str] = field(default_factory=Counter)
    now: Any = None

    def apply(self, item: ReadItem) -> None:
        ev = item.event
        if isinstance(ev, DecisionQueued):
            (self.replies if ev.decision_type == "reply" else self.queued)[ev.account] += 1
        elif isinstance(ev, DecisionSkipped):
            self.skipped[ev.account] += 1
            self.gates[ev.gate] += 1
        elif isinstance(ev, DecisionPosted):
            self.posted[ev.account] += 1
        elif isinstance(ev, OutcomeRecorded):
            self.outcomes[ev.account] += 1
        elif isinstance(ev, JobCompleted):
            if ev.status == "failed":
                self.failed_runs[ev.job] += 1
            head, _, slot = ev.run_id.rpartition("-")
            if head == ev.job and slot.isdigit() and ev.job in INTERVALS:
                key = (ev.service, ev.job)
                self.done_slot[key] = max(self.done_slot.get(key, -1), int(slot))
                if self.now is not None:
                    lag = self.now().timestamp() - int(slot) * INTERVALS[ev.job]
                    self.lag[ev.job] = max(self.lag[ev.job], lag)


class Proc:
    """One service process, logging JSON to its own file."""

    def __init__(self, name: str, environ: dict[str, str], home: Path, tag: str = ""):
        from xbot.embedded import free_port

        self.name, self.port = name, free_port()
        self.log = home / f"{name}{tag}.log"
        env = dict(os.environ, **environ, XBOT_HOME=str(home / name), SERVICE_HEALTH_PORT=str(self.port),
                   GATEWAY_PORT=str(free_port()))
        self.t0 = time.perf_counter()
        self.fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, stdout=self.fh,  # noqa: ASYNC220
                                     stderr=subprocess.STDOUT)

    async def ready(self, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            h = await readyz(self.port)
            if h is not None and h.get("status") == 200:
                return time.perf_counter() - self.t0
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready within {timeout:.0f}s: {self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-800:]
        return ""

    def logged(self, msg: str) -> list[dict[str, Any]]:
        out = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        e = json.loads(line)
                        if e.get("msg", e.get("event")) == msg:
                            out.append(e)
        return out

    def rss_mb(self) -> float | None:
        import psutil

        with contextlib.suppress(Exception):
            return float(psutil.Process(self.proc.pid).memory_info().rss / 1e6)
        return None

    def stop(self, *, crash: bool = False) -> None:
        stop_process(self.proc, crash=crash)
        self.fh.close()


@dataclass
class Stack:
    n: int
    hours: float
    wall: float = 0.0
    clock_hours: float = 0.0
    tally: Tally = field(default_factory=Tally)
    rss: dict[str, float | None] = field(default_factory=dict)
    ready_s: float = 0.0
    log_events: int = 0
    restarts: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshot_every: str = ""
    apply_s: float = 0.0
    #: job -> scheduled runs of the span not yet completed when the bench gave up (empty: the stack kept up)
    behind: dict[str, int] = field(default_factory=dict)
    #: messages delivered to each service's projection, when its health endpoint says so
    received: dict[str, int] = field(default_factory=dict)


async def run_stack(ctx: Ctx, n: int, hours: float, *, restart: tuple[str, ...] = ()) -> Stack:
    ns = f"ac{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="xbot-bench-accounts-"))
    (home / "accounts.toml").write_text(accounts_toml(n))
    import asyncpg

    admin = await asyncpg.connect(ctx.pg.url)
    await admin.execute(f'CREATE DATABASE "{ns}"')
    await admin.close()
    environ = {"NATS_URL": ctx.nats.url, "XBOT_NAMESPACE": ns, "XBOT_ACCOUNTS_FILE": str(home / "accounts.toml"),
               "DATABASE_URL": ctx.pg.url.rsplit("/", 1)[0] + f"/{ns}", **SETTINGS,
               # the default (10,000) for the full size; the quick log is smaller
               "SNAPSHOT_EVERY_EVENTS": "1000" if ctx.quick else "10000"}
    from shared.config import CommonSettings, load_settings

    common: CommonSettings = load_settings(CommonSettings, environ)
    st = Stack(n, hours, snapshot_every=environ["SNAPSHOT_EVERY_EVENTS"])
    procs: dict[str, Proc] = {}
    try:
        bus = await JetStreamBus.connect(ctx.nats.url, names=BusNames(ns), settings=common.stream_settings(),
                                         name="xbot-bench-accounts")
        observer: Projection | None = None
        try:
            await bus.ensure()
            # the clock starts here (its epoch is set now, before any service): the span includes the start-ups
            clock = await shared_clock(bus, SPEED)
            start = clock.epoch.timestamp()
            end = start + hours * 3600
            w0 = time.perf_counter()
            st.tally.now = clock.now
            observer = Projection(bus, st.tally.apply, name="bench-accounts", names=OBSERVED)
            observer.start()
            # record the accounts once, as an operator does (``xbot accounts apply``): six services starting at once
            # on a new file race to record it, and one gives up ("could not record the accounts after 3 attempts")
            ctx.progress(f"accounts: xbot accounts apply ({n:,} accounts)")
            t_apply = time.perf_counter()
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "xbot", "accounts", "apply"], env=dict(os.environ, **environ),
                capture_output=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"xbot accounts apply failed: {done.stderr.decode(errors='replace')[-800:]}")
            st.apply_s = time.perf_counter() - t_apply
            ctx.progress(f"accounts: starting six services with {n:,} accounts")
            for name in SERVICES:
                procs[name] = Proc(name, environ, home)
            for p in procs.values():
                await p.ready(300)
            st.ready_s = time.perf_counter() - w0
            owners = {"plan": "planner", "reply": "replier", "posting": "poster", "collect": "collector",
                      "learn": "learner"}
            last = {job: int(end // iv) for job, iv in INTERVALS.items()}
            deadline = w0 + (50 if ctx.quick else 420)
            while True:
                behind = {j: (last[j] - st.tally.done_slot.get((owners[j], j), -1)) for j in INTERVALS}
                if clock.now().timestamp() >= end and all(b <= 0 for b in behind.values()):
                    break
                for p in procs.values():
                    if p.proc.poll() is not None:
                        raise RuntimeError(f"{p.name} exited with {p.proc.returncode}: {p.tail()}")
                if time.perf_counter() > deadline:  # the stack cannot keep up: report what it did by then
                    st.behind = {j: b for j, b in behind.items() if b > 0}
                    break
                t = st.tally
                ctx.progress(f"accounts {n:,}: clock +{(clock.now().timestamp() - start) / 3600:.1f} h, queued "
                             f"{sum(t.queued.values()):,}, posted {sum(t.posted.values()):,}, runs behind {behind}")
                await asyncio.sleep(0.1)
            st.wall = time.perf_counter() - w0
            st.clock_hours = (clock.now().timestamp() - start) / 3600
            await asyncio.sleep(1.0)
            for name, p in procs.items():
                st.rss[name] = p.rss_mb()
                h = await readyz(p.port) or {}
                got = next((h[k] for k in RECEIVED_KEYS if isinstance(h.get(k), int)), None)
                if got is not None:
                    st.received[name] = got
            # the restarts: the others stop cleanly (nothing new is written meanwhile), the measured ones die (-9)
            for name in SERVICES:
                if name not in restart:
                    procs.pop(name).stop()
            for name in restart:
                procs.pop(name).stop(crash=True)
            st.log_events = await bus.last_seq()
            for name in restart:
                st.restarts[name] = await _restart(ctx, name, environ, home, st.log_events)
        finally:
            if observer is not None:
                await observer.stop()
            for p in procs.values():
                p.stop()
            await bus.delete_namespace()
            await bus.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return st


async def _restart(ctx: Ctx, name: str, environ: dict[str, str], home: Path, log_events: int) -> dict[str, Any]:
    """Start ``name`` again with snapshots on (what it saved while running), kill it, then again with snapshots off."""
    quiet = {k: "0" for k in ("PLAN_INTERVAL_MINUTES", "REPLY_INTERVAL_MINUTES", "POSTING_INTERVAL_MINUTES",
                              "COLLECT_INTERVAL_HOURS", "LEARN_INTERVAL_MINUTES")}
    out: dict[str, Any] = {}
    for label, every in (("snap", None), ("full", "0")):
        ctx.progress(f"accounts: restart of {name} ({'snapshots off' if every else 'snapshots on'})")
        env = dict(environ, **quiet)
        if every is not None:
            env["SNAPSHOT_EVERY_EVENTS"] = every
        p = Proc(name, env, home, tag=f"-restart-{label}")
        try:
            wall = await p.ready(300)
            rebuilt = (p.logged("state rebuilt from the log") or [{}])[0]
        finally:
            p.stop(crash=True)
        out[label] = dict(rebuilt, wall=wall)
    return out


def _spread(c: Counter[str], n: int) -> tuple[int, float, int]:
    vals = [c.get(f"a{i:04d}", 0) for i in range(n)]
    return (min(vals), sum(vals) / n, max(vals)) if vals else (0, 0.0, 0)


async def bench_accounts(ctx: Ctx) -> list[Row]:
    n, hours = (50, 6.0) if ctx.quick else (1000, 24.0)
    big = await run_stack(ctx, n, hours, restart=("planner", "poster"))
    one = await run_stack(ctx, 1, hours)
    t = big.tally
    rows: list[Row] = []
    settings = ", ".join(f"{k}={SETTINGS[k]}" for k in NOTE_SETTINGS)

    # 1. wall time and what every account did
    q, p, o = _spread(t.queued, n), _spread(t.posted, n), _spread(t.outcomes, n)
    r, s = _spread(t.replies, n), _spread(t.skipped, n)
    # an account may post once per max(60 / max_posts_per_hour, min_post_interval_minutes) minutes
    expected = [hours * 60 / interval_of(i) for i in range(n)]
    ratio = [t.posted.get(f"a{i:04d}", 0) / e for i, e in enumerate(expected)]
    no_posts = sum(1 for i in range(n) if not t.posted.get(f"a{i:04d}"))
    lags = ", ".join(f"{j} {t.lag[j] / 60:.0f}" for j in INTERVALS if j in t.lag)
    fails = ", ".join(f"{j} {c}" for j, c in sorted(t.failed_runs.items())) or "none"
    label = f"{n:,} accounts, {hours:.0f} clock h"
    gates = ", ".join(f"{g} {c:,}" for g, c in sorted(t.gates.items())) or "none"
    rows.append(Row(
        f"accounts: {label} in one stack (wall time)", big.wall, "s", one.wall, "1 account, same run",
        big.wall / one.wall if one.wall else None, "< 120 s", big.wall < 120 and not big.behind,
        (f"NOT DONE: the bench gave up after {big.wall:.0f} s with scheduled runs of the span still to do {big.behind} "
         f"(clock at +{big.clock_hours:.0f} h); " if big.behind else "") +
        f"wall time from `xbot accounts apply` ({big.apply_s:.1f} s; the clock starts then) and spawning the services until every job ran its last slot; clock span "
        f"{big.clock_hours:.1f} h at x{SPEED:,} ({hours * 3600 / SPEED:.0f} s of wall time at the least); "
        f"per account min/mean/max: posts queued {q[0]}/{q[1]:.1f}/{q[2]}, replies queued {r[0]}/{r[1]:.1f}/{r[2]}, "
        f"skipped by gates {s[0]}/{s[1]:.1f}/{s[2]} ({gates}), posted {p[0]}/{p[1]:.1f}/{p[2]}, outcomes {o[0]}/{o[1]:.1f}/{o[2]}; "
        f"posted / profile rate min {min(ratio):.2f} mean {sum(ratio) / n:.2f}; accounts without posts {no_posts}; "
        f"totals: queued {sum(t.queued.values()):,}+{sum(t.replies.values()):,} replies, posted "
        f"{sum(t.posted.values()):,}, outcomes {sum(t.outcomes.values()):,}, {big.log_events:,} events in the log; "
        f"longest lag of a scheduled run past its slot (clock min): {lags}; failed runs: {fails}; six services "
        f"ready {big.ready_s:.1f} s after spawn; {settings}, SNAPSHOT_EVERY_EVENTS={big.snapshot_every}"))
    rows.append(Row(f"accounts: {label}, every account posted", float(n - no_posts), "accounts", goal=f"= {n}",
                    met=no_posts == 0, note=f"{no_posts} accounts without a post"))

    # RSS at the end and per account
    for name in SERVICES:
        a, b = big.rss.get(name), one.rss.get(name)
        rows.append(Row(f"accounts: RSS of {name} with {n:,} accounts", a, "MB", b, "1 account, same run",
                        a / b if a and b else None, "report", None, f"after {hours:.0f} clock h"))
    for name in SERVICES:
        a, b = big.rss.get(name), one.rss.get(name)
        kb = (a - b) * 1e3 / (n - 1) if a is not None and b is not None else None
        goal = KB_GOAL.get(name, KB_GOAL_OTHERS)
        rows.append(Row(f"accounts: memory per account: {name}", kb, "kB", goal=f"< {goal} kB",
                        met=kb is not None and kb < goal,
                        note=f"(RSS with {n:,} accounts - RSS with 1) / {n - 1:,}; RSS {a or 0:.1f} vs {b or 0:.1f} MB"))

    # 2. restarts
    for name, rs in big.restarts.items():
        snap, full = rs["snap"], rs["full"]
        secs, base = snap.get("seconds"), full.get("seconds")
        src = (f"snapshot of seq {snap['from_snapshot_seq']:,} ({(snap.get('snapshot_bytes') or 0) / 1e3:,.0f} kB, "
               f"loaded in {snap.get('snapshot_load_seconds')} s) + {snap.get('events'):,} tail events"
               if snap.get("from_snapshot_seq") else "NO snapshot used")
        rows.append(Row(
            f"accounts: restart of the {name} holding {n:,} accounts (kill -9) until caught up", secs, "s", base,
            "SNAPSHOT_EVERY_EVENTS=0 (full replay)", secs / base if secs and base else None, "< 2 s",
            secs is not None and secs < 2,
            f"{src}; {snap['wall']:.2f} s from spawn to ready (full replay: {full.get('events', 0):,} events, "
            f"{full['wall']:.2f} s from spawn); {big.log_events:,} events in the log"))

    # 3. deliveries per decision
    decisions = sum(t.queued.values()) + sum(t.replies.values()) + sum(t.skipped.values())
    measured = {name: rs["full"].get("received", rs["full"].get("events")) for name, rs in big.restarts.items()}
    if len(big.received) == len(SERVICES):
        per_service, how = dict(big.received), "read from each service's health endpoint at the end of the run"
    else:
        per_service = {name: measured.get(name) or big.log_events for name in SERVICES}
        checked = ", ".join(f"{k} {v:,}" for k, v in measured.items() if v is not None)
        how = (f"no service exposes a delivered counter on its health endpoint, so: each of the {len(SERVICES)} "
               f"services' projections reads the whole stream ({big.log_events:,} events): measured by "
               f"Projection.applied_count at the full-replay restart ({checked}), the same subscription counted for "
               f"the others")
    deliveries = sum(per_service.values())
    decisions = sum(t.queued.values()) + sum(t.replies.values()) + sum(t.skipped.values())
    dpd = deliveries / decisions if decisions else None
    rows.append(Row(
        f"accounts: deliveries to the projections per decision ({n:,} accounts)", dpd, "msgs", goal="<= 8",
        met=dpd is not None and dpd <= 8,
        note=f"{deliveries:,} deliveries / {decisions:,} decisions (queued posts, replies and skipped; "
             f"{big.log_events / decisions if decisions else 0:.1f} log events per decision); "
             f"per service {', '.join(f'{k} {v:,}' for k, v in per_service.items())}; {how}"))
    return rows
