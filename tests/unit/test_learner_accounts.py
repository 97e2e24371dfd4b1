"""One learner state per account: events go to their own account's state, models are the account's (ids,
subjects, versions), a snapshot restores in place, the trigger counts per account, a job's counts combine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.learner.bootstrap import combine
from services.learner.domain import (
    LearnerAccounts,
    LearnerState,
    Trained,
    evolve,
    evolve_accounts,
    learn,
    model_event_id,
)
from services.learner.handlers import OutcomeTrigger
from shared.bus.core import BusNames
from shared.events import Command, OutcomeRecorded
from shared.snapshots import encode_state, restore_into

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def outcome(account: str, i: int, arm: str, er: float) -> OutcomeRecorded:
    return OutcomeRecorded(
        event_id=f"o-{account}-{i}", occurred_at=T0, account=account, decision_id=f"{account}-d{i}",
        tweet_id=f"t{i}", horizon_hours=24, impressions=1000, likes=round(er * 1000), retweets=0, replies=0,
        bookmarks=0, quotes=0, er_calculated=er, simulated=True, collected_at=T0, bandit_arm=arm,
        timing_arm="hour:9", decision_type="single",
    )


def no_fit(samples, **kw):
    return [], "not fitted in this test"


def trained(state: LearnerState, account: str) -> Trained:
    r = learn(state, live=False, threshold=0.03, now=T0, fit_predictors=no_fit, account=account)
    assert isinstance(r, Trained)
    return r


def test_each_account_trains_only_on_its_own_outcomes_and_counts_its_own_versions():
    states = LearnerAccounts()
    for i in range(6):
        evolve_accounts(states, outcome("alpha", i, "ai_tools:how_to", 0.06), i + 1)
        evolve_accounts(states, outcome("beta", i, "startups:story", 0.01), i + 100)
    a, b = trained(states.of("alpha"), "alpha").model, trained(states.of("beta"), "beta").model
    assert [(x.arm, x.successes, x.failures) for x in a.arms] == [("ai_tools:how_to", 6, 0)]
    assert [(x.arm, x.successes, x.failures) for x in b.arms] == [("startups:story", 0, 6)]
    assert (a.account, a.version, a.event_id) == ("alpha", 1, "model:alpha:main:v1")
    assert (b.account, b.version, b.event_id) == ("beta", 1, "model:beta:main:v1")
    # its subject (and so its publish guard) is its own account's model history
    names = BusNames("xbot")
    assert names.history_of(a) == "xbot.evt.alpha.model.main.*" != names.history_of(b)
    evolve_accounts(states, a, 200)
    assert states.of("alpha").model_version == 1 and states.of("alpha").model_seq == 200
    assert states.of("beta").model_version == 0 and states.of("beta").model_seq == 0
    # a new outcome of beta is no new outcome of alpha's
    evolve_accounts(states, outcome("beta", 50, "startups:story", 0.01), 300)
    skip = learn(states.of("alpha"), live=False, threshold=0.03, now=T0, fit_predictors=no_fit, account="alpha")
    assert getattr(skip, "reason", None) == "no_new_outcomes"
    assert trained(states.of("beta"), "beta").model.version == 1  # beta's own count: its first model still
    assert set(states.accounts) == {"alpha", "beta"}


def test_the_default_accounts_model_keeps_its_id_and_subject():
    st = LearnerState()
    for i in range(5):
        evolve(st, outcome("default", i, "ai_tools:how_to", 0.05), i + 1)
    m = trained(st, "default").model
    assert (m.account, m.event_id) == ("default", "model:main:v1") and model_event_id(1) == "model:main:v1"
    assert BusNames("xbot").history_of(m) == "xbot.evt.model.main.*"


def test_an_event_the_learner_does_not_fold_creates_no_account_state():
    states = LearnerAccounts()
    evolve_accounts(states, object(), 1)
    assert states.accounts == {}


def test_a_snapshot_restores_in_place_keeping_the_states_handed_out():
    states = LearnerAccounts()
    for i in range(3):
        evolve_accounts(states, outcome("alpha", i, "ai_tools:how_to", 0.05), i + 1)
    codec, blob = encode_state(states)
    assert codec == "msgspec"
    fresh = LearnerAccounts()
    held_alpha, held_gone = fresh.of("alpha"), fresh.of("gone")  # handed out before the restore
    restore_into(fresh, blob, codec)
    assert fresh.of("alpha") is held_alpha and held_alpha.outcome_events == 3
    assert held_gone == LearnerState()  # not in the snapshot: emptied in place
    assert fresh.accounts["alpha"] == states.accounts["alpha"]


async def test_the_trigger_counts_each_accounts_outcomes_and_names_the_account():
    states = LearnerAccounts()
    for i in range(4):  # replayed before start: requests nothing
        evolve_accounts(states, outcome("default", i, "a:b", 0.05))
    sent: list[tuple[str, str, dict[str, str]]] = []

    async def publish_command(c: Command, msg_id: str) -> int:
        sent.append((c.run_id, msg_id, dict(c.params)))
        return len(sent)

    trig = OutcomeTrigger(every=3, state=states, publish_command=publish_command)
    task = asyncio.create_task(trig.run())
    try:
        await asyncio.sleep(0.01)
        for i in range(4, 6):  # default: 6 outcomes -> its 2nd multiple
            evolve_accounts(states, outcome("default", i, "a:b", 0.05))
            trig.notify("default")
        for i in range(5):  # beta, first seen while running: 3 -> its 1st multiple (5 is not 6)
            evolve_accounts(states, outcome("beta", i, "a:b", 0.05))
            trig.notify("beta")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert sent == [
        ("learn-outcomes-6", "learn:outcomes:2", {"outcomes": "6"}),
        ("learn-beta-outcomes-3", "learn:beta:outcomes:1", {"outcomes": "3", "account": "beta"}),
    ]


def test_a_jobs_counts_over_accounts():
    one = {"arms_trained": 1, "version": 4, "outcomes_used": 6, "predictors": 0}
    assert combine({"default": one}) == one  # one account: a one-account stack's counts
    both = combine({"alpha": one, "beta": {"_skipped": 1, "outcomes": 6}})
    assert both == {"arms_trained": 1, "version.alpha": 4, "models": 1, "outcomes_used": 6, "predictors": 0,
                    "outcomes": 6}
    assert combine({"alpha": {"_skipped": 1, "outcomes": 2}, "beta": {"_skipped": 1, "outcomes": 3}}) == {
        "outcomes": 5, "_skipped": 1}
