"""The poster's core, pure: its projection of the log, what is due, the rate limits, and how X's answers
are classified. No I/O here; ``handlers.py`` does the talking to the bus and to X.

State is rebuilt from the log (``PosterState.apply``), so everything that decides whether to post (rate
limits, the 226 cooldown, attempts, claims in doubt) survives restarts and is shared by every replica.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from shared.bus import ReadItem
from shared.events import (
    TYPE_NAMES,
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    Event,
)
from shared.flags import Flags
from shared.gates.text import normalize_for_hash
from shared.snapshots import restore_per_account
from shared.x.port import (
    TweetView,
    XAutomatedError,
    XDuplicate,
    XError,
    XLoggedOut,
    XPostInDoubt,
    XRateLimited,
    XTimeout,
)

Status = Literal["queued", "posted", "failed", "skipped", "rejected"]

#: the event types the poster's projection decodes: every decision event (an unknown one on a decision's
#: subject would leave our idea of its last sequence stale, and every claim would then lose).
INTERESTED: frozenset[str] = frozenset(n for n in TYPE_NAMES if n.startswith("decision."))

#: code of the failure that closes an attempt left in doubt and not found on the timeline after the grace.
NOT_FOUND_AFTER_GRACE = "not_found_after_grace"
#: code of the (uncounted) close of an attempt whose in-doubt thread part was found: the rest is posted anew
RESUMED = "resumed"

#: failures that say nothing about the decision itself: they do not use up one of its attempts (a 429 pauses
#: the account until X's reset instead).
UNCOUNTED_CODES: frozenset[str] = frozenset({"226", "logged_out", "429", RESUMED})

#: the longest pause a 429 may ask for, whatever X's reset header says (a garbled header must not stop us for good)
MAX_RATE_LIMIT_PAUSE = timedelta(hours=24)

#: how far before a claim a tweet may be dated and still be taken as that claim's tweet (clock skew).
RECONCILE_SLACK = timedelta(minutes=10)

#: how much posting history the rate limits need (REPLY_MAX_PER_DAY looks back 24 hours).
HISTORY = timedelta(hours=25)


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt that has started (``decision.post_started``) and has not ended in posted or a plain failure.

    While open it is *in doubt*: the poster that made it may have died after clicking. ``last_activity_at`` is
    the claim or its latest part / in-doubt failure; the grace period runs from there."""

    attempt: int
    poster_id: str
    simulated: bool
    started_at: datetime
    last_activity_at: datetime


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: str
    decision_type: str
    content: str
    parts: tuple[str, ...] = ()
    bandit_arm: str
    timing_arm: str | None = None
    generation_source: str
    scheduled_at: datetime | None = None
    queued_at: datetime
    queued_seq: int
    target_tweet_id: str | None = None
    target_username: str | None = None
    status: Status = "queued"
    approved: bool = False
    #: the claims gate found statements the profile's facts do not hold: posted only once a person approved it,
    #: whatever REQUIRE_APPROVAL says now
    flagged: bool = False
    #: the sequence of the latest event on ``<evt>.decision.<id>.*``: the claim's expected last sequence
    last_seq: int = 0
    #: number of claims so far (the next claim is attempt ``claims + 1``)
    claims: int = 0
    #: failed attempts that count towards POSTING_MAX_ATTEMPTS
    failures: int = 0
    first_claim_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error_code: str = ""
    open_claim: Claim | None = None
    #: tweet ids of the thread parts already on X, in order (a resumed thread goes on after the last one)
    part_ids: tuple[str, ...] = ()
    tweet_id: str | None = None
    #: the part now being posted had an attempt in doubt (answer lost, crash, or closed after the grace), so a
    #: 187 "duplicate" answer to a retry means that earlier attempt landed
    doubted: bool = False
    #: a retry was answered 187: the part is on X. It is never posted again, only looked for.
    landed: bool = False
    #: when the doubt about the current part began (for RECONCILE_ATTENTION_MINUTES)
    doubt_since: datetime | None = None
    #: the poster gave up retrying and asked the operator (``decision.attention_needed``)
    attention: bool = False

    @property
    def is_reply(self) -> bool:
        return self.decision_type == "reply"

    @property
    def is_thread(self) -> bool:
        return self.decision_type == "thread"

    def texts(self) -> tuple[str, ...]:
        """What goes to X, in order: a thread's parts, otherwise the content."""
        if self.is_thread and self.parts:
            return self.parts
        return (self.content,)

    @property
    def in_doubt(self) -> bool:
        return self.open_claim is not None

    def doubt_started_at(self) -> datetime | None:
        """Since when the current part has been in doubt: the first in-doubt answer, else the open claim."""
        if self.doubt_since is not None:
            return self.doubt_since
        return self.open_claim.started_at if self.open_claim is not None else None

    def next_attempt_at(self, retry_base_seconds: float) -> datetime | None:
        """Backoff across runs: after the n-th counted failure wait ``base * 2**(n-1)`` seconds."""
        if self.failures <= 0 or self.last_failure_at is None or self.open_claim is not None:
            return None
        return self.last_failure_at + timedelta(seconds=backoff_seconds(retry_base_seconds, self.failures))


