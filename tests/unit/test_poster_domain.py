"""The poster's pure core: what is due, rate limits and cooldown from the log, claims in doubt, reconcile
matching and the classification of X's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.poster.domain import (
    NOT_FOUND_AFTER_GRACE,
    PosterState,
    PostingPolicy,
    after_reconcile,
    backoff_seconds,
    claim_expired,
    classify,
    decide_post,
    find_on_timeline,
)
from shared.events import (
    DecisionApproved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
)
from shared.flags import Flags
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

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def queued(
    did: str, *, source: str = "real", dtype: str = "single", at: datetime = T0, **kw
) -> DecisionQueued:
    fields = dict(
        event_id=f"q-{did}",
        occurred_at=at - timedelta(minutes=5),
        decision_id=did,
        decision_type=dtype,
        content=f"content of {did}",
        parts=[],
        bandit_arm="arm-a",
        timing_arm="slot-12",
        generation_source=source,
        scheduled_at=at,
        topic_cluster="t",
        angle="a",
        content_hash=f"h-{did}",
    )
    fields.update(kw)
    return DecisionQueued(**fields)


def posted(did: str, at: datetime, *, dtype: str = "single", simulated: bool = False, tid: str | None = None):
    return DecisionPosted(
        event_id=f"posted:{did}",
        occurred_at=at,
        decision_id=did,
        tweet_id=tid or f"1{abs(hash(did)) % 10**18:018d}",
        posted_at=at,
        decision_type=dtype,
        bandit_arm="arm-a",
        simulated=simulated,
    )


def started(did: str, attempt: int, at: datetime, simulated: bool = False) -> DecisionPostStarted:
    return DecisionPostStarted(
        event_id=f"c-{did}-{attempt}",
        occurred_at=at,
        decision_id=did,
        attempt=attempt,
        poster_id="p1",
        simulated=simulated,
    )


def failed(did: str, attempt: int, at: datetime, code: str = "timeout", **kw) -> DecisionPostFailed:
    return DecisionPostFailed(
        event_id=f"f-{did}-{attempt}-{code}",
        occurred_at=at,
        decision_id=did,
        attempt=attempt,
        error="x",
        error_code=code,
        **kw,
    )


def build(*events) -> PosterState:
    s = PosterState()
    for i, ev in enumerate(events, start=1):
        s.evolve(ev, i)
    return s


LIVE = Flags(
    MODE="live", POSTING_DISABLED=False, LIVE_POSTS=True, MAX_POSTS_PER_HOUR=2, MIN_POST_INTERVAL_MINUTES=15
)


def test_due_is_the_seed_query_oldest_first_at_most_batch():
    events = [queued(f"d{i}", at=T0 - timedelta(minutes=10 - i)) for i in range(7)]
    events += [
        queued("future", at=T0 + timedelta(minutes=1)),
        queued("synthetic", source="synthetic", at=T0 - timedelta(hours=1)),
    ]
    s = build(*events)
    due = s.due(T0, "live", False, 5)
    assert [v.decision_id for v in due] == ["d0", "d1", "d2", "d3", "d4"]
    assert all(v.generation_source == "real" for v in due)
    assert [v.decision_id for v in s.due(T0, "shadow", False, 5)] == ["synthetic"]
    assert "future" in [v.decision_id for v in s.due(T0 + timedelta(minutes=2), "live", False, 10)]


def test_due_requires_approval_when_asked_and_drops_terminal_decisions():
    s = build(
        queued("a"),
        queued("b"),
        queued("c"),
        queued("d"),
        DecisionApproved(event_id="ap", occurred_at=T0, decision_id="b"),
        DecisionRejected(event_id="rj", occurred_at=T0, decision_id="c"),
        posted("d", T0),
    )
    assert [v.decision_id for v in s.due(T0, "live", True, 5)] == ["b"]
    assert sorted(v.decision_id for v in s.due(T0, "live", False, 5)) == ["a", "b"]


def test_rescheduled_moves_scheduled_at():
    s = build(
        queued("a"),
        DecisionRescheduled(
            event_id="r", occurred_at=T0, decision_id="a", scheduled_at=T0 + timedelta(hours=2)
        ),
    )
    assert s.due(T0, "live", False, 5) == []
    assert len(s.due(T0 + timedelta(hours=2), "live", False, 5)) == 1


def test_last_seq_tracks_every_event_of_the_decision_and_skips_keep_it_queued():
    s = PosterState()
    s.evolve(queued("a"), 3)
    s.evolve(queued("b"), 4)
    s.evolve(DecisionPostSkipped(event_id="s", occurred_at=T0, decision_id="a", reason="posting_disabled"), 9)
    view = s.get("a")
    assert view is not None and view.last_seq == 9 and view.status == "queued"
    assert s.get("b").last_seq == 4


def test_applying_an_event_twice_changes_nothing():
    s = PosterState()
    s.evolve(queued("a"), 1)
    s.evolve(started("a", 1, T0), 2)
    s.evolve(failed("a", 1, T0), 3)
    before = s.get("a")
    s.evolve(failed("a", 1, T0), 3)  # redelivered
    assert s.get("a") == before and before.failures == 1


def test_claim_is_in_doubt_until_posted_or_a_plain_failure():
    s = build(queued("a"), started("a", 1, T0))
    view = s.get("a")
    assert view.in_doubt and view.claims == 1 and view.open_claim.attempt == 1
    s.evolve(failed("a", 1, T0 + timedelta(minutes=1), code="187", in_doubt=True), 3)
    view = s.get("a")
    assert view.in_doubt and view.failures == 0
    assert view.open_claim.last_activity_at == T0 + timedelta(minutes=1)
    s.evolve(failed("a", 1, T0 + timedelta(minutes=12), code=NOT_FOUND_AFTER_GRACE), 4)
    view = s.get("a")
    assert not view.in_doubt and view.failures == 1


def test_in_doubt_attempt_is_due_and_backoff_delays_the_next_attempt():
    s = build(queued("a"), started("a", 1, T0))
    assert [v.decision_id for v in s.due(T0, "live", False, 5, retry_base_seconds=60)] == ["a"]
    s.evolve(failed("a", 1, T0), 3)
    s.evolve(started("a", 2, T0), 4)
    s.evolve(failed("a", 2, T0), 5)
    assert s.get("a").failures == 2
    # second failure: 2 * 60 s
    assert s.due(T0 + timedelta(seconds=119), "live", False, 5, retry_base_seconds=60) == []
    assert len(s.due(T0 + timedelta(seconds=120), "live", False, 5, retry_base_seconds=60)) == 1
    assert backoff_seconds(5, 1) == 5 and backoff_seconds(5, 3) == 20


def test_final_failure_ends_the_decision():
    s = build(queued("a"), started("a", 1, T0), failed("a", 1, T0, final=True))
    assert s.get("a") is None and s.due(T0, "live", False, 5) == []


def test_thread_parts_accumulate_in_order():
    s = build(
        queued("t", dtype="thread", parts=["one", "two", "three"]),
        started("t", 1, T0),
        DecisionPartPosted(event_id="p0", occurred_at=T0, decision_id="t", part_index=0, tweet_id="1" * 19),
        DecisionPartPosted(event_id="p0b", occurred_at=T0, decision_id="t", part_index=0, tweet_id="2" * 19),
    )
    view = s.get("t")
    assert view.part_ids == ("1" * 19,)
    assert view.texts() == ("one", "two", "three")
    assert "1" * 19 in s.posted_tweet_ids


def test_rate_limits_count_posts_from_the_log():
    s = build(posted("p1", T0 - timedelta(minutes=50)), posted("p2", T0 - timedelta(minutes=20)), queued("a"))
    view = s.get("a")
    assert "MAX_POSTS_PER_HOUR=2" in s.rate_limit(view, T0, LIVE, simulated=False)
    later = T0 + timedelta(minutes=11)  # p1 left the hour; p2 was 31 min ago
    assert s.rate_limit(view, later, LIVE, simulated=False) is None
    s2 = build(posted("p1", T0 - timedelta(minutes=10)), queued("a"))
    assert "MIN_POST_INTERVAL_MINUTES=15" in s2.rate_limit(s2.get("a"), T0, LIVE, simulated=False)
    assert s2.rate_limit(s2.get("a"), T0 + timedelta(minutes=5), LIVE, simulated=False) is None
    # simulated posts do not count against X, and replies do not count as posts
    s3 = build(
        posted("p1", T0 - timedelta(minutes=1), simulated=True), posted("r", T0, dtype="reply"), queued("a")
    )
    assert s3.rate_limit(s3.get("a"), T0, LIVE, simulated=False) is None


def test_rate_limits_match_a_count_of_every_post_whatever_order_the_log_gave_them():
    """The limits bisect the time-ordered records: posts seen out of time order, of both kinds, must give the
    answer a count over every record gives."""
    import random

    rng = random.Random(3)
    flags = Flags(MAX_POSTS_PER_HOUR=4, MIN_POST_INTERVAL_MINUTES=7, REPLY_MAX_PER_DAY=3)
    events = [posted(f"p{i}", T0 - timedelta(minutes=rng.randrange(0, 600)), simulated=rng.random() < 0.3,
                     dtype="reply" if rng.random() < 0.3 else "single") for i in range(120)]
    s = build(*events, queued("a"), queued("b", dtype="reply", target_tweet_id="1" * 19))
    for minutes in range(-600, 60, 13):
        now = T0 + timedelta(minutes=minutes)
        for sim in (False, True):
            mine = [e for e in events if e.simulated == sim and e.decision_type != "reply" and e.posted_at <= now]
            hour = sum(1 for e in mine if now - timedelta(hours=1) < e.posted_at)
            last = max((e.posted_at for e in mine), default=None)
            got = s.rate_limit(s.get("a"), now, flags, simulated=sim)
            if hour >= 4:
                assert got is not None and "MAX_POSTS_PER_HOUR" in got
            elif last is not None and now - last < timedelta(minutes=7):
                assert got is not None and "MIN_POST_INTERVAL_MINUTES" in got
            else:
                assert got is None
            day = sum(1 for e in events if e.simulated == sim and e.decision_type == "reply"
                      and now - timedelta(hours=24) < e.posted_at <= now)
            assert (s.rate_limit(s.get("b"), now, flags, simulated=sim) is not None) == (day >= 3)


def test_reply_limit_per_24_hours():
    flags = Flags(REPLY_MAX_PER_DAY=2)
    s = build(
        posted("r1", T0 - timedelta(hours=23), dtype="reply"),
        posted("r2", T0 - timedelta(hours=1), dtype="reply"),
        posted("p", T0 - timedelta(minutes=1)),
        queued("a", dtype="reply", target_tweet_id="1" * 19),
    )
    assert "REPLY_MAX_PER_DAY=2" in s.rate_limit(s.get("a"), T0, flags, simulated=False)
    assert s.rate_limit(s.get("a"), T0 + timedelta(hours=1, seconds=1), flags, simulated=False) is None


def test_cooldown_after_226_is_derived_from_the_log():
    s = build(queued("a"), started("a", 1, T0), failed("a", 1, T0, code="226"))
    assert s.cooldown_until(False, 60) == T0 + timedelta(minutes=60)
    assert s.cooldown_until(True, 60) is None
    view = s.get("a")
    assert view.failures == 0 and not view.in_doubt  # a 226 says nothing about the content


def test_claim_expiry_uses_the_grace_period():
    s = build(queued("a"), started("a", 1, T0))
    claim = s.get("a").open_claim
    grace = timedelta(minutes=10)
    assert not claim_expired(claim, T0 + timedelta(minutes=9), grace)
    assert claim_expired(claim, T0 + timedelta(minutes=10), grace)


def tv(tid: str, text: str, *, author: str = "alice", at: datetime | None = T0, reply_to: str | None = None):
    return TweetView(tweet_id=tid, author=author, text=text, created_at=at, in_reply_to=reply_to)


def test_find_on_timeline_matches_normalised_text_only_for_fresh_own_unrecorded_tweets():
    a, b, c, d, e = ("1" + str(i) * 18 for i in range(1, 6))
    timeline = [
        tv(a, "Hello,   WORLD! https://t.co/abc"),
        tv(b, "hello world", author="mallory"),
        tv(c, "hello world", at=T0 - timedelta(days=2)),
        tv(d, "hello world", reply_to="9" * 19),
        tv(e, "something else"),
    ]
    found = find_on_timeline(timeline, "hello world", author="alice", not_before=T0 - timedelta(minutes=10))
    assert found is not None and found.tweet_id == a
    assert (
        find_on_timeline(
            timeline,
            "hello world",
            author="alice",
            not_before=T0 - timedelta(minutes=10),
            exclude_ids={a},
            in_reply_to="8" * 19,
        )
        is None
    )
    reply = find_on_timeline(
        timeline,
        "hello world",
        author="alice",
        in_reply_to="9" * 19,
        not_before=T0 - timedelta(minutes=10),
        exclude_ids={a},
    )
    assert reply is not None and reply.tweet_id == d
    assert find_on_timeline(timeline, "not there") is None


@pytest.mark.parametrize(
    ("exc", "verdict", "code", "in_doubt"),
    [
        (XAutomatedError("x"), "cooldown", "226", False),
        (XRateLimited("x"), "paused", "429", False),
        (XDuplicate("x"), "in_doubt", "187", True),
        (XLoggedOut("x"), "logged_out", "logged_out", False),
        (XTimeout("x"), "retry", "timeout", False),
        (XPostInDoubt("x"), "in_doubt", "in_doubt", True),
        (XError("too long", code="186"), "final", "186", False),
        (XError("server", code="http_503", retryable=True), "retry", "http_503", False),
        (RuntimeError("browser crashed"), "in_doubt", "unexpected", True),
    ],
)
def test_classify_x_answers(exc, verdict, code, in_doubt):
    c = classify(exc)
    assert (c.verdict, c.code, c.in_doubt) == (verdict, code, in_doubt)


# ------------------------------------------------------------------------- the pure rule (decide_post)

ONE_AN_HOUR = Flags(
    MODE="live", POSTING_DISABLED=False, LIVE_POSTS=True, MAX_POSTS_PER_HOUR=1, MIN_POST_INTERVAL_MINUTES=15
)


@pytest.mark.parametrize(
    ("history", "now", "expected"),
    [
        ([queued("a")], T0, ("claim", "")),
        ([queued("a"), started("a", 1, T0)], T0, ("reconcile", "")),
        ([queued("a"), started("a", 1, T0), failed("a", 1, T0, "226")], T0 + timedelta(minutes=59),
         ("skip", "cooldown")),
        ([queued("a"), started("a", 1, T0), failed("a", 1, T0, "429", paused_until=T0 + timedelta(minutes=5))],
         T0 + timedelta(minutes=4), ("skip", "x_rate_limited")),
        ([queued("a"), started("a", 1, T0), failed("a", 1, T0, "429", paused_until=T0 + timedelta(minutes=5))],
         T0 + timedelta(minutes=5), ("claim", "")),
        ([queued("b"), posted("b", T0), queued("a")], T0 + timedelta(minutes=30), ("skip", "rate_limited")),
        ([queued("b"), started("b", 1, T0), queued("a")], T0 + timedelta(minutes=30), ("skip", "rate_limited")),
        ([queued("a", dtype="reply")], T0, ("fail", "no_reply_target")),
        ([queued("a", source="synthetic")], T0, ("done", "refused")),
    ],
    ids=["due", "in_doubt", "226", "429_running", "429_over", "hourly", "hourly_in_doubt", "no_target", "synthetic"],
)
def test_decide_post_is_a_pure_function_of_the_log_flags_and_now(history, now, expected):
    state = build(*history)
    act = decide_post(state.get("a"), state, ONE_AN_HOUR, now, simulated=False)
    assert (act.kind, act.reason) == expected
    assert decide_post(state.get("a"), state, ONE_AN_HOUR, now, simulated=False) == act  # no hidden state


POLICY = PostingPolicy(reconcile_grace_minutes=10, attention_minutes=60, max_attempts=3)


@pytest.mark.parametrize(
    ("extra", "found", "minutes", "expected"),
    [
        ([], "recovered", 0, ("done", "recovered")),
        ([], "resumable", 0, ("close", "resumed")),
        ([], "unreadable", 30, ("wait", "in_doubt")),
        ([], "unreadable", 60, ("attention", "timeline_unreadable")),
        ([], "not_found", 5, ("wait", "in_doubt")),
        ([], "not_found", 10, ("close", "not_found_after_grace")),
        ([failed("a", 1, T0, "187", in_doubt=True, landed=True)], "not_found", 30, ("wait", "in_doubt")),
        ([failed("a", 1, T0, "187", in_doubt=True, landed=True)], "not_found", 60, ("attention", "landed_not_found")),
    ],
    ids=["recovered", "resumable", "unreadable", "unreadable_long", "not_found_early", "not_found_grace",
         "landed", "landed_long"],
)
def test_after_reconcile_fails_closed(extra, found, minutes, expected):
    state = build(queued("a"), started("a", 1, T0), *extra)
    act = after_reconcile(state.get("a"), found, T0 + timedelta(minutes=minutes), POLICY)
    assert (act.kind, act.reason) == expected


def test_the_last_not_found_after_grace_is_final():
    state = build(queued("a"), started("a", 1, T0), failed("a", 1, T0), started("a", 2, T0), failed("a", 2, T0),
                  started("a", 3, T0))
    act = after_reconcile(state.get("a"), "not_found", T0 + timedelta(minutes=10), POLICY)
    assert (act.kind, act.final) == ("close", True)
