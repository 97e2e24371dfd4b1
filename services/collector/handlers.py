"""The ``collect`` job: settle every horizon whose time has come, from X (live) or the simulator (shadow).

Live mode reads a status page through the browser adapter and never fabricates: a page it cannot read gives
``outcome.collection_failed`` (retried next run, up to ``COLLECT_MAX_ATTEMPTS``), a page that is not that
tweet of our account is rejected (final failure, no outcome). Shadow mode draws the counts at the exact
horizon from the simulated audience and marks them ``simulated=true``.

**Accounts.** A run covers every account it is for (``CollectorDeps.accounts``: the command's ``params.account``
or all), one after the other, each with its own flags, X session (live) and simulated audience (shadow), and
each over its own posts only. One account's trouble (no session, logged out, rate limited, a browser that will
not start) ends that account's part of the run and never another's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from shared.clock import Clock
from shared.events import DEFAULT_ACCOUNT, Command, Event, OutcomeRecorded
from shared.flags import Flags, is_real_analytics_allowed
from shared.service import combine_counts
from shared.x.port import TweetMetrics, XAccount, XAutomatedError, XError, XLoggedOut, XRateLimited

from .config import CollectorSettings
from .domain import CollectorState, Due, collection_failed, due_outcomes, missed_window, outcome_recorded

log = structlog.get_logger("collector")

#: account-level answers: every further read in this run would fail the same way, so the run stops
#: without charging the decisions an attempt
ACCOUNT_ERRORS = (XLoggedOut, XRateLimited, XAutomatedError)

Publish = Callable[[Event], Awaitable[int]]
PublishMany = Callable[[list[Event]], Awaitable[list[int]]]

#: shadow outcomes published per pipelined batch (one round of acks, one wait for our projection)
SHADOW_PUBLISH_CHUNK = 500
OpenX = Callable[[], Awaitable[XAccount]]


class SimulatedMetrics:
    """Shadow-mode counts: the simulated audience's ground truth at the exact horizon (port of one method)."""

    def __init__(self, audience: Any):
        self.audience = audience

    def metrics(self, due: Due) -> dict[str, int]:
        p = due.posted
        return self.audience.metrics(p.decision_id, p.bandit_arm, p.hour, p.decision_type, due.horizon_hours)


@dataclass(frozen=True)
class AccountCollect:
    """What collecting one account's outcomes needs: its flags, its X settings (the username whose pages are
    ours), its browser session (live) and its simulated audience (shadow)."""

    account: str
    settings: CollectorSettings
    flags: Callable[[], Flags]
    open_x: OpenX | None
    simulator: SimulatedMetrics | None


@dataclass
class CollectorDeps:
    state: CollectorState
    settings: CollectorSettings
    flags: Callable[[], Flags]
    clock: Clock
    publish: Publish  # publish and wait until our projection applied it (read-your-writes)
    open_x: OpenX | None  # the browser adapter, opened per run in live mode
    simulator: SimulatedMetrics | None  # shadow mode
    #: many events at once, pipelined, then one wait for our projection (None: ``publish`` one by one)
    publish_many: PublishMany | None = None
    #: the accounts a command is for, each with its own session and audience (None: the default account alone,
    #: with ``settings``, ``flags``, ``open_x`` and ``simulator`` above)
    accounts: Callable[[Command], Sequence[AccountCollect]] | None = None

    def default_account(self) -> AccountCollect:
        return AccountCollect(account=DEFAULT_ACCOUNT, settings=self.settings, flags=self.flags,
                              open_x=self.open_x, simulator=self.simulator)


def _fmt_er(er: float | None) -> str:
    return "null" if er is None else f"{er:.4f}"


def _verify(m: TweetMetrics, tweet_id: str, username: str) -> str | None:
    """Why the metrics read cannot be ours, or None. The adapter checks too; we never trust one check."""
    if m.tweet_id != tweet_id:
        return f"page_mismatch: page shows tweet {m.tweet_id}, expected {tweet_id}"
    if m.author.lstrip("@").lower() != username.lower():
        return f"page_mismatch: tweet {tweet_id} is by @{m.author}, not @{username}"
    return None


async def collect(cmd: Command, deps: CollectorDeps) -> dict[str, int]:
    """One run over every account it is for; the counts add up (``_skipped`` only when every account was)."""
    targets = list(deps.accounts(cmd)) if deps.accounts is not None else [deps.default_account()]
    if len(targets) == 1:
        return await _collect_account(cmd, deps, targets[0])
    return combine_counts([await _collect_account(cmd, deps, acct) for acct in targets])


async def _collect_account(cmd: Command, deps: CollectorDeps, acct: AccountCollect) -> dict[str, int]:
    flags = acct.flags()
    with structlog.contextvars.bound_contextvars(account=acct.account):
        if flags.live:
            return await _collect_live(cmd, deps, acct, flags)
        return await _collect_shadow(cmd, deps, acct)