def backoff_seconds(base: float, failures: int) -> float:
    """Exponential backoff after ``failures`` failed attempts (1 -> base, 2 -> 2*base, ...)."""
    return base * (2 ** max(0, failures - 1))


class PostRecord(msgspec.Struct, frozen=True):
    at: datetime
    simulated: bool
    decision_id: str


def _at(record: PostRecord) -> datetime:
    return record.at


def _window(records: list[PostRecord], now: datetime, span: timedelta, simulated: bool) -> tuple[int, int]:
    """(index past the last record at or before ``now``, how many of ``simulated`` fall in ``(now - span, now]``).
    The records are in time order: only the window is read (bisection), not the 25 h kept."""
    hi = bisect_right(records, now, key=_at)
    lo = bisect_right(records, now - span, 0, hi, key=_at)
    return hi, sum(1 for r in records[lo:hi] if r.simulated == simulated)


class PosterState:
    """The poster's projection: decisions still to post, recent posts, the cooldown. Rebuilt by replay."""

    def __init__(self) -> None:
        self.decisions: dict[str, DecisionView] = {}
        #: posts (single / thread) and replies, most recent last, pruned to HISTORY
        self.posts: list[PostRecord] = []
        self.replies: list[PostRecord] = []
        #: tweet ids already recorded for some decision (a reconcile never claims them twice)
        self.posted_tweet_ids: set[str] = set()
        self.posted_decisions: set[str] = set()
        #: latest 226 answer per (simulated?) account
        self.last_226_at: dict[bool, datetime] = {}
        #: 429: no post to the (simulated?) account before this; consecutive 429s since the last post
        self.paused_until: dict[bool, datetime] = {}
        self.consecutive_429: dict[bool, int] = {}
        #: attempts claimed and not closed: (claimed at, simulated, reply). Each may be on X, so each counts
        #: towards the posting limits until it is settled (fail closed).
        self.open_attempts: dict[str, tuple[datetime, bool, bool]] = {}
        self.applied_seq = 0

    # ------------------------------------------------------------------------------------------ evolve
    def apply(self, item: ReadItem) -> None:
        if item.event is not None:
            self.evolve(item.event, item.seq)

    def evolve(self, ev: Event, seq: int) -> None:
        """Apply one event. Seeing the same event twice changes nothing the second time."""
        if seq and seq <= self.applied_seq:
            return
        self.applied_seq = max(self.applied_seq, seq)
        did = getattr(ev, "decision_id", None)
        if did is None:
            return
        if isinstance(ev, DecisionQueued):
            if did not in self.decisions and did not in self.posted_decisions:
                self.decisions[did] = DecisionView(
                    decision_id=did,
                    decision_type=ev.decision_type,
                    content=ev.content,
                    parts=tuple(ev.parts),
                    bandit_arm=ev.bandit_arm,
                    timing_arm=ev.timing_arm,
                    generation_source=ev.generation_source,
                    scheduled_at=ev.scheduled_at,
                    queued_at=ev.occurred_at,
                    queued_seq=seq,
                    target_tweet_id=ev.target_tweet_id,
                    target_username=ev.target_username,
                    last_seq=seq,
                    flagged=bool(ev.flagged_claims),
                )
            return
        if isinstance(ev, DecisionPosted):
            self._record_post(ev)
            self.open_attempts.pop(did, None)
        view = self.decisions.get(did)
        if view is None:
            return
        view = msgspec.structs.replace(view, last_seq=max(view.last_seq, seq))
        view = _evolve_view(view, ev, self)
        if view.status == "queued":
            self.decisions[did] = view
        else:
            # terminal: the poster has nothing more to do with it (its posts live on in self.posts)
            del self.decisions[did]
        if view.open_claim is None or view.status != "queued":
            self.open_attempts.pop(did, None)
        else:
            claim = view.open_claim
            self.open_attempts[did] = (claim.started_at, claim.simulated, view.is_reply)

    def _record_post(self, ev: DecisionPosted) -> None:
        if ev.decision_id in self.posted_decisions:
            return
        self.posted_decisions.add(ev.decision_id)
        self.posted_tweet_ids.add(ev.tweet_id)
        self.posted_tweet_ids.update(ev.thread_tweet_ids)
        self.consecutive_429[ev.simulated] = 0
        rec = PostRecord(ev.posted_at, ev.simulated, ev.decision_id)
        target = self.replies if ev.decision_type == "reply" else self.posts
        insort(target, rec, key=_at)  # after equal times: the order a stable sort would give
        del target[: bisect_left(target, target[-1].at - HISTORY, key=_at)]

    # --------------------------------------------------------------------------------------------- read
    def get(self, decision_id: str) -> DecisionView | None:
        return self.decisions.get(decision_id)

    def due(
        self,
        now: datetime,
        mode: str,
        require_approval: bool,
        batch: int,
        *,
        retry_base_seconds: float = 0.0,
    ) -> list[DecisionView]:
        """The seed's query: status queued, generation_source 'real' (live) or 'synthetic' (shadow),
        scheduled_at <= now, oldest first, at most ``batch``; approved only when approval is required, and
        not while a failed attempt's backoff runs. An attempt in doubt is due (it must be reconciled). A decision
        with flagged claims is due only once approved, even with approval off."""
        source = "real" if mode == "live" else "synthetic"
        out = []
        for v in self.decisions.values():
            if v.status != "queued" or v.generation_source != source:
                continue
            if v.scheduled_at is not None and v.scheduled_at > now:
                continue
            if (require_approval or v.flagged) and not v.approved:
                continue
            nxt = v.next_attempt_at(retry_base_seconds)
            if nxt is not None and nxt > now:
                continue
            out.append(v)
        out.sort(key=lambda v: (v.scheduled_at or v.queued_at, v.queued_seq))
        return out[: max(0, batch)]

    def in_doubt(self) -> list[DecisionView]:
        return [v for v in self.decisions.values() if v.open_claim is not None]

    def cooldown_until(self, simulated: bool, minutes: float) -> datetime | None:
        at = self.last_226_at.get(simulated)
        return None if at is None or minutes <= 0 else at + timedelta(minutes=minutes)

    def rate_paused_until(self, simulated: bool) -> datetime | None:
        return self.paused_until.get(simulated)

    def _open(self, view: DecisionView, now: datetime, span: timedelta, simulated: bool) -> list[datetime]:
        """Claim times of other decisions' unsettled attempts of the same kind in ``(now - span, now]``."""
        return [
            at
            for did, (at, sim, reply) in self.open_attempts.items()
            if did != view.decision_id and sim == simulated and reply == view.is_reply and now - span < at <= now
        ]

    def rate_limit(self, view: DecisionView, now: datetime, flags: Flags, simulated: bool) -> str | None:
        """None when ``view`` may be posted now, else the detail of the limit it hits (counted from the log).
        An attempt in doubt counts as a post: it may be on X."""
        if view.is_reply:
            day_span = timedelta(hours=24)
            _, day = _window(self.replies, now, day_span, simulated)
            doubt = len(self._open(view, now, day_span, simulated)) if self.open_attempts else 0
            if day + doubt >= flags.REPLY_MAX_PER_DAY:
                return (
                    f"REPLY_MAX_PER_DAY={flags.REPLY_MAX_PER_DAY} reached ({day} in the last 24h"
                    + (f", {doubt} in doubt)" if doubt else ")")
                )
            return None
        posts = self.posts
        hi, hour = _window(posts, now, timedelta(hours=1), simulated)
        open_at = self._open(view, now, timedelta(hours=1), simulated) if self.open_attempts else []
        if hour + len(open_at) >= flags.MAX_POSTS_PER_HOUR:
            return (
                f"MAX_POSTS_PER_HOUR={flags.MAX_POSTS_PER_HOUR} reached ({hour} in the last hour"
                + (f", {len(open_at)} in doubt)" if open_at else ")")
            )
        mine = next((posts[i] for i in range(hi - 1, -1, -1) if posts[i].simulated == simulated), None)
        last_at = max([*open_at, *([mine.at] if mine is not None else [])], default=None)
        if last_at is not None and flags.MIN_POST_INTERVAL_MINUTES > 0:
            last = last_at
            if now - last < timedelta(minutes=flags.MIN_POST_INTERVAL_MINUTES):
                return f"MIN_POST_INTERVAL_MINUTES={flags.MIN_POST_INTERVAL_MINUTES} (last post at {last.isoformat()})"
        return None

    def counts(self) -> dict[str, int]:
        return {
            "queued": sum(1 for v in self.decisions.values() if v.status == "queued"),
            "in_doubt": len(self.in_doubt()),
            "attention_needed": sum(1 for v in self.decisions.values() if v.attention),
            "posted": len(self.posted_decisions),
        }


