"""The shadow-mode simulator: deterministic, never mistakable for X."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.x.parsing import is_valid_tweet_id
from shared.x.port import (
    TweetMetrics,
    XAccount,
    XAutomatedError,
    XLoggedOut,
    XPageMismatch,
    XPostInDoubt,
    XUnavailable,
)
from shared.x.simulator import SimStore, SimulatedX, is_sim_id, sim_id

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def make(**kw) -> SimulatedX:
    kw.setdefault("now", Clock())
    kw.setdefault("username", "xbot")
    return SimulatedX(**kw)


@settings(max_examples=200)
@given(
    st.text(min_size=1, max_size=280).filter(str.strip),
    st.integers(),
    st.integers(min_value=0, max_value=10**6),
)
def test_simulated_ids_can_never_pass_for_x_ids(text: str, seed: int, counter: int) -> None:
    tid = sim_id(seed, "xbot", text, None, T0.isoformat(), counter)
    assert is_sim_id(tid)
    assert not is_valid_tweet_id(tid)


async def test_post_ids_are_deterministic_and_distinct() -> None:
    a, b = make(seed=7), make(seed=7)
    first = [await a.post(t) for t in ("one", "two", "one")]
    again = [await b.post(t) for t in ("one", "two", "one")]
    assert [p.tweet_id for p in first] == [p.tweet_id for p in again]  # same seed, clock, sequence
    assert len({p.tweet_id for p in first}) == 3  # the same text twice still gets two ids
    assert all(is_sim_id(p.tweet_id) and not is_valid_tweet_id(p.tweet_id) for p in first)
    assert first[0].url.startswith("sim://")
    other_seed = await make(seed=8).post("one")
    assert other_seed.tweet_id != first[0].tweet_id


async def test_timeline_is_newest_first_and_replies_keep_their_parent() -> None:
    clock = Clock()
    x = make(now=clock)
    p1 = await x.post("first")
    clock.at += timedelta(minutes=5)
    p2 = await x.post("a reply", in_reply_to="sim-0000000000000000000a")
    timeline = await x.read_own_timeline()
    assert [t.tweet_id for t in timeline] == [p2.tweet_id, p1.tweet_id]
    assert timeline[0].in_reply_to == "sim-0000000000000000000a"
    assert timeline[0].created_at == T0 + timedelta(minutes=5)
    assert timeline[1].author == "xbot"
    assert await x.read_own_timeline(limit=1) == timeline[:1]


async def test_on_submitted_runs_after_the_tweet_exists() -> None:
    x = make()
    seen: list[int] = []

    async def hook() -> None:
        seen.append(len(await x.read_own_timeline()))

    x.on_submitted = hook
    await x.post("hello")
    assert seen == [1]


async def test_metrics_come_from_the_injected_model() -> None:
    calls: list[str] = []

    def model(tweet_id: str) -> TweetMetrics | None:
        calls.append(tweet_id)
        return (
            TweetMetrics(tweet_id=tweet_id, author="?", impressions=900, likes=12) if len(calls) > 1 else None
        )

    x = make(metrics_fn=model)
    posted = await x.post("measured")
    with pytest.raises(XUnavailable):  # the model has nothing yet
        await x.read_status_metrics(posted.tweet_id, expected_author="xbot")
    metrics = await x.read_status_metrics(posted.tweet_id, expected_author="@xbot")
    assert (metrics.tweet_id, metrics.author, metrics.impressions, metrics.likes) == (
        posted.tweet_id,
        "xbot",
        900,
        12,
    )


async def test_async_metrics_fn_and_default_zeros() -> None:
    async def model(tweet_id: str) -> TweetMetrics:
        return TweetMetrics(tweet_id=tweet_id, author="xbot", retweets=3)

    x = make(metrics_fn=model)
    posted = await x.post("async")
    assert (await x.read_status_metrics(posted.tweet_id, expected_author="xbot")).retweets == 3
    plain = make()
    p = await plain.post("zeros")
    assert await plain.read_status_metrics(p.tweet_id, expected_author="xbot") == TweetMetrics(
        tweet_id=p.tweet_id, author="xbot"
    )


async def test_metrics_check_the_author_and_the_tweet() -> None:
    x = make()
    candidates = await x.search("postgres", limit=3)
    with pytest.raises(XPageMismatch):
        await x.read_status_metrics(candidates[0].tweet_id, expected_author="xbot")
    assert (
        await x.read_status_metrics(candidates[0].tweet_id, expected_author=candidates[0].author)
    ).likes == 0
    with pytest.raises(XUnavailable):
        await x.read_status_metrics("1800001000008390224", expected_author="xbot")

    wrong = make(metrics_fn=lambda tid: TweetMetrics(tweet_id="sim-ffffffffffffffffffff", author="xbot"))
    p = await wrong.post("x")
    with pytest.raises(XPageMismatch):
        await wrong.read_status_metrics(p.tweet_id, expected_author="xbot")


async def test_own_ids_from_an_earlier_process_still_resolve() -> None:
    posted = await make().post("before restart")
    fresh = make(metrics_fn=lambda tid: TweetMetrics(tweet_id=tid, author="xbot", likes=4))
    assert (await fresh.read_status_metrics(posted.tweet_id, expected_author="xbot")).likes == 4
    with pytest.raises(XUnavailable):  # but not someone else's
        await fresh.read_status_metrics(posted.tweet_id, expected_author="bob")


async def test_a_shared_store_models_x_outliving_the_poster() -> None:
    store = SimStore()
    first = make(store=store)
    first.inject_failure(XPostInDoubt("answer lost"), created=True)
    with pytest.raises(XPostInDoubt):
        await first.post("in doubt")
    restarted = make(store=store)
    assert [t.text for t in await restarted.read_own_timeline()] == ["in doubt"]


async def test_injected_failures_mirror_x_answers() -> None:
    x = make()
    clicks: list[str] = []

    async def hook() -> None:
        clicks.append("click")

    x.on_submitted = hook
    x.inject_failure(XAutomatedError("226"))
    with pytest.raises(XAutomatedError):
        await x.post("refused")
    assert clicks == ["click"] and await x.read_own_timeline() == []
    x.inject_failure(XLoggedOut("gone"))
    with pytest.raises(XLoggedOut):
        await x.post("never clicked")
    assert clicks == ["click"]
    x.inject_failure(XUnavailable("down"), op="search")
    with pytest.raises(XUnavailable):
        await x.search("q")
    assert len(await x.search("q", limit=2)) == 2
    with pytest.raises(Exception, match="shorter"):
        await x.post("x" * 281)


async def test_candidates_are_deterministic_per_query_and_time_bucket() -> None:
    clock = Clock(T0 + timedelta(minutes=5))
    x = make(now=clock, seed=3)
    first = await x.search("event sourcing", limit=5)
    clock.at = T0 + timedelta(minutes=50)  # same hour bucket
    assert await make(now=clock, seed=3).search("event sourcing", limit=5) == first
    clock.at = T0 + timedelta(hours=2)
    later = await x.search("event sourcing", limit=5)
    assert {t.tweet_id for t in later}.isdisjoint({t.tweet_id for t in first})
    for t in first:
        assert is_sim_id(t.tweet_id) and not is_valid_tweet_id(t.tweet_id)
        assert t.author != "xbot"
        assert "event sourcing" in t.text.lower()
        assert T0 - timedelta(hours=4) <= t.created_at <= T0 + timedelta(minutes=5)
    assert [t.created_at for t in first] == sorted((t.created_at for t in first), reverse=True)


async def test_account_tweets_and_from_operator() -> None:
    x = make()
    theirs = await x.read_account_tweets("@cloud_kate", limit=4)
    assert len(theirs) == 4 and {t.author for t in theirs} == {"cloud_kate"}
    assert {t.author for t in await x.search("from:data_dan kubernetes", limit=3)} == {"data_dan"}
    mine = await x.post("mine")
    assert [t.tweet_id for t in await x.read_account_tweets("xbot")] == [mine.tweet_id]


async def test_health_and_close() -> None:
    x = make()
    assert isinstance(x, XAccount)
    assert await x.healthy()
    x.set_healthy(False)
    assert not await x.healthy()
    await x.close()
    with pytest.raises(XUnavailable):
        await x.post("after close")
