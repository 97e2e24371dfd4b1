"""The collect job with an in-memory X account (a fake, not a mock) and the simulated audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from services.collector.config import CollectorSettings
from services.collector.domain import CollectorState, evolve
from services.collector.handlers import CollectorDeps, SimulatedMetrics, collect
from shared.clock import FixedClock
from shared.config import load_settings
from shared.events import Command, DecisionPosted, OutcomeCollectionFailed, OutcomeRecorded
from shared.flags import Flags
from shared.sim.audience import Audience
from shared.x.port import TweetMetrics, XError, XLoggedOut, XPageMismatch, XUnavailable

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OURS = "1800000000000000001"
THEIRS = "1800000000000000002"
GONE = "1800000000000000003"


class FakeX:
    """An X account whose status pages are a dict; errors are raised as the adapter would."""

    def __init__(self, pages: dict[str, TweetMetrics | XError], username: str = "alice"):
        self.pages, self._username = pages, username
        self.reads: list[tuple[str, str]] = []
        self.closed = 0

    @property
    def username(self) -> str:
        return self._username

    async def read_status_metrics(self, tweet_id: str, *, expected_author: str) -> TweetMetrics:
        self.reads.append((tweet_id, expected_author))
        page = self.pages.get(tweet_id, XUnavailable(f"tweet {tweet_id} does not exist"))
        if isinstance(page, XError):
            raise page
        return page

    async def close(self) -> None:
        self.closed += 1


def posted(decision_id: str, tweet_id: str, *, simulated: bool = False) -> DecisionPosted:
    return DecisionPosted(
        event_id=f"p-{decision_id}", occurred_at=T0, decision_id=decision_id, tweet_id=tweet_id, posted_at=T0,
        decision_type="single", bandit_arm="ai_tools:how_to", timing_arm="hour:9", simulated=simulated,
    )


class Harness:
    def __init__(self, *posts: DecisionPosted, flags: Flags, x: FakeX | None = None, **env: str):
        self.state = CollectorState()
        for p in posts:
            evolve(self.state, p)
        self.published: list[object] = []
        self.clock = FixedClock(T0 + timedelta(hours=2))
        self.x = x
        self.settings = load_settings(CollectorSettings, {"X_USERNAME": "alice", "COLLECT_MAX_ATTEMPTS": "2", **env})
        self.flags = flags

        async def publish(ev: object) -> int:
            self.published.append(ev)
            evolve(self.state, ev)
            return len(self.published)

        async def open_x() -> FakeX:
            assert self.x is not None
            return self.x

        self.deps = CollectorDeps(
            state=self.state, settings=self.settings, flags=lambda: self.flags, clock=self.clock, publish=publish,
            open_x=open_x if x is not None else None, simulator=SimulatedMetrics(Audience(7)),
        )

    async def run(self) -> dict[str, int]:
        return await collect(Command(job="collect", run_id=f"r{len(self.published)}", requested_at=T0), self.deps)

    def of(self, cls: type) -> list:
        return [e for e in self.published if isinstance(e, cls)]


LIVE = Flags(MODE="live", REAL_METRICS_ENABLED=True)


async def test_live_skips_when_real_metrics_disabled():
    x = FakeX({})
    h = Harness(posted("d1", OURS), flags=Flags(MODE="live", REAL_METRICS_ENABLED=False), x=x)
    with capture_logs() as logs:
        counts = await h.run()
    assert counts == {"_skipped": 1}
    assert h.published == [] and x.reads == []
    assert any("Skipped" in entry["event"] and "REAL_METRICS_ENABLED=false" in entry["event"] for entry in logs)


async def test_live_records_a_real_outcome_of_our_tweet():
    m = TweetMetrics(tweet_id=OURS, author="alice", impressions=2000, likes=40, retweets=10, replies=5,
                     bookmarks=4, quotes=1)
    x = FakeX({OURS: m})
    h = Harness(posted("d1", OURS), flags=LIVE, x=x)
    with capture_logs() as logs:
        counts = await h.run()
    assert counts == {"recorded": 1}
    (ev,) = h.of(OutcomeRecorded)
    assert ev.event_id == "outcome:d1:1" and ev.simulated is False and ev.horizon_hours == 1
    assert ev.er_calculated == pytest.approx(60 / 2000) and ev.impressions == 2000
    assert x.reads == [(OURS, "alice")] and x.closed == 1
    assert "[ANALYTICS_COLLECTOR] ✅ Stored real outcome decision_id=d1 ER=0.0300" in [e["event"] for e in logs]
    assert await h.run() == {}  # nothing owed any more until +24 h


async def test_live_rejects_another_accounts_page_even_if_the_adapter_did_not():
    m = TweetMetrics(tweet_id=THEIRS, author="bob", impressions=10, likes=1)
    h = Harness(posted("d1", THEIRS), flags=LIVE, x=FakeX({THEIRS: m}))
    assert await h.run() == {"failed": 1}
    assert h.of(OutcomeRecorded) == []
    (f,) = h.of(OutcomeCollectionFailed)
    assert f.final and "page_mismatch" in f.reason and "@bob" in f.reason
    assert await h.run() == {}  # final: never tried again


async def test_live_page_mismatch_from_adapter_is_final():
    h = Harness(posted("d1", THEIRS), flags=LIVE, x=FakeX({THEIRS: XPageMismatch("tweet is by @bob")}))
    assert await h.run() == {"failed": 1}
    (f,) = h.of(OutcomeCollectionFailed)
    assert f.final and f.reason.startswith("page_mismatch")


async def test_live_unreadable_page_is_retried_then_final_and_never_fabricated():
    x = FakeX({})
    h = Harness(posted("d1", GONE), flags=LIVE, x=x)
    assert await h.run() == {"failed": 1}
    assert await h.run() == {"failed": 1}
    assert await h.run() == {}
    fails = h.of(OutcomeCollectionFailed)
    assert [(f.attempt, f.final) for f in fails] == [(1, False), (2, True)]
    assert all(f.reason.startswith("unavailable") for f in fails)
    assert h.of(OutcomeRecorded) == []


async def test_live_logged_out_stops_the_run_without_charging_attempts():
    x = FakeX({OURS: XLoggedOut("sent to /i/flow/login")})
    h = Harness(posted("d1", OURS), posted("d2", OURS), flags=LIVE, x=x)
    assert await h.run() == {"aborted": 1}
    assert h.published == [] and len(x.reads) == 1 and x.closed == 1


async def test_live_ignores_simulated_posts():
    x = FakeX({})
    h = Harness(posted("sim", "sim-123", simulated=True), flags=LIVE, x=x)
    assert await h.run() == {}
    assert x.reads == [] and h.published == []


async def test_live_needs_a_username():
    h = Harness(posted("d1", OURS), flags=LIVE, x=FakeX({}), X_USERNAME="")
    assert await h.run() == {"_skipped": 1}


async def test_shadow_records_simulated_outcomes_from_the_audience_at_each_horizon():
    h = Harness(posted("s1", "sim-1", simulated=True), posted("real", OURS), flags=Flags(MODE="shadow"))
    assert await h.run() == {"recorded": 1}
    h.clock.advance(hours=30)
    assert await h.run() == {"recorded": 1}
    one, day = h.of(OutcomeRecorded)
    assert (one.decision_id, one.horizon_hours, one.simulated) == ("s1", 1, True)
    assert day.horizon_hours == 24 and day.impressions >= one.impressions
    truth = Audience(7).metrics("s1", "ai_tools:how_to", 9, "single", 24)
    assert day.impressions == truth["impressions"] and day.likes == truth["likes"]
    assert all(e.decision_id != "real" for e in h.of(OutcomeRecorded))  # a real tweet never gets a made-up outcome


async def test_shadow_collects_a_first_read_at_a_quarter_hour():
    h = Harness(posted("s1", "sim-1", simulated=True), flags=Flags(MODE="shadow"),
                COLLECT_HORIZONS_HOURS="0.25,1")
    h.clock.set(T0 + timedelta(minutes=20))
    assert await h.run() == {"recorded": 1}
    (quarter,) = h.of(OutcomeRecorded)
    assert (quarter.horizon_hours, quarter.event_id) == (0.25, "outcome:s1:0.25")
    truth = Audience(7).metrics("s1", "ai_tools:how_to", 9, "single", 0.25)
    assert quarter.impressions == truth["impressions"]  # the audience at +15 min exactly, not at +20 min
    h.clock.advance(hours=1)
    assert await h.run() == {"recorded": 1}
    assert [e.horizon_hours for e in h.of(OutcomeRecorded)] == [0.25, 1]
    assert h.of(OutcomeRecorded)[1].impressions >= quarter.impressions