class PosterStates:
    """One ``PosterState`` per account, each evolved only from its account's events: one account's posts, 226
    cooldown, 429 pause and attempts in doubt never count against another's limits. Restored from a snapshot in
    place (a poster holds its account's state)."""

    def __init__(self) -> None:
        self.accounts: dict[str, PosterState] = {}

    def of(self, account: str) -> PosterState:
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = PosterState()
        return state

    def apply(self, item: ReadItem) -> None:
        if item.event is not None:
            self.of(item.event.account).evolve(item.event, item.seq)

    def restore_attributes(self, loaded: dict[str, Any]) -> None:
        """A snapshot's attributes, restored in place (``shared.snapshots.restore_per_account``)."""
        restore_per_account(self.accounts, loaded["accounts"], PosterState)

    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for state in self.accounts.values():
            for k, v in state.counts().items():
                total[k] = total.get(k, 0) + v
        return total or PosterState().counts()


def _evolve_view(view: DecisionView, ev: Event, state: PosterState) -> DecisionView:
    replace = msgspec.structs.replace
    if isinstance(ev, DecisionApproved):
        return replace(view, approved=True)
    if isinstance(ev, DecisionRejected):
        return replace(view, status="rejected")
    if isinstance(ev, DecisionSkipped):
        return replace(view, status="skipped")
    if isinstance(ev, DecisionRescheduled):
        return replace(view, scheduled_at=ev.scheduled_at)
    if isinstance(ev, DecisionAttentionNeeded):
        return replace(view, attention=view.open_claim is not None)
    if isinstance(ev, DecisionDoubtResolved):
        if ev.action == "abandon":
            return replace(view, status="failed", open_claim=None, attention=False)
        return replace(view, open_claim=None, doubted=False, landed=False, doubt_since=None, attention=False)
    claim: Claim | None
    if isinstance(ev, DecisionPostStarted):
        claim = Claim(
            attempt=ev.attempt,
            poster_id=ev.poster_id,
            simulated=ev.simulated,
            started_at=ev.occurred_at,
            last_activity_at=ev.occurred_at,
        )
        return replace(
            view,
            claims=max(view.claims, ev.attempt),
            open_claim=claim,
            first_claim_at=view.first_claim_at or ev.occurred_at,
        )
    if isinstance(ev, DecisionPartPosted):
        parts = list(view.part_ids)
        if ev.part_index == len(parts):
            parts.append(ev.tweet_id)
        claim = view.open_claim
        if claim is not None:
            claim = replace(claim, last_activity_at=max(claim.last_activity_at, ev.occurred_at))
        state.posted_tweet_ids.add(ev.tweet_id)
        return replace(
            view, part_ids=tuple(parts), open_claim=claim, doubted=False, landed=False, doubt_since=None,
            attention=False,
        )
    if isinstance(ev, DecisionPosted):
        return replace(view, status="posted", tweet_id=ev.tweet_id, open_claim=None, attention=False)
    if isinstance(ev, DecisionPostFailed):
        claim = view.open_claim
        if ev.in_doubt and not ev.final:
            since = view.doubt_since or (claim.started_at if claim is not None else ev.occurred_at)
            if claim is not None:
                claim = replace(claim, last_activity_at=max(claim.last_activity_at, ev.occurred_at))
            return replace(
                view, open_claim=claim, last_error_code=ev.error_code, doubted=True,
                landed=view.landed or ev.landed, doubt_since=since,
            )
        simulated = claim.simulated if claim is not None else False
        if ev.error_code == "226":
            prev = state.last_226_at.get(simulated)
            state.last_226_at[simulated] = ev.occurred_at if prev is None else max(prev, ev.occurred_at)
        if ev.error_code == "429":
            state.consecutive_429[simulated] = state.consecutive_429.get(simulated, 0) + 1
            if ev.paused_until is not None:
                prev = state.paused_until.get(simulated)
                state.paused_until[simulated] = ev.paused_until if prev is None else max(prev, ev.paused_until)
        if ev.error_code == NOT_FOUND_AFTER_GRACE:
            view = replace(view, doubted=True, doubt_since=view.doubt_started_at())
        elif ev.error_code == RESUMED:
            view = replace(view, doubted=False, landed=False, doubt_since=None, attention=False)
        counted = ev.error_code not in UNCOUNTED_CODES
        view = replace(
            view,
            open_claim=None,
            failures=view.failures + (1 if counted else 0),
            last_failure_at=ev.occurred_at if counted else view.last_failure_at,
            last_error_code=ev.error_code,
        )
        if ev.final:
            view = replace(view, status="failed")
        return view
    return view


