"""Shared parts of the reliability suite: service processes that can be killed and restarted, the event log
read as a list, the invariants every run must keep (pure functions over that list), and read-model snapshots.

    proc = ServiceProc("poster", env, tmp_path).start()
    await proc.wait_ready()
    proc.kill9(); proc.start()                 # kill -9 (its whole process group), then a fresh process
    proc.stop()                                # SIGTERM, then SIGKILL of the group if it does not drain
    events = await log_events(bus)             # [(seq, event)] of the whole log, in order
    report = check_log(events, horizons=(1, 24))
    assert report.violations == []
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shared.events import (
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostStarted,
    DecisionQueued,
    DecisionSkipped,
    LlmCallCompleted,
    LlmCallFailed,
    ModelUpdated,
    OutcomeCollectionFailed,
    OutcomeRecorded,
)
from xbot.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProc:
    """``python -m services.<name>`` in its own process group, with a health port and a log file that survives
    restarts (each start appends)."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *, health_port: int | None = None):
        self.name = name
        self.port = health_port or free_port()
        self.env = {**env, "SERVICE_HEALTH_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._log: Any = None

    def start(self) -> ServiceProc:
        self._close_log()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/start()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"], cwd=ROOT, env=self.env, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _killpg(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """kill -9: the process and everything it started (a browser), no drain."""
        if self.proc is None:
            return
        self._killpg(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.kills += 1

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (the service drains), then SIGKILL of the group if it has not ended within ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg(signal.SIGKILL)
                self.proc.wait(5)
        self._killpg(signal.SIGKILL)  # anything it left behind
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log.close()
            self._log = None

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise AssertionError(f"{self.name} exited with {self.proc and self.proc.returncode}:\n"
                                         f"{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2.0)
                    if r.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def messages(self) -> list[str]:
        """The ``msg`` of every JSON log line (LOG_FORMAT=json)."""
        out = []
        for line in (self.log_path.read_text(errors="replace") if self.log_path.exists() else "").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                out.append(str(json.loads(line).get("msg", "")))
        return out


def stop_all(procs: Iterable[ServiceProc]) -> None:
    for p in procs:
        with contextlib.suppress(Exception):
            p.stop()


# ----------------------------------------------------------------------------------------------- the log


async def log_events(bus: Any, names: frozenset[str] | None = None) -> list[tuple[int, Any]]:
    """Every decodable event of the log, in order, with its stream sequence."""
    return [(i.seq, i.event) async for i in bus.read(names=names) if not i.caught_up and i.event is not None]


def of(kind: type | tuple[type, ...], events: Iterable[tuple[int, Any]] | Iterable[Any]) -> list[Any]:
    out = []
    for e in events:
        ev = e[1] if isinstance(e, tuple) else e
        if isinstance(ev, kind):
            out.append(ev)
    return out


@dataclass
class LogReport:
    """What ``check_log`` counted and every broken invariant it found (empty = all held)."""

    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def check_log(
    events: Sequence[tuple[int, Any]],
    *,
    horizons: Sequence[int] = (1, 24),
    clock_now: datetime | None = None,
    owed_slack: timedelta = timedelta(0),
    mode: str = "shadow",
    x_tweet_ids: set[str] | None = None,
) -> LogReport:
    """The promises that must hold over any log, whatever crashed:

    - at most one ``decision.posted`` per decision, and no tweet id recorded for two decisions;
    - every ``decision.posted`` follows a claim (``decision.post_started``) of the same decision;
    - at most one ``outcome.recorded`` per (decision, horizon), only for a posted decision, with its tweet id;
    - no reply target answered by two decisions (queued) and none posted twice;
    - model versions 1..n per scope, each once;
    - shadow: no LLM call at all (so no spend), content synthetic, posts simulated with ``sim-`` ids;
      live: nothing simulated or synthetic reaches X, every recorded id is one X has (``x_tweet_ids``);
    - with ``clock_now``: every posted decision's horizon is recorded, settled by a final failure, or still
      owed (not due before ``clock_now - owed_slack``): nothing is forgotten.
    """
    r = LogReport()
    v = r.violations
    queued: dict[str, DecisionQueued] = {}
    for ev in of(DecisionQueued, events):
        queued.setdefault(ev.decision_id, ev)
    skipped = {ev.decision_id for ev in of(DecisionSkipped, events)}
    claims: dict[str, list[int]] = defaultdict(list)
    for seq, ev in events:
        if isinstance(ev, DecisionPostStarted):
            claims[ev.decision_id].append(seq)
    posted_seq: dict[str, int] = {}
    posted: dict[str, DecisionPosted] = {}
    per_decision: Counter[str] = Counter()
    per_tweet: Counter[str] = Counter()
    for seq, ev in events:
        if isinstance(ev, DecisionPosted):
            per_decision[ev.decision_id] += 1
            per_tweet[ev.tweet_id] += 1
            posted.setdefault(ev.decision_id, ev)
            posted_seq.setdefault(ev.decision_id, seq)

    r.checked.append("at most one decision.posted per decision")
    v += [f"decision {d} posted {n} times" for d, n in per_decision.items() if n > 1]
    r.checked.append("no tweet id recorded for two decisions")
    v += [f"tweet {t} recorded {n} times" for t, n in per_tweet.items() if n > 1]
    r.checked.append("every post follows a claim of its decision")
    for d, seq in posted_seq.items():
        if not any(c < seq for c in claims.get(d, [])):
            v.append(f"decision {d} posted without a claim before it")
    r.checked.append("nothing posted that was not queued, nor a gated draft")
    for d in posted:
        if d not in queued:
            v.append(f"decision {d} posted but never queued")
        if d in skipped:
            v.append(f"decision {d} posted although a gate skipped it")

    outcomes = of(OutcomeRecorded, events)
    per_outcome = Counter((o.decision_id, int(o.horizon_hours)) for o in outcomes)
    r.checked.append("at most one outcome per (decision, horizon)")
    v += [f"outcome {k} recorded {n} times" for k, n in per_outcome.items() if n > 1]
    r.checked.append("outcomes only for posted decisions, with the posted tweet id")
    for o in outcomes:
        p = posted.get(o.decision_id)
        if p is None:
            v.append(f"outcome for {o.decision_id} which was never posted")
        elif o.tweet_id != p.tweet_id:
            v.append(f"outcome for {o.decision_id} reads tweet {o.tweet_id}, posted as {p.tweet_id}")

    replies = [q for q in queued.values() if q.decision_type == "reply"]
    per_target = Counter(q.target_tweet_id for q in replies)
    r.checked.append("no reply target answered by two decisions")
    v += [f"reply target {t} answered by {n} decisions" for t, n in per_target.items() if n > 1]
    posted_targets = Counter(queued[d].target_tweet_id for d in posted
                             if d in queued and queued[d].decision_type == "reply")
    v += [f"reply target {t} answered on X {n} times" for t, n in posted_targets.items() if n > 1]

    models = of(ModelUpdated, events)
    r.checked.append("model versions 1..n per scope, each once")
    by_scope: dict[str, list[int]] = defaultdict(list)
    for m in models:
        by_scope[m.scope].append(m.version)
    for scope, versions in by_scope.items():
        if versions != list(range(1, len(versions) + 1)):
            v.append(f"model versions of scope {scope} are {versions}")

    llm = of((LlmCallCompleted, LlmCallFailed), events)
    if mode == "shadow":
        r.checked.append("shadow: no LLM call, no spend")
        v += [f"LLM call in shadow mode: {e.request_id} ({e.cost_usd} USD)" for e in llm]
        r.checked.append("shadow: content synthetic, posts simulated with sim- ids")
        v += [f"shadow decision {q.decision_id} is {q.generation_source}" for q in queued.values()
              if q.generation_source != "synthetic"]
        v += [f"shadow post {p.decision_id} simulated={p.simulated} id={p.tweet_id}" for p in posted.values()
              if not p.simulated or not p.tweet_id.startswith("sim-")]
        v += [f"shadow outcome {o.decision_id} not marked simulated" for o in outcomes if not o.simulated]
    else:
        r.checked.append("live: no synthetic decision posted, nothing simulated recorded")
        for d, p in posted.items():
            if p.simulated:
                continue  # from an earlier shadow period; checked by the caller against its own ids
            q = queued.get(d)
            if q is not None and q.generation_source != "real":
                v.append(f"synthetic decision {d} posted for real as {p.tweet_id}")
            if x_tweet_ids is not None and p.tweet_id not in x_tweet_ids:
                v.append(f"made-up tweet id {p.tweet_id} for {d}")
        if x_tweet_ids is not None:
            r.checked.append("live: every recorded tweet id exists on X")
            for e in of(DecisionPartPosted, events):
                if not e.simulated and e.tweet_id not in x_tweet_ids:
                    v.append(f"made-up part tweet id {e.tweet_id} for {e.decision_id}")

    owed = 0
    if clock_now is not None:
        r.checked.append("every posted decision has each outcome recorded, settled or owed")
        final = {(f.decision_id, int(f.horizon_hours)) for f in of(OutcomeCollectionFailed, events) if f.final}
        for d, p in posted.items():
            for h in horizons:
                if (d, h) in per_outcome or (d, h) in final:
                    continue
                due_at = p.posted_at + timedelta(hours=h)
                if due_at > clock_now - owed_slack:
                    owed += 1
                else:
                    v.append(f"decision {d} horizon {h}h was due at {due_at.isoformat()} and never collected "
                             f"(clock now {clock_now.isoformat()})")
    r.counts = {
        "events": len(events),
        "queued": len(queued),
        "gated": len(skipped),
        "replies_queued": len(replies),
        "claims": sum(len(c) for c in claims.values()),
        "posted": len(posted),
        "outcomes": len(outcomes),
        "outcomes_owed": owed,
        "models": len(models),
        "llm_calls": len(llm),
    }
    return r


# ------------------------------------------------------------------------------------------ read models


async def table_rows(database_url: str, tables: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each table, in a stable order (sorted by value, so no key needs to be known)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in tables:
            rows = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        await conn.close()


async def projector_offset(database_url: str, name: str = "gateway") -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT last_seq FROM projection_offsets WHERE projector = $1", name) or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    """A second empty database on the harness's PostgreSQL (for a replay to compare against), dropped after."""
    import asyncpg

    name = f"xbot_c_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def diff_rows(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    out = []
    for t in sorted(set(a) | set(b)):
        ra, rb = a.get(t, []), b.get(t, [])
        if ra == rb:
            continue
        sa, sb = set(map(repr, ra)), set(map(repr, rb))
        only_a, only_b = sorted(sa - sb)[:3], sorted(sb - sa)[:3]
        out.append(f"{t}: {len(ra)} vs {len(rb)} rows; only live: {only_a}; only replay: {only_b}")
    return out


async def wait_until_async(predicate: Any, timeout: float, interval: float = 0.25) -> bool:
    """Poll an async predicate until true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return bool(await predicate())


__all__ = [
    "LogReport", "ROOT", "ServiceProc", "check_log", "diff_rows", "fresh_database", "log_events", "of",
    "projector_offset", "stop_all", "table_rows", "wait_until_async",
]