async def _collect_shadow(cmd: Command, deps: CollectorDeps, acct: AccountCollect) -> dict[str, int]:
    s, now = deps.settings, deps.clock.now()
    if acct.simulator is None:
        log.error("[ANALYTICS_COLLECTOR] ❌ no simulator wired in shadow mode")
        return {"_skipped": 1}
    counts: Counter[str] = Counter()
    # Shadow reads are free and exact at any horizon, so nothing is ever "missed" and no per-run cap applies.
    # Simulated reads cost nothing and need no browser, so a run's outcomes are published pipelined, a chunk at a
    # time (each event's id is derived from its decision and horizon: a redelivered run's repeats are dropped by
    # the stream's duplicate window, and the state has applied them before the next run computes what is due).
    due_list = due_outcomes(deps.state, now, s.horizons(), simulated=True, max_attempts=s.COLLECT_MAX_ATTEMPTS,
                            account=acct.account)
    simulator = acct.simulator
    chunk = SHADOW_PUBLISH_CHUNK if deps.publish_many is not None else 1
    for start in range(0, len(due_list), chunk):
        events: list[Event] = [
            outcome_recorded(due, simulator.metrics(due), simulated=True, now=now, correlation_id=cmd.run_id)
            for due in due_list[start:start + chunk]
        ]
        if deps.publish_many is not None:
            await deps.publish_many(events)
        else:
            await deps.publish(events[0])
        for ev in events:
            assert isinstance(ev, OutcomeRecorded)
            counts["recorded"] += 1
            log.info(
                f"[ANALYTICS_COLLECTOR] ✅ Stored simulated outcome decision_id={ev.decision_id} "
                f"ER={_fmt_er(ev.er_calculated)}",
                horizon_hours=ev.horizon_hours,
            )
    if not counts:
        log.info("[ANALYTICS_COLLECTOR] nothing due", mode="shadow")
    return dict(counts)


async def _collect_live(cmd: Command, deps: CollectorDeps, acct: AccountCollect, flags: Flags) -> dict[str, int]:
    s = deps.settings
    allowed = is_real_analytics_allowed(flags)
    if not allowed.allowed:
        log.info(f"[ANALYTICS_COLLECTOR] ⏭️ Skipped: {allowed.reason} (REAL_METRICS_ENABLED=false)")
        return {"_skipped": 1}
    username = acct.settings.username()
    if not username:
        log.error("[ANALYTICS_COLLECTOR] ⏭️ Skipped: X_USERNAME is not set, cannot verify pages are ours")
        return {"_skipped": 1}
    if acct.open_x is None:
        log.error("[ANALYTICS_COLLECTOR] ⏭️ Skipped: no browser adapter configured")
        return {"_skipped": 1}
    now = deps.clock.now()
    due_list = due_outcomes(
        deps.state, now, s.horizons(), simulated=False, max_attempts=s.COLLECT_MAX_ATTEMPTS,
        limit=s.COLLECT_MAX_PER_RUN, account=acct.account,
    )
    counts: Counter[str] = Counter()
    pending = []
    for due in due_list:
        if due.missed:
            await deps.publish(missed_window(due, now, cmd.run_id))
            counts["missed"] += 1
            log.warning(
                "[ANALYTICS_COLLECTOR] ⚠️ Missed horizon", decision_id=due.posted.decision_id,
                horizon_hours=due.horizon_hours,
            )
        else:
            pending.append(due)
    if not pending:
        log.info("[ANALYTICS_COLLECTOR] nothing due", mode="live")
        return dict(counts)
    try:
        x = await acct.open_x()
    except XError as exc:  # no session, logged out: nothing can be read this run; no decision is charged
        log.error(f"[ANALYTICS_COLLECTOR] ❌ Run stopped: browser not usable ({exc.code}: {exc.message})")
        counts["aborted"] += 1
        return dict(counts)
    except Exception as exc:  # the browser would not start (a bad session file, say): this account only
        log.error(f"[ANALYTICS_COLLECTOR] ❌ Run stopped: browser not usable (error: {type(exc).__name__}: {exc})")
        counts["aborted"] += 1
        return dict(counts)
    try:
        for due in pending:
            p = due.posted
            try:
                m = await x.read_status_metrics(p.tweet_id, expected_author=username)
            except ACCOUNT_ERRORS as exc:
                log.error(
                    f"[ANALYTICS_COLLECTOR] ❌ Run stopped: X answered {exc.code} ({exc.message})",
                    decision_id=p.decision_id,
                )
                counts["aborted"] += 1
                break
            except XError as exc:
                reason, retryable = f"{exc.code}: {exc.message}", exc.retryable
            except Exception as exc:  # the browser itself failed: a transient read failure
                reason, retryable = f"error: {type(exc).__name__}: {exc}", True
            else:
                bad = _verify(m, p.tweet_id, username)
                if bad is None:
                    at = deps.clock.now()
                    ev = outcome_recorded(due, _counts(m), simulated=False, now=at, correlation_id=cmd.run_id)
                    await deps.publish(ev)
                    counts["recorded"] += 1
                    log.info(
                        f"[ANALYTICS_COLLECTOR] ✅ Stored real outcome decision_id={ev.decision_id} "
                        f"ER={_fmt_er(ev.er_calculated)}",
                        horizon_hours=ev.horizon_hours, tweet_id=ev.tweet_id,
                    )
                    continue
                reason, retryable = bad, False
            fail = collection_failed(
                due, reason, retryable=retryable, max_attempts=s.COLLECT_MAX_ATTEMPTS, now=deps.clock.now(),
                correlation_id=cmd.run_id,
            )
            await deps.publish(fail)
            counts["failed"] += 1
            log.warning(
                f"[ANALYTICS_COLLECTOR] ⚠️ Could not read outcome decision_id={p.decision_id} reason={reason}",
                horizon_hours=due.horizon_hours, attempt=due.attempt, final=fail.final,
            )
    finally:
        try:
            await x.close()
        except Exception as exc:
            log.warning("browser close failed", error=str(exc))
    return dict(counts)


def _counts(m: TweetMetrics) -> dict[str, int]:
    return {
        "impressions": m.impressions, "likes": m.likes, "retweets": m.retweets, "replies": m.replies,
        "bookmarks": m.bookmarks, "quotes": m.quotes,
    }