# ------------------------------------------------------------------------------------------- decide


class PostingPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The settings the job needs (from ``PosterSettings``)."""

    batch: int = 5
    max_attempts: int = 3
    retry_base_seconds: float = 5.0
    retry_inline_max_seconds: float = 30.0
    reconcile_grace_minutes: float = 10.0
    #: an attempt in doubt this long (timeline unreadable, or a 187 whose tweet cannot be found) stops being
    #: retried and asks the operator (``decision.attention_needed``)
    attention_minutes: float = 60.0
    #: a 429 without X's reset header pauses posting this long, doubling with each 429 in a row
    rate_limit_backoff_seconds: float = 60.0
    timeline_limit: int = 50
    x_base_url: str = "https://x.com"
    #: TEST ONLY: kill -9 ourselves at this point of a post (after_claim | after_click | after_readback)
    crash_at: str = ""
    #: after_click only: give the click's request this long to reach X before dying
    crash_settle_seconds: float = 1.0

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.reconcile_grace_minutes)

    @property
    def attention_after(self) -> timedelta:
        return timedelta(minutes=self.attention_minutes)


ActKind = Literal["claim", "skip", "fail", "reconcile", "close", "attention", "wait", "done"]


class Act(msgspec.Struct, frozen=True, kw_only=True):
    """What the posting job does next with one decision; ``handlers.py`` only carries it out.

    claim: start an attempt; skip: ``decision.post_skipped`` (``reason``), stays queued; fail: a failed attempt
    (``reason`` is its code, ``final``); reconcile: look for the open attempt on X first; close: end the open
    attempt with code ``reason`` (``final``) and go on; attention: ask the operator (``reason``); wait: nothing
    to do now (``reason``: in_doubt, attention); done: the answer ``reason`` is the result (nothing to write)."""

    kind: ActKind
    reason: str = ""
    detail: str = ""
    final: bool = False


def decide_post(
    view: DecisionView, state: PosterState, flags: Flags, now: datetime, *, simulated: bool
) -> Act:
    """The rule for a queued decision, pure: (decision view, what the log says of the account, flags, now)."""
    if view.open_claim is not None:
        return Act(kind="reconcile")
    until = state.cooldown_until(simulated, flags.X_COOLDOWN_MINUTES)
    if until is not None and until > now:
        return Act(kind="skip", reason="cooldown", detail=f"X answered 226; posting paused until {until.isoformat()}")
    paused = state.rate_paused_until(simulated)
    if paused is not None and paused > now:
        return Act(
            kind="skip", reason="x_rate_limited", detail=f"X answered 429; posting paused until {paused.isoformat()}"
        )
    limit = state.rate_limit(view, now, flags, simulated)
    if limit is not None:
        return Act(kind="skip", reason="rate_limited", detail=limit)
    if not simulated and view.generation_source != "real":  # never: due() filters; belt and braces
        return Act(kind="done", reason="refused", detail="synthetic content is never posted in live mode")
    if view.is_reply and not view.target_tweet_id:
        return Act(kind="fail", reason="no_reply_target", detail="a reply without target_tweet_id", final=True)
    return Act(kind="claim")


ReconcileResult = Literal["recovered", "resumable", "not_found", "unreadable", "logged_out"]


def after_reconcile(view: DecisionView, found: str, now: datetime, policy: PostingPolicy) -> Act:
    """What a reconcile's answer means for the decision's open attempt, pure. Fail closed: only "every place
    was read and none shows it", after the grace, lets a new attempt start."""
    if found in ("recovered", "logged_out"):
        return Act(kind="done", reason=found)
    claim = view.open_claim
    if claim is None:
        return Act(kind="done", reason="settled")  # settled meanwhile (by another replica): look again
    if found == "resumable":
        return Act(kind="close", reason=RESUMED, detail="the in-doubt part is on X; the rest is posted anew")
    since = view.doubt_started_at() or claim.started_at
    if view.attention:
        return Act(kind="wait", reason="attention", detail=f"in doubt since {since.isoformat()}")
    if now - since >= policy.attention_after and (found == "unreadable" or view.landed):
        if view.landed:
            return Act(
                kind="attention",
                reason="landed_not_found",
                detail="X answered 187 (duplicate) to a retry, so the post is on X, but its id was not found "
                f"for {policy.attention_minutes:g} minutes",
            )
        return Act(
            kind="attention",
            reason="timeline_unreadable",
            detail=f"the account's timeline could not be read to settle the attempt for {policy.attention_minutes:g} "
            "minutes",
        )
    if found == "unreadable":
        return Act(kind="wait", reason="in_doubt", detail="the timeline could not be read")
    if view.landed:
        return Act(kind="wait", reason="in_doubt", detail="it landed (187) and is not found yet")
    if not claim_expired(claim, now, policy.grace):
        return Act(kind="wait", reason="in_doubt", detail="not on the timeline yet")
    return Act(
        kind="close",
        reason=NOT_FOUND_AFTER_GRACE,
        detail=f"attempt {claim.attempt} in doubt and not on the timeline after {policy.reconcile_grace_minutes:g} "
        "minutes",
        final=view.failures + 1 >= policy.max_attempts,
    )


