"""The posting job over the in-memory bus and fake X accounts: flags, shadow/live separation, limits,
approval, the claim race, reconcile of attempts in doubt, X's failure modes, threads and replies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.poster.domain import PosterState
from services.poster.handlers import Poster, PostingPolicy
from shared.bus.memory import InMemoryBus
from shared.clock import FixedClock
from shared.events import (
    Command,
    DecisionApproved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    Event,
)
from shared.flags import Flags
from shared.gates.text import normalize_for_hash
from shared.x.port import (
    Posted,
    TweetView,
    XAutomatedError,
    XDuplicate,
    XError,
    XLoggedOut,
    XPostInDoubt,
    XRateLimited,
    XTimeout,
    XUnreadable,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIVE_ON = Flags(
    MODE="live", POSTING_DISABLED=False, LIVE_POSTS=True, MAX_POSTS_PER_HOUR=100, MIN_POST_INTERVAL_MINUTES=0
)


class FakeX:
    """An X account in memory: ids of 19 digits (or whatever ``id_fn`` says), scripted failures."""

    def __init__(
        self, username: str = "alice", *, now=lambda: T0, id_prefix: int = 1_900_000_000_000_000_000
    ):
        self.username = username
        self.now = now
        self.tweets: list[TweetView] = []
        self.failures: list[tuple[BaseException, bool]] = []
        self.timeline_failures: list[BaseException] = []  # read_own_timeline (with replies)
        self.profile_failures: list[BaseException] = []
        self.search_failures: list[BaseException] = []
        self.reads: list[str] = []
        #: tweets that are on X but not (yet) shown by any read (X's timelines and search lag behind)
        self.hidden: set[str] = set()
        self.hide_new = False  # tweets stored while set go to ``hidden``
        self.posts: list[tuple[str, str | None]] = []
        self.is_healthy = True
        self.bad_id: str | None = None
        self._next = id_prefix

    def fail_next(self, exc: BaseException, *, created: bool = False) -> None:
        self.failures.append((exc, created))

    def _store(self, text: str, in_reply_to: str | None) -> TweetView:
        self._next += 1
        t = TweetView(
            tweet_id=str(self._next),
            author=self.username,
            text=text,
            created_at=self.now(),
            in_reply_to=in_reply_to,
        )
        self.tweets.append(t)
        if self.hide_new:
            self.hidden.add(t.tweet_id)
        return t

    async def post(self, text: str, *, in_reply_to: str | None = None) -> Posted:
        self.posts.append((text, in_reply_to))
        if self.failures:
            exc, created = self.failures.pop(0)
            if created:
                self._store(text, in_reply_to)
            raise exc
        t = self._store(text, in_reply_to)
        tid = self.bad_id or t.tweet_id
        return Posted(tweet_id=tid, url=f"https://x.test/{self.username}/status/{tid}")

    def unreadable(self, times: int, exc: BaseException | None = None) -> None:
        """The next ``times`` reads of every place (timeline, profile, search) fail."""
        for failures in (self.timeline_failures, self.profile_failures, self.search_failures):
            failures.extend([exc or XUnreadable("X shows its error page")] * times)

    async def read_own_timeline(self, limit: int = 50) -> list[TweetView]:
        self.reads.append("with_replies")
        if self.timeline_failures:
            raise self.timeline_failures.pop(0)
        return [t for t in reversed(self.tweets) if t.tweet_id not in self.hidden][:limit]

    async def read_account_tweets(self, username: str, limit: int = 20) -> list[TweetView]:
        self.reads.append("profile")
        if self.profile_failures:
            raise self.profile_failures.pop(0)
        return [
            t for t in reversed(self.tweets)
            if t.author == username and t.in_reply_to is None and t.tweet_id not in self.hidden
        ][:limit]

    async def search(self, query: str, limit: int = 20) -> list[TweetView]:
        self.reads.append("search")
        if self.search_failures:
            raise self.search_failures.pop(0)
        phrases = re.findall(r'"([^"]*)"', query)
        users = [w[5:] for w in query.split() if w.startswith("from:")]
        hits = [
            t for t in reversed(self.tweets)
            if t.tweet_id not in self.hidden and all(t.author == u for u in users)
            and all(normalize_for_hash(p) in normalize_for_hash(t.text) for p in phrases)
        ]
        return hits[:limit]

    async def healthy(self) -> bool:
        return self.is_healthy

    async def close(self) -> None:
        return None

    def count(self, text: str) -> int:
        return sum(1 for t in self.tweets if t.text == text)


class FakeAccounts:
    def __init__(self, live: FakeX, sim: FakeX):
        self.live, self.sim = live, sim
        self.asked: list[bool] = []
        self.open_error: XError | None = None
        self.resets = 0

    async def get(self, simulated: bool) -> Any:
        self.asked.append(simulated)
        if not simulated and self.open_error is not None:
            raise self.open_error
        return self.sim if simulated else self.live

    async def reset_live(self) -> None:
        self.resets += 1


class Rig:
    """One poster replica over a shared in-memory bus; its state catches up from the bus like a projection."""

    def __init__(
        self,
        bus: InMemoryBus,
        clock: FixedClock,
        flags: Flags,
        live: FakeX,
        sim: FakeX,
        *,
        policy: PostingPolicy | None = None,
        name: str = "p1",
    ):
        self.bus, self.clock, self.flags_value = bus, clock, flags
        self.state = PosterState()
        self.accounts = FakeAccounts(live, sim)
        self.sleeps: list[float] = []
        self.flag_reads = 0
        self.flag_script: list[Flags] = []

        async def flags_fn() -> Flags:
            self.flag_reads += 1
            if self.flag_script:
                self.flags_value = self.flag_script.pop(0)
            return self.flags_value

        async def sleep(s: float) -> None:
            self.sleeps.append(s)

        self.poster = Poster(
            state=self.state,
            publish=self.publish,
            flags=flags_fn,
            clock=clock,
            accounts=self.accounts,
            policy=policy or PostingPolicy(retry_base_seconds=1, retry_inline_max_seconds=10),
            poster_id=name,
            catch_up=self.catch_up,
            sleep=sleep,
        )

    async def catch_up(self, _: str | None = None) -> None:
        async for item in self.bus.read(from_seq=self.state.applied_seq + 1):
            if not item.caught_up:
                self.state.apply(item)

    async def publish(self, event: Event, **kw: Any) -> int:
        seq = await self.bus.publish(event, **kw)
        await self.catch_up()
        return seq

    async def run(self, run_id: str = "r1") -> dict[str, int]:
        return await self.poster.run(Command(job="posting", run_id=run_id, requested_at=T0))


def queued(
    did: str,
    *,
    source: str = "real",
    dtype: str = "single",
    content: str | None = None,
    parts: list[str] | None = None,
    target: str | None = None,
    at: datetime = T0,
) -> DecisionQueued:
    return DecisionQueued(
        event_id=f"q-{did}",
        occurred_at=at - timedelta(minutes=30),
        decision_id=did,
        decision_type=dtype,
        content=content or f"Post number {did}: notes on shipping small changes",
        parts=parts or [],
        bandit_arm="arm-a",
        timing_arm="slot-12",
        generation_source=source,
        scheduled_at=at - timedelta(minutes=1),
        topic_cluster="t",
        angle="a",
        content_hash=f"h-{did}",
        target_tweet_id=target,
    )


async def events_of(bus: InMemoryBus, kind: type[Event], did: str | None = None) -> list[Any]:
    out = []
    async for item in bus.read():
        if isinstance(item.event, kind) and (did is None or item.event.decision_id == did):
            out.append(item.event)
    return out


@pytest.fixture
def world():
    bus = InMemoryBus()
    clock = FixedClock(T0)
    live = FakeX("alice", now=clock.now)
    sim = FakeX("xbot_shadow", now=clock.now, id_prefix=0)
    return bus, clock, live, sim


def rig(world, flags: Flags = LIVE_ON, **kw) -> Rig:
    bus, clock, live, sim = world
    return Rig(bus, clock, flags, live, sim, **kw)


# ------------------------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (Flags(MODE="live", POSTING_DISABLED=True, LIVE_POSTS=True), "posting_disabled"),
        (Flags(MODE="live", POSTING_DISABLED=False, LIVE_POSTS=False), "live_posts_off"),
        (Flags(MODE="live"), "posting_disabled"),  # the defaults
    ],
)
async def test_live_with_posting_off_posts_nothing_and_changes_no_status(world, flags, reason):
    bus, _, live, _ = world
    r = rig(world, flags)
    for did in ("a", "b", "c"):
        await bus.publish(queued(did))
    await r.catch_up()
    with capture_logs() as logs:
        counts = await r.run()
    assert counts[reason] == 3 and live.posts == [] and r.accounts.asked == []
    skips = await events_of(bus, DecisionPostSkipped)
    assert sorted((s.decision_id, s.reason) for s in skips) == [("a", reason), ("b", reason), ("c", reason)]
    assert await events_of(bus, DecisionPostStarted) == [] and await events_of(bus, DecisionPosted) == []
    assert [v.status for v in r.state.due(T0, "live", False, 5)] == ["queued"] * 3
    lines = [e["event"] for e in logs]
    for did in ("a", "b", "c"):
        assert f"[POSTING_ORCHESTRATOR] ⏭️ Skipped posting decision_id={did} reason={reason}" in lines


async def test_a_flip_to_posting_disabled_mid_run_stops_the_next_post(world):
    bus, _, live, _ = world
    r = rig(world)
    for did in ("a", "b"):
        await bus.publish(queued(did, at=T0 - timedelta(minutes=5 if did == "a" else 1)))
    await r.catch_up()
    off = Flags(MODE="live", POSTING_DISABLED=True, LIVE_POSTS=True, MAX_POSTS_PER_HOUR=100)
    r.flag_script = [LIVE_ON, LIVE_ON, off]  # run start, before "a", before "b"
    counts = await r.run()
    assert counts["posted"] == 1 and counts["posting_disabled"] == 1
    assert len(live.posts) == 1
    assert [s.decision_id for s in await events_of(bus, DecisionPostSkipped)] == ["b"]


async def test_live_success_records_the_id_read_back_from_x(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    with capture_logs() as logs:
        counts = await r.run()
    assert counts["posted"] == 1
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.tweet_id == live.tweets[0].tweet_id and not ev.simulated and not ev.recovered
    assert ev.bandit_arm == "arm-a" and ev.timing_arm == "slot-12" and ev.url.endswith(ev.tweet_id)
    (claim,) = await events_of(bus, DecisionPostStarted)
    assert claim.attempt == 1 and claim.poster_id == "p1" and not claim.simulated
    assert f"[POSTING_ORCHESTRATOR] ✅ Posted successfully: tweet_id={ev.tweet_id}" in [
        e["event"] for e in logs
    ]
    assert r.state.get("a") is None and "a" in r.state.posted_decisions
    assert (await r.run("r2"))["due"] == 0 and len(live.posts) == 1


async def test_an_id_x_did_not_give_is_never_recorded(world):
    bus, _, live, _ = world
    live.bad_id = "sim-0123456789abcdef0123"  # not an X id
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    counts = await r.run()
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.in_doubt and f.error_code == "in_doubt"
    # the tweet exists on X: reconcile finds it by its text and records X's id, never the adapter's
    (ev,) = await events_of(bus, DecisionPosted)
    assert counts["recovered"] == 1 and ev.recovered and ev.tweet_id == live.tweets[0].tweet_id
    assert ev.tweet_id != live.bad_id


# -------------------------------------------------------------------------------------------- modes


async def test_shadow_posts_synthetic_to_the_simulator_only_whatever_the_flags(world):
    bus, _, live, sim = world
    r = rig(
        world,
        Flags(
            MODE="shadow",
            POSTING_DISABLED=True,
            LIVE_POSTS=False,
            MAX_POSTS_PER_HOUR=100,
            MIN_POST_INTERVAL_MINUTES=0,
        ),
    )
    await bus.publish(queued("syn", source="synthetic"))
    await bus.publish(queued("real", source="real"))
    await r.catch_up()
    counts = await r.run()
    assert counts["posted"] == 1 and live.posts == [] and False not in r.accounts.asked
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.decision_id == "syn" and ev.simulated and ev.tweet_id == sim.tweets[0].tweet_id
    (claim,) = await events_of(bus, DecisionPostStarted)
    assert claim.simulated
    assert r.state.get("real").status == "queued"  # real content waits for live mode


async def test_live_never_posts_synthetic_content(world):
    bus, _, live, sim = world
    r = rig(world)
    await bus.publish(queued("syn", source="synthetic"))
    await r.catch_up()
    counts = await r.run()
    assert counts["due"] == 0 and live.posts == [] and sim.posts == []
    assert await events_of(bus, DecisionPostStarted) == []


# ------------------------------------------------------------------------------ limits and approval


async def test_rate_limits_hold_across_a_restart(world):
    bus, clock, live, sim = world
    flags = Flags(
        MODE="live",
        POSTING_DISABLED=False,
        LIVE_POSTS=True,
        MAX_POSTS_PER_HOUR=1,
        MIN_POST_INTERVAL_MINUTES=15,
    )
    r = rig(world, flags)
    await bus.publish(queued("a", at=T0 - timedelta(minutes=3)))
    await bus.publish(queued("b"))
    await r.catch_up()
    counts = await r.run()
    assert counts["posted"] == 1 and counts["rate_limited"] == 1
    skip = (await events_of(bus, DecisionPostSkipped))[0]
    assert skip.decision_id == "b" and skip.reason == "rate_limited" and "MAX_POSTS_PER_HOUR=1" in skip.detail
    # a new replica (a restart): state from the log alone
    r2 = Rig(bus, clock, flags, live, sim, name="p2")
    await r2.catch_up()
    clock.advance(minutes=30)
    assert (await r2.run("r2"))["rate_limited"] == 1 and len(live.posts) == 1
    assert r2.state.get("b").status == "queued"
    clock.advance(minutes=31)
    assert (await r2.run("r3"))["posted"] == 1 and len(live.posts) == 2


async def test_reply_limit_per_day(world):
    bus, _, live, _ = world
    flags = Flags(MODE="live", POSTING_DISABLED=False, LIVE_POSTS=True, REPLY_MAX_PER_DAY=1)
    r = rig(world, flags)
    await bus.publish(queued("r1", dtype="reply", target="1" * 19, at=T0 - timedelta(minutes=2)))
    await bus.publish(queued("r2", dtype="reply", target="2" * 19))
    await r.catch_up()
    counts = await r.run()
    assert counts["posted"] == 1 and counts["rate_limited"] == 1
    assert live.posts == [(live.tweets[0].text, "1" * 19)]  # in_reply_to the target


async def test_require_approval_posts_only_approved(world):
    bus, _, live, _ = world
    r = rig(
        world,
        Flags(
            MODE="live",
            POSTING_DISABLED=False,
            LIVE_POSTS=True,
            REQUIRE_APPROVAL=True,
            MAX_POSTS_PER_HOUR=10,
            MIN_POST_INTERVAL_MINUTES=0,
        ),
    )
    await bus.publish(queued("a"))
    await bus.publish(queued("b"))
    await bus.publish(DecisionApproved(event_id="ap-b", occurred_at=T0, decision_id="b"))
    await r.catch_up()
    counts = await r.run()
    assert counts["posted"] == 1
    assert [e.decision_id for e in await events_of(bus, DecisionPosted)] == ["b"]
    assert r.state.get("a").status == "queued"


async def test_a_decision_with_flagged_claims_waits_for_a_person_even_with_approval_off(world):
    """The claims gate queued it for a person (REQUIRE_APPROVAL was on); approval was switched off since."""
    bus, _, live, _ = world
    r = rig(world)  # REQUIRE_APPROVAL=false
    flagged = queued("f")
    flagged = DecisionQueued(**{**{k: getattr(flagged, k) for k in flagged.__struct_fields__},
                                "flagged_claims": ["we cut p95 latency by 42%"]})
    await bus.publish(flagged)
    await r.catch_up()
    assert (await r.run())["due"] == 0 and live.posts == []
    await bus.publish(DecisionApproved(event_id="ap-f", occurred_at=T0, decision_id="f"))
    await r.catch_up()
    assert (await r.run("r2"))["posted"] == 1


# ------------------------------------------------------------------------------------ at most once


async def test_two_replicas_racing_one_decision_post_it_once(world):
    bus, clock, live, sim = world
    await bus.publish(queued("a"))
    r1 = Rig(bus, clock, LIVE_ON, live, sim, name="p1")
    r2 = Rig(bus, clock, LIVE_ON, live, sim, name="p2")
    await r1.catch_up()
    await r2.catch_up()
    # both decided on the same view; r2 does not see r1's claim before publishing its own
    r2.catch_up = _frozen  # type: ignore[method-assign]
    r2.poster.catch_up = _frozen
    c1 = await r1.run("x1")
    c2 = await r2.run("x2")
    assert c1["posted"] == 1 and c2["claim_lost"] == 1
    assert len(live.tweets) == 1 and len(await events_of(bus, DecisionPosted)) == 1
    assert len(await events_of(bus, DecisionPostStarted)) == 1


async def _frozen(_: str | None = None) -> None:
    return None


async def test_a_view_behind_the_log_is_caught_up_only_when_its_claim_is_refused(world):
    bus, clock, live, sim = world
    await bus.publish(queued("a"))
    await bus.publish(queued("b"))
    r1 = Rig(bus, clock, LIVE_ON, live, sim, name="p1", policy=PostingPolicy(batch=1))
    r2 = Rig(bus, clock, LIVE_ON, live, sim, name="p2")
    await r2.catch_up()
    assert (await r1.run("x1"))["posted"] == 1  # "a" claimed and posted; r2's state has not seen it
    asked: list[str | None] = []

    async def lagging(did: str | None = None) -> None:
        asked.append(did)
        if did is not None:  # the run's own catch-up happened before r1 posted
            await r2.catch_up(did)

    r2.poster.catch_up = lagging
    c2 = await r2.run("x2")
    # "a": the optimistic claim is refused, the state caught up, and the decision is seen posted; "b" goes straight
    # to its claim (no catch-up of its own)
    assert asked == [None, "a"]
    assert c2["not_queued"] == 1 and c2["posted"] == 1 and c2.get("claim_lost", 0) == 0
    assert sorted(t.text for t in live.tweets) == sorted([queued("a").content, queued("b").content])
    assert len(await events_of(bus, DecisionPostStarted)) == 2 and len(await events_of(bus, DecisionPosted)) == 2


async def test_a_claim_refused_for_another_posters_open_claim_is_lost_not_reconciled(world):
    bus, clock, live, sim = world
    await bus.publish(queued("a"))
    r2 = Rig(bus, clock, LIVE_ON, live, sim, name="p2")
    await r2.catch_up()
    # p1 claimed "a" and is posting it right now; r2's view has not seen the claim
    await bus.publish(DecisionPostStarted(event_id="claim-p1", occurred_at=T0, decision_id="a", attempt=1,
                                          poster_id="p1"))

    async def lagging(did: str | None = None) -> None:
        if did is not None:
            await r2.catch_up(did)

    r2.poster.catch_up = lagging
    reads: list[int] = []
    read_timeline = live.read_own_timeline

    async def counting(limit: int = 50) -> list[TweetView]:
        reads.append(limit)
        return await read_timeline(limit)

    live.read_own_timeline = counting  # type: ignore[method-assign]
    c2 = await r2.run("x2")
    # refused, caught up, and left to p1: no timeline read, no post, nothing written
    assert c2["claim_lost"] == 1 and reads == [] and live.posts == []
    assert [type(e).__name__ for e in await events_of(bus, Event)] == ["DecisionQueued", "DecisionPostStarted"]


async def test_claim_in_doubt_waits_for_the_grace_then_posts_once(world):
    bus, clock, live, _ = world
    r = rig(world, policy=PostingPolicy(reconcile_grace_minutes=10))
    await bus.publish(queued("a"))
    # a poster claimed it and died before touching X
    await bus.publish(
        DecisionPostStarted(event_id="dead", occurred_at=T0, decision_id="a", attempt=1, poster_id="dead")
    )
    await r.catch_up()
    assert (await r.run("r1"))["in_doubt"] == 1 and live.posts == []
    clock.advance(minutes=10)
    counts = await r.run("r2")
    assert counts["posted"] == 1 and len(live.tweets) == 1
    fails = await events_of(bus, DecisionPostFailed)
    assert [(f.attempt, f.error_code, f.final) for f in fails] == [(1, "not_found_after_grace", False)]
    claims = await events_of(bus, DecisionPostStarted)
    assert [c.attempt for c in claims] == [1, 2]


async def test_claim_in_doubt_found_on_the_timeline_is_recovered_without_posting(world):
    bus, _, live, _ = world
    r = rig(world)
    q = queued("a")
    await bus.publish(q)
    await bus.publish(
        DecisionPostStarted(event_id="dead", occurred_at=T0, decision_id="a", attempt=1, poster_id="dead")
    )
    live._store(q.content, None)  # it clicked, X created the tweet, the poster died before recording it
    await r.catch_up()
    with capture_logs() as logs:
        counts = await r.run()
    assert counts["recovered"] == 1 and live.posts == []
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.recovered and ev.tweet_id == live.tweets[0].tweet_id
    assert any("Recovered" in e["event"] for e in logs)


# ------------------------------------------------------------------------------------- X's answers


async def test_226_pauses_posting_without_retry_until_the_cooldown_ends(world):
    bus, clock, live, _ = world
    r = rig(world)
    await bus.publish(queued("a", at=T0 - timedelta(minutes=2)))
    await bus.publish(queued("b"))
    await r.catch_up()
    live.fail_next(XAutomatedError("looks automated"))
    counts = await r.run()
    assert counts["cooldown"] == 2 and len(live.posts) == 1 and r.sleeps == []
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.error_code == "226" and not f.final
    assert {s.reason for s in await events_of(bus, DecisionPostSkipped)} == {"cooldown"}
    clock.advance(minutes=59)
    assert (await r.run("r2"))["cooldown"] == 2 and len(live.posts) == 1
    clock.advance(minutes=2)
    assert (await r.run("r3"))["posted"] == 2


async def test_a_timeout_backs_off_and_retries_then_posts(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    live.fail_next(XTimeout("no compose box"))
    live.fail_next(XTimeout("no compose box"))
    counts = await r.run()
    assert counts["posted"] == 1 and r.sleeps == [1, 2]  # exponential
    assert [f.error_code for f in await events_of(bus, DecisionPostFailed)] == ["timeout", "timeout"]
    assert [c.attempt for c in await events_of(bus, DecisionPostStarted)] == [1, 2, 3]
    assert len(live.tweets) == 1


async def test_429_pauses_the_account_until_xs_reset_without_spending_attempts(world):
    bus, clock, live, _ = world
    r = rig(world)
    await bus.publish(queued("a", at=T0 - timedelta(minutes=2)))
    await bus.publish(queued("b"))
    await r.catch_up()
    live.fail_next(XRateLimited("429", retry_after=300))
    counts = await r.run()
    # one request to X; the next decision is not sent into the same 429
    assert counts["x_rate_limited"] == 2 and len(live.posts) == 1 and r.sleeps == []
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.error_code == "429" and not f.final and f.paused_until == T0 + timedelta(seconds=300)
    assert r.state.get("a").failures == 0  # not one of its three attempts
    skipped = await events_of(bus, DecisionPostSkipped)
    assert [s.reason for s in skipped] == ["x_rate_limited"] and "429" in skipped[0].detail
    # the pause is in the log: a replica started now (a restart) knows it
    fresh = rig(world, name="p2")
    await fresh.catch_up()
    assert fresh.state.rate_paused_until(False) == T0 + timedelta(seconds=300)
    clock.advance(seconds=299)
    assert (await fresh.run("r2"))["x_rate_limited"] == 2 and len(live.posts) == 1
    clock.advance(seconds=1)
    assert (await fresh.run("r3"))["posted"] == 2
    assert [c.attempt for c in await events_of(bus, DecisionPostStarted) if c.decision_id == "a"] == [1, 2]


async def test_429_without_a_reset_header_backs_off_longer_each_time(world):
    bus, clock, live, _ = world
    r = rig(world, policy=PostingPolicy(rate_limit_backoff_seconds=60))
    await bus.publish(queued("a"))
    await r.catch_up()
    pauses = []
    for run in range(3):
        live.fail_next(XRateLimited("429"))
        assert (await r.run(f"r{run}"))["x_rate_limited"] == 1
        until = r.state.rate_paused_until(False)
        pauses.append((until - clock.now()).total_seconds())
        clock.advance(seconds=pauses[-1])
    assert pauses == [60, 120, 240]
    assert (await r.run("r9"))["posted"] == 1
    assert r.state.consecutive_429[False] == 0  # a post ends the run of 429s


async def test_three_failed_attempts_end_in_failed(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    for _ in range(3):
        live.fail_next(XTimeout("no compose box"))
    with capture_logs() as logs:
        counts = await r.run()
    assert counts["failed"] == 1
    fails = await events_of(bus, DecisionPostFailed)
    assert [f.final for f in fails] == [False, False, True]
    assert await events_of(bus, DecisionPosted) == [] and r.state.get("a") is None
    assert live.tweets == []
    assert any("failed for good" in e["event"] for e in logs)


async def test_a_long_backoff_is_left_to_a_later_run(world):
    bus, clock, live, _ = world
    r = rig(world, policy=PostingPolicy(retry_base_seconds=120, retry_inline_max_seconds=30))
    await bus.publish(queued("a"))
    await r.catch_up()
    live.fail_next(XTimeout("no compose box"))
    assert (await r.run())["retry_later"] == 1 and r.sleeps == []
    assert (await r.run("r2"))["due"] == 0  # backoff running
    clock.advance(seconds=120)
    assert (await r.run("r3"))["posted"] == 1


async def test_187_duplicate_is_in_doubt_and_reconciled(world):
    bus, clock, live, _ = world
    r = rig(world, policy=PostingPolicy(reconcile_grace_minutes=5))
    await bus.publish(queued("a"))
    await r.catch_up()
    live.fail_next(XDuplicate("Status is a duplicate. (187)"))
    assert (await r.run())["in_doubt"] == 1
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.error_code == "187" and f.in_doubt and not f.final
    assert (await r.run("r2"))["in_doubt"] == 1 and len(live.posts) == 1  # no retry within the grace
    clock.advance(minutes=5)
    assert (await r.run("r3"))["posted"] == 1 and len(live.tweets) == 1


async def test_clicked_without_an_id_is_in_doubt_and_recovered_from_the_timeline(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    live.fail_next(XPostInDoubt("no id read back"), created=True)
    counts = await r.run()
    assert counts["recovered"] == 1 and len(live.tweets) == 1 and len(live.posts) == 1
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.recovered and ev.tweet_id == live.tweets[0].tweet_id


async def test_logged_out_stops_posting_and_reports_unready_until_the_session_is_back(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a", at=T0 - timedelta(minutes=2)))
    await bus.publish(queued("b"))
    await r.catch_up()
    live.fail_next(XLoggedOut("login flow"))
    with capture_logs() as logs:
        counts = await r.run()
    assert counts["logged_out"] == 2 and not r.poster.ready() and len(live.posts) == 1
    assert any("logged out" in e["event"] for e in logs)
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.error_code == "logged_out" and not f.final
    live.is_healthy = False
    assert (await r.run("r2"))["logged_out"] == 2 and len(live.posts) == 1
    live.is_healthy = True
    counts = await r.run("r3")
    assert r.poster.ready() and counts["posted"] == 2 and r.accounts.resets == 2


async def test_no_session_at_all_is_logged_out_not_a_crash(world):
    bus, _, live, _ = world
    r = rig(world)
    r.accounts.open_error = XLoggedOut("no usable X session")
    await bus.publish(queued("a"))
    await r.catch_up()
    assert (await r.run())["logged_out"] == 1 and not r.poster.ready() and live.posts == []
    assert r.state.get("a").status == "queued"


async def test_a_refusal_retrying_cannot_fix_is_final_at_once(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("a"))
    await r.catch_up()
    live.fail_next(XError("Tweet needs to be a bit shorter. (186)", code="186"))
    assert (await r.run())["failed"] == 1
    (f,) = await events_of(bus, DecisionPostFailed)
    assert f.final and f.error_code == "186"


# ------------------------------------------------------------------------------- threads and replies


async def test_thread_is_a_reply_chain_with_one_event_per_part(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("t", dtype="thread", parts=["part one", "part two", "part three"]))
    await r.catch_up()
    assert (await r.run())["posted"] == 1
    ids = [t.tweet_id for t in live.tweets]
    assert live.posts == [("part one", None), ("part two", ids[0]), ("part three", ids[1])]
    parts = await events_of(bus, DecisionPartPosted)
    assert [(p.part_index, p.tweet_id) for p in parts] == list(enumerate(ids))
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.tweet_id == ids[0] and ev.thread_tweet_ids == ids


async def test_interrupted_thread_resumes_after_the_last_posted_part(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("t", dtype="thread", parts=["part one", "part two", "part three"]))
    await r.catch_up()
    live.failures = []
    orig_post = live.post
    calls = {"n": 0}

    async def flaky(text, *, in_reply_to=None):
        calls["n"] += 1
        if calls["n"] == 2:
            live.posts.append((text, in_reply_to))
            raise XTimeout("no compose box")
        return await orig_post(text, in_reply_to=in_reply_to)

    live.post = flaky  # type: ignore[method-assign]
    assert (await r.run())["posted"] == 1
    texts = [t.text for t in live.tweets]
    assert texts == ["part one", "part two", "part three"]  # part one was not posted again
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.thread_tweet_ids == [t.tweet_id for t in live.tweets]


async def test_thread_in_doubt_mid_way_recovers_the_parts_on_x_and_goes_on(world):
    bus, clock, live, _ = world
    r = rig(world, policy=PostingPolicy(reconcile_grace_minutes=1))
    await bus.publish(queued("t", dtype="thread", parts=["part one", "part two", "part three"]))
    await bus.publish(
        DecisionPostStarted(event_id="dead", occurred_at=T0, decision_id="t", attempt=1, poster_id="dead")
    )
    p0 = live._store("part one", None)
    await bus.publish(
        DecisionPartPosted(
            event_id="part_posted:t:0", occurred_at=T0, decision_id="t", part_index=0, tweet_id=p0.tweet_id
        )
    )
    live._store("part two", p0.tweet_id)  # on X, never recorded: the poster died here
    await r.catch_up()
    # part two (the part in doubt) is found, so part three was never sent: the attempt is closed (uncounted)
    # and a new claim posts part three at once, with no grace to wait
    assert (await r.run())["posted"] == 1
    assert [t.text for t in live.tweets] == ["part one", "part two", "part three"]
    assert live.posts == [("part three", live.tweets[1].tweet_id)]
    fails = await events_of(bus, DecisionPostFailed)
    assert [(f.error_code, f.in_doubt) for f in fails] == [("resumed", False)] and r.state.get("t") is None
    (ev,) = await events_of(bus, DecisionPosted)
    assert ev.thread_tweet_ids == [t.tweet_id for t in live.tweets]


async def test_reply_without_target_fails_instead_of_posting_a_plain_tweet(world):
    bus, _, live, _ = world
    r = rig(world)
    await bus.publish(queued("r", dtype="reply", target=None))
    await r.catch_up()
    assert (await r.run())["failed"] == 1 and live.posts == []


async def test_replayed_state_equals_the_live_state(world):
    bus, clock, live, sim = world
    r = rig(world)
    await bus.publish(queued("a"))
    await bus.publish(queued("t", dtype="thread", parts=["one", "two"]))
    await r.catch_up()
    live.fail_next(XRateLimited("429"))
    await r.run()
    fresh = Rig(bus, clock, LIVE_ON, live, sim, name="p9")
    await fresh.catch_up()
    assert fresh.state.decisions == r.state.decisions
    assert fresh.state.posts == r.state.posts and fresh.state.posted_tweet_ids == r.state.posted_tweet_ids
