"""Reconcile fails closed (issue 15): an attempt whose answer was lost stays in doubt while the account's
timeline cannot be read, whatever the grace period says; it is looked for in several places; a 187 answer to a
retry after a doubt means the first attempt landed; a doubt that lasts stops and asks the operator; attempts in
doubt count towards the posting limits. The matrix: "answer lost" x "timeline unreadable for a while, then
readable", for a post, a thread part and a reply: exactly one tweet per text, the decision posted with X's id."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from structlog.testing import capture_logs

from services.poster.handlers import PostingPolicy, search_query
from shared.bus.memory import InMemoryBus
from shared.clock import FixedClock
from shared.events import (
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostStarted,
)
from shared.x.port import XDuplicate, XLoggedOut, XPostInDoubt, XTimeout, XUnreadable
from tests.unit.test_poster_handlers import LIVE_ON, T0, FakeX, events_of, queued, rig

pytestmark = pytest.mark.unit


@pytest.fixture
def world():
    clock = FixedClock(T0)
    return InMemoryBus(), clock, FakeX("alice", now=clock.now), FakeX("xbot_shadow", now=clock.now, id_prefix=0)

GRACE = PostingPolicy(retry_base_seconds=1, retry_inline_max_seconds=10, reconcile_grace_minutes=5,
                      attention_minutes=60)


async def setup_kind(bus, live, kind: str):
    """A queued decision of ``kind`` and the texts it puts on X, in order."""
    if kind == "single":
        q = queued("d")
        texts = [q.content]
    elif kind == "thread":
        texts = ["part one of the thread", "part two of the thread", "part three of the thread"]
        q = queued("d", dtype="thread", parts=texts)
    else:
        target = live._store("a question from bob", None)
        target = target.__class__(**{**{f: getattr(target, f) for f in target.__struct_fields__}, "author": "bob"})
        live.tweets[-1] = target
        q = queued("d", dtype="reply", target=target.tweet_id, content="a reply to bob's question")
        texts = [q.content]
    await bus.publish(q)
    return q, texts


def lose_answer_of(live, kind: str) -> None:
    """The post that is in doubt: X creates it and the answer never comes back (for a thread: part two)."""
    if kind == "thread":
        orig = live.post
        calls = {"n": 0}

        async def second_lost(text, *, in_reply_to=None):
            calls["n"] += 1
            if calls["n"] == 2:
                live.fail_next(XPostInDoubt("answer lost"), created=True)
            return await orig(text, in_reply_to=in_reply_to)

        live.post = second_lost
    else:
        live.fail_next(XPostInDoubt("answer lost"), created=True)


@pytest.mark.parametrize("error", [XUnreadable("X shows its error page"), XTimeout("nothing rendered"),
                                   XLoggedOut("login wall")], ids=["error_page", "timeout", "login_wall"])
@pytest.mark.parametrize("kind", ["single", "thread", "reply"])
async def test_answer_lost_and_timeline_unreadable_for_a_while_then_readable(world, kind, error):
    bus, clock, live, _ = world
    r = rig(world, policy=GRACE)
    q, texts = await setup_kind(bus, live, kind)
    await r.catch_up()
    lose_answer_of(live, kind)
    live.unreadable(times=6, exc=error)  # two reconciles' worth of every place
    with capture_logs() as logs:
        first = await r.run()
    assert first.get("in_doubt", 0) + first.get("logged_out", 0) == 1
    assert any("Reconcile" in e["event"] and "unreadable" in e["event"] or "logged out" in e["event"]
               for e in logs)
    if isinstance(error, XLoggedOut):
        live.is_healthy = True  # the session check on the next run finds the session valid again
    for step in range(2):  # well past the grace, the timeline still unreadable: never claimed again
        clock.advance(minutes=10)
        counts = await r.run(f"unreadable-{step}")
        assert counts.get("posted", 0) == 0, counts
    claims = await events_of(bus, DecisionPostStarted)
    assert len(claims) == 1
    assert [t.text for t in live.tweets if t.author == "alice"] == texts[: len(texts) - (1 if kind == "thread" else 0)]
    live.timeline_failures.clear(), live.profile_failures.clear(), live.search_failures.clear()
    clock.advance(minutes=1)
    counts = await r.run("readable")
    assert counts.get("recovered", 0) + counts.get("posted", 0) == 1, counts
    ours = [t for t in live.tweets if t.author == "alice"]
    assert [t.text for t in ours] == texts  # exactly one tweet per text
    (posted,) = await events_of(bus, DecisionPosted)
    assert posted.tweet_id == ours[0].tweet_id
    if kind == "thread":
        assert posted.thread_tweet_ids == [t.tweet_id for t in ours]
    assert r.state.get("d") is None and (await r.run("after"))["due"] == 0


async def test_a_grace_with_a_readable_empty_timeline_still_closes_the_attempt(world):
    """The one way an attempt in doubt is retried: every place was read and none shows it, after the grace."""
    bus, clock, live, _ = world
    r = rig(world, policy=GRACE)
    await bus.publish(queued("d"))
    await r.catch_up()
    live.fail_next(XPostInDoubt("clicked, nothing came back"), created=False)
    assert (await r.run())["in_doubt"] == 1
    clock.advance(minutes=5)
    with capture_logs() as logs:
        assert (await r.run("r2"))["posted"] == 1
    line = next(e["event"] for e in logs if "Reconcile" in e["event"])
    assert "with_replies: " in line and "profile: " in line and "search: " in line and "not_found" in line
    assert len(live.tweets) == 1


async def test_found_in_the_search_when_the_timelines_do_not_show_it(world):
    bus, _, live, _ = world
    r = rig(world, policy=GRACE)
    await bus.publish(queued("d"))
    await r.catch_up()
    live.fail_next(XPostInDoubt("answer lost"), created=True)
    live.timeline_failures.append(XUnreadable("error page"))
    live.profile_failures.append(XTimeout("no tweets"))
    assert (await r.run())["recovered"] == 1
    assert live.reads == ["with_replies", "profile", "search"]
    (p,) = await events_of(bus, DecisionPosted)
    assert p.tweet_id == live.tweets[0].tweet_id and p.recovered


@pytest.mark.parametrize("kind", ["single", "reply"])
async def test_187_to_a_retry_means_the_first_attempt_landed(world, kind):
    """X holds the first attempt but its timelines lag: not found after the grace, so a retry goes out and X
    answers 187. From then on it is never posted again; once X shows it, it is posted with its id."""
    bus, clock, live, _ = world
    r = rig(world, policy=GRACE)
    q, texts = await setup_kind(bus, live, kind)
    await r.catch_up()
    live.fail_next(XPostInDoubt("answer lost"), created=True)
    live.hide_new = True
    assert (await r.run())["in_doubt"] == 1
    live.hide_new = False
    first = next(t for t in live.tweets if t.author == "alice")
    clock.advance(minutes=5)
    live.fail_next(XDuplicate("Status is a duplicate. (187)"))
    assert (await r.run("r2"))["in_doubt"] == 1
    fails = await events_of(bus, DecisionPostFailed)
    assert fails[-1].error_code == "187" and fails[-1].landed and r.state.get("d").landed
    posts_before = len(live.posts)
    for step in range(3):  # long past the grace: still only looked for, never posted again
        clock.advance(minutes=10)
        assert (await r.run(f"r3-{step}")).get("posted", 0) == 0
    assert len(live.posts) == posts_before
    live.hidden.clear()
    clock.advance(minutes=1)
    assert (await r.run("r4"))["recovered"] == 1
    (p,) = await events_of(bus, DecisionPosted)
    assert p.tweet_id == first.tweet_id and [t.text for t in live.tweets if t.author == "alice"] == texts


async def test_a_first_attempt_answered_187_is_not_taken_for_landed(world):
    bus, _, live, _ = world
    r = rig(world, policy=GRACE)
    await bus.publish(queued("d"))
    await r.catch_up()
    live.fail_next(XDuplicate("Status is a duplicate. (187)"))
    assert (await r.run())["in_doubt"] == 1
    assert not r.state.get("d").landed  # no earlier attempt of ours could have landed


async def in_doubt_and_unreadable(world):
    """A decision whose answer was lost (nothing landed), on an account whose pages cannot be read."""
    bus, _, live, _ = world
    r = rig(world, policy=GRACE)
    await bus.publish(queued("d"))
    await r.catch_up()
    live.fail_next(XPostInDoubt("answer lost"), created=False)
    live.unreadable(times=1000)
    assert (await r.run())["in_doubt"] == 1
    return r


async def test_a_lasting_doubt_stops_and_asks_the_operator(world):
    bus, clock, live, _ = world
    r = await in_doubt_and_unreadable(world)
    clock.advance(minutes=59)
    assert (await r.run("r2"))["in_doubt"] == 1
    clock.advance(minutes=1)
    with capture_logs() as logs:
        assert (await r.run("r3"))["attention"] == 1
    assert any("operator must answer" in e["event"] for e in logs)
    (a,) = await events_of(bus, DecisionAttentionNeeded)
    assert a.reason == "timeline_unreadable" and a.in_doubt_since == T0 and a.attempt == 1
    clock.advance(hours=5)
    assert (await r.run("r4"))["attention"] == 1  # no second event, no retry
    assert len(await events_of(bus, DecisionAttentionNeeded)) == 1 and len(live.posts) == 1
    assert r.state.counts()["attention_needed"] == 1
    # the operator checked X by hand: it is not there. Retry posts it once.
    await bus.publish(DecisionDoubtResolved(event_id="op-1", occurred_at=clock.now(), decision_id="d",
                                            action="retry", actor="ops"))
    await r.catch_up()
    live.timeline_failures.clear(), live.profile_failures.clear(), live.search_failures.clear()
    assert (await r.run("r5"))["posted"] == 1 and len(live.tweets) == 1


async def test_the_operator_can_abandon_a_decision_in_doubt(world):
    bus, clock, live, _ = world
    r = await in_doubt_and_unreadable(world)
    await bus.publish(DecisionDoubtResolved(event_id="op-1", occurred_at=clock.now(), decision_id="d",
                                            action="abandon"))
    await r.catch_up()
    assert r.state.get("d") is None and (await r.run("r2"))["due"] == 0 and len(live.posts) == 1


async def test_attempts_in_doubt_count_towards_the_reply_cap(world):
    """The seed bug: the daily reply cap counted 2 replies while X held 3. One in doubt is one on X."""
    bus, _, live, _ = world
    flags = msgspec.structs.replace(LIVE_ON, REPLY_MAX_PER_DAY=3)
    r = rig(world, flags=flags, policy=GRACE)
    target = live._store("bob asks", None).tweet_id
    for i in range(4):
        await bus.publish(queued(f"r{i}", dtype="reply", target=target, content=f"reply number {i}",
                                 at=T0 - timedelta(minutes=10 - i)))
    await r.catch_up()
    live.fail_next(XPostInDoubt("answer lost"), created=True)
    live.unreadable(times=1000)
    counts = await r.run()
    assert counts["in_doubt"] == 1 and counts["posted"] == 2 and counts["rate_limited"] == 1
    assert len(live.tweets) == 4  # bob's question and our three replies: the cap holds on X


def test_search_query_is_our_account_and_the_first_words_of_the_text():
    q = search_query("alice", 'Ship "small" PRs https://t.co/x @bob daily, review fast and often today please now ok')
    assert q == 'from:alice "Ship small PRs daily, review fast and often today please now ok"'
    assert search_query("alice", "https://t.co/x") == "from:alice"