# ------------------------------------------------------------------------------------------- reconcile


def claim_expired(claim: Claim, now: datetime, grace: timedelta) -> bool:
    """A claim in doubt may be followed by a new attempt only once it has been quiet for the grace period."""
    return now - claim.last_activity_at >= grace


def find_on_timeline(
    timeline: Iterable[TweetView],
    text: str,
    *,
    author: str | None = None,
    in_reply_to: str | None = None,
    not_before: datetime | None = None,
    exclude_ids: Iterable[str] = (),
) -> TweetView | None:
    """The account's own tweet whose normalised text is ``text`` (the oldest such, when several), skipping
    tweets already recorded for a decision, dated well before the claim, by someone else, or replying to
    another tweet than ``in_reply_to`` (when the timeline says what a tweet replies to)."""
    want = normalize_for_hash(text)
    excluded = set(exclude_ids)
    best: TweetView | None = None
    for t in timeline:
        if t.tweet_id in excluded or normalize_for_hash(t.text) != want:
            continue
        if author and t.author.lower() != author.lower():
            continue
        if not_before is not None and t.created_at is not None and t.created_at < not_before:
            continue
        if in_reply_to is not None and t.in_reply_to is not None and t.in_reply_to != in_reply_to:
            continue
        if best is None or _older(t, best):
            best = t
    return best


