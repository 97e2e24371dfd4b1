"""The collect job over several accounts (in-memory fakes): each account's posts with its own session and
audience, outcomes in the posted decision's account, one account's trouble never stopping another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.collector.bootstrap import audience_of
from services.collector.config import CollectorSettings
from services.collector.domain import CollectorState, due_outcomes, evolve, outcome_event_id
from services.collector.handlers import AccountCollect, CollectorDeps, SimulatedMetrics, collect
from shared.accounts import AccountProfile
from shared.clock import FixedClock
from shared.config import load_settings
from shared.events import Command, DecisionPosted, OutcomeCollectionFailed, OutcomeRecorded
from shared.flags import Flags
from shared.sim.audience import Audience
from shared.x.factory import account_settings
from shared.x.port import TweetMetrics, XLoggedOut, XRateLimited
from tests.unit.test_collector_handlers import FakeX

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LIVE = Flags(MODE="live", REAL_METRICS_ENABLED=True)
SHADOW = Flags(MODE="shadow")


def posted(account: str, i: int, tweet_id: str, *, simulated: bool) -> DecisionPosted:
    return DecisionPosted(
        event_id=f"p-{account}-{i}", occurred_at=T0, account=account, decision_id=f"{account}-d{i}",
        tweet_id=tweet_id, posted_at=T0, decision_type="single", bandit_arm="ai_tools:how_to",
        timing_arm="hour:9", simulated=simulated,
    )


def metrics(tweet_id: str, author: str) -> TweetMetrics:
    return TweetMetrics(tweet_id=tweet_id, author=author, impressions=1000, likes=30, retweets=0, replies=0,
                        bookmarks=0, quotes=0)


class Harness:
    def __init__(self, *posts: DecisionPosted, accounts: dict[str, AccountCollect]):
        self.state = CollectorState()
        for p in posts:
            evolve(self.state, p)
        self.published: list[object] = []
        self.accounts = accounts
        s = load_settings(CollectorSettings, {"COLLECT_MAX_ATTEMPTS": "2"})

        async def publish(ev: object) -> int:
            self.published.append(ev)
            evolve(self.state, ev)
            return len(self.published)

        def for_cmd(cmd: Command) -> list[AccountCollect]:
            wanted = cmd.params.get("account")
            return [a for a in self.accounts.values() if not wanted or a.account == wanted]

        self.deps = CollectorDeps(state=self.state, settings=s, flags=lambda: SHADOW,
                                  clock=FixedClock(T0 + timedelta(hours=2)), publish=publish, open_x=None,
                                  simulator=None, accounts=for_cmd)

    async def run(self, **params: str) -> dict[str, int]:
        return await collect(Command(job="collect", run_id=f"r{len(self.published)}", requested_at=T0,
                                     params=params), self.deps)

    def of(self, cls: type) -> list:
        return [e for e in self.published if isinstance(e, cls)]


def live_account(account: str, username: str, opener) -> AccountCollect:
    s = load_settings(CollectorSettings, {"X_USERNAME": username})
    return AccountCollect(account=account, settings=s, flags=lambda: LIVE, open_x=opener, simulator=None)


@pytest.mark.parametrize("trouble", [XLoggedOut("session expired"), RuntimeError("chromium would not start")])
async def test_an_account_whose_browser_cannot_open_does_not_stop_the_next(trouble: Exception):
    async def broken() -> FakeX:
        raise trouble

    ok = FakeX({"t-b0": metrics("t-b0", "bob"), "t-b1": metrics("t-b1", "bob")}, username="bob")

    async def opener() -> FakeX:
        return ok

    h = Harness(posted("alpha", 0, "t-a0", simulated=False), posted("beta", 0, "t-b0", simulated=False),
                posted("beta", 1, "t-b1", simulated=False),
                accounts={"alpha": live_account("alpha", "alice", broken),
                          "beta": live_account("beta", "bob", opener)})
    assert await h.run() == {"aborted": 1, "recorded": 2}
    assert [(e.account, e.decision_id) for e in h.of(OutcomeRecorded)] == [("beta", "beta-d0"), ("beta", "beta-d1")]
    assert ok.reads == [("t-b0", "bob"), ("t-b1", "bob")]  # beta's pages, as beta
    assert h.of(OutcomeCollectionFailed) == []  # alpha's decision is not charged an attempt
    assert [d.posted.decision_id for d in due_outcomes(h.state, T0 + timedelta(hours=2), (1,), simulated=False,
                                                        max_attempts=2)] == ["alpha-d0"]


async def test_a_rate_limited_account_stops_its_own_reads_only():
    a = FakeX({"t-a0": XRateLimited("429"), "t-a1": metrics("t-a1", "alice")}, username="alice")
    b = FakeX({"t-b0": metrics("t-b0", "bob")}, username="bob")

    async def open_a() -> FakeX:
        return a

    async def open_b() -> FakeX:
        return b

    h = Harness(posted("alpha", 0, "t-a0", simulated=False), posted("alpha", 1, "t-a1", simulated=False),
                posted("beta", 0, "t-b0", simulated=False),
                accounts={"alpha": live_account("alpha", "alice", open_a),
                          "beta": live_account("beta", "bob", open_b)})
    assert await h.run() == {"aborted": 1, "recorded": 1}
    assert a.reads == [("t-a0", "alice")] and a.closed == 1 and b.closed == 1
    (ev,) = h.of(OutcomeRecorded)
    assert (ev.account, ev.decision_id) == ("beta", "beta-d0")


async def test_shadow_outcomes_are_each_accounts_own_audiences_and_params_account_runs_one():
    accounts = {
        acc: AccountCollect(account=acc, settings=load_settings(CollectorSettings, {}), flags=lambda: SHADOW,
                            open_x=None, simulator=SimulatedMetrics(Audience(seed)))
        for acc, seed in (("alpha", 11), ("beta", 12))
    }
    h = Harness(*(posted(acc, i, f"sim-{acc}-{i}", simulated=True) for acc in ("alpha", "beta") for i in range(5)),
                accounts=accounts)
    assert await h.run(account="beta") == {"recorded": 5}
    assert {e.account for e in h.of(OutcomeRecorded)} == {"beta"}
    assert await h.run() == {"recorded": 5}
    out = h.of(OutcomeRecorded)
    for e in out:
        seed = 11 if e.account == "alpha" else 12
        assert e.likes == Audience(seed).metrics(e.decision_id, e.bandit_arm, 9, "single", 1)["likes"]
        assert e.event_id == outcome_event_id(e.decision_id, 1, e.account) == f"outcome:{e.account}:{e.decision_id}:1"
    assert await h.run() == {}  # nothing due: nothing skipped either


def test_the_default_account_of_the_environment_keeps_todays_audience():
    s = load_settings(CollectorSettings, {"SHADOW_SEED": "42"})
    default = AccountProfile(id="default", topics=("ai_tools",))
    sim = audience_of(s, s, default, builtin=True)
    assert sim.audience.seed == 42 and sim.audience.content_arms == Audience(42).content_arms
    other = AccountProfile(id="alpha", topics=("ai_tools", "startups"), angles=("how_to", "story"))
    xs = account_settings(s, other, {}, builtin=False)
    sim = audience_of(s, xs, other, builtin=False)
    assert sim.audience.seed == xs.SHADOW_SEED != 42
    assert sim.audience.content_arms == other.content_arms()
    assert outcome_event_id("d1", 1) == "outcome:d1:1"  # the default account's ids are unchanged