def _older(a: TweetView, b: TweetView) -> bool:
    if a.created_at is not None and b.created_at is not None and a.created_at != b.created_at:
        return a.created_at < b.created_at
    return (len(a.tweet_id), a.tweet_id) < (len(b.tweet_id), b.tweet_id)


# ------------------------------------------------------------------------------------------ X's answers

Verdict = Literal["cooldown", "paused", "retry", "in_doubt", "logged_out", "final"]


class Classified(msgspec.Struct, frozen=True):
    verdict: Verdict
    code: str
    in_doubt: bool


def classify(exc: BaseException) -> Classified:
    """What one failed post means:

    - 226 "looks automated": no retry; posting pauses for X_COOLDOWN_MINUTES (does not use up an attempt);
    - 429: nothing was posted; the account pauses until X's reset (does not use up an attempt);
    - timeout / other retryable answers: back off and try again (3 attempts in all);
    - 187 "duplicate", clicked-but-no-id, or any unexpected error: in doubt, reconcile before anything else;
    - logged out: stop posting, report unready;
    - any other refusal X states clearly (too long, reply target gone...): final, retrying cannot help.
    """
    if isinstance(exc, XAutomatedError):
        return Classified("cooldown", "226", False)
    if isinstance(exc, XLoggedOut):
        return Classified("logged_out", "logged_out", False)
    if isinstance(exc, XDuplicate):
        return Classified("in_doubt", "187", True)
    if isinstance(exc, XPostInDoubt):
        return Classified("in_doubt", exc.code or "in_doubt", True)
    if isinstance(exc, XRateLimited):
        return Classified("paused", "429", False)
    if isinstance(exc, XTimeout):
        return Classified("retry", "timeout", False)
    if isinstance(exc, XError):
        if exc.in_doubt:
            return Classified("in_doubt", exc.code, True)
        if exc.retryable:
            return Classified("retry", exc.code, False)
        return Classified("final", exc.code, False)
    return Classified("in_doubt", "unexpected", True)


def rate_limit_pause(now: datetime, retry_after: float | None, earlier_429s: int, base_seconds: float) -> datetime:
    """Until when a 429 pauses the account: X's reset when it said one (bounded), else ``base * 2**n`` for the
    n-th 429 in a row since the last post (at most 64 * base)."""
    if retry_after is not None:
        seconds = min(max(retry_after, 1.0), MAX_RATE_LIMIT_PAUSE.total_seconds())
    else:
        seconds = base_seconds * (2 ** min(max(0, earlier_429s), 6))
    return now + timedelta(seconds=seconds)
