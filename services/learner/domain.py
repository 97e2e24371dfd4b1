"""The learner's pure core: outcomes in, one honest model out.

State is a projection of the log: ``decision.queued`` (features, topic, angle, type, scheduled hour, quality
score), ``decision.posted`` (the hour the post went out, simulated or not), ``outcome.recorded`` and
``model.updated`` (the last version, so a restart continues the count). Nothing here does I/O.

**One observation per decision.** A decision may have outcomes at several horizons (+1 h, +24 h). It counts
once, with the *latest horizon available*: the +24 h read is closest to what the post eventually earned;
until it arrives the +1 h read stands in, and it is replaced when the later one comes. An outcome whose ER is
unknown (0 impressions) is left out, neither success nor failure.

**Which outcomes count.** Live mode: only ``simulated=false`` outcomes, ever (DESIGN.md promise 3). Shadow
mode: every outcome (a real one is real data; ``simulated_used`` in the model says whether any simulated
outcome went in, so a live consumer can refuse such a model).

**Success** (Thompson arms): ``ER > SUCCESS_ER_THRESHOLD`` (flag, default 0.03; see
``shared.learning.bandits``). Scopes: ``content`` for single / thread decisions, ``reply`` for replies.
**Timing**: UCB1 slot statistics over the 24 UTC hours from content decisions (a reply's hour follows its
target, not our choice), hour = the hour the post went out (else its timing arm, else its scheduled hour),
each ER adjusted for its arm's effect (``bandits.arm_adjusted_slot_observations``).

**One model per account** (DESIGN.md promise 8). ``LearnerState`` is one account's state; the service holds a
``LearnerAccounts`` (one ``LearnerState`` per account, each evolved only from its own account's events), so an
account's arms are trained on its own outcomes only. Its models carry its account (their subject is its own,
so the expected-sequence guard is over its own model history), and its versions count 1..n on their own. The
default account's model ids are those of a one-account stack (``model:main:v<n>``); another's name it
(``model:<account>:main:v<n>``), since the stream's duplicate window spans every account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from shared.events import (
    DEFAULT_ACCOUNT,
    TYPE_NAMES,
    ArmState,
    DecisionPosted,
    DecisionQueued,
    ModelUpdated,
    OutcomeRecorded,
    PredictorState,
    SlotState,
)
from shared.learning import bandits
from shared.learning.arms import CONTENT_SCOPE, REPLY_SCOPE, hour_of_timing_arm
from shared.snapshots import restore_per_account

MIN_OUTCOMES = 5
MODEL_SCOPE = "main"
INSUFFICIENT_REAL = f"[LEARN_JOB] ⚠️ Training skipped: insufficient real outcomes (need {MIN_OUTCOMES})"
INSUFFICIENT_ANY = f"[LEARN_JOB] ⚠️ Training skipped: insufficient outcomes (need {MIN_OUTCOMES})"



class DecisionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the planner knew when it queued the decision: the predictors' inputs."""

    decision_id: str
    decision_type: str
    bandit_arm: str
    timing_arm: str | None
    topic: str
    angle: str
    scheduled_hour: int | None
    quality_score: float | None
    n_parts: int
    features: dict[str, Any]


class OutcomeObs(msgspec.Struct, frozen=True, kw_only=True):
    horizon_hours: int | float  # a fraction of an hour is a float (0.25: +15 min)
    er: float | None
    simulated: bool
    bandit_arm: str
    decision_type: str
    timing_arm: str | None


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """One decision as the learner trains on it."""

    decision_id: str
    decision_type: str
    scope: str
    arm: str
    hour: int | None
    er: float
    success: bool
    simulated: bool
    horizon_hours: int | float
    info: DecisionInfo | None


@dataclass
class LearnerState:
    decisions: dict[str, DecisionInfo] = field(default_factory=dict)
    posted_hour: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[int | float, OutcomeObs]] = field(default_factory=dict)
    model_version: int = 0
    model_seq: int = 0  # stream sequence of the last model.updated (for the expected-sequence publish)
    last_model: ModelUpdated | None = None
    outcome_events: int = 0  # outcome.recorded events applied (first sighting of each (decision, horizon))
    outcomes_since_model: int = 0


def _hour(at: datetime | None) -> int | None:
    return None if at is None else at.hour


def _queued(state: LearnerState, event: DecisionQueued, seq: int) -> None:
    state.decisions[event.decision_id] = DecisionInfo(
        decision_id=event.decision_id,
        decision_type=event.decision_type,
        bandit_arm=event.bandit_arm,
        timing_arm=event.timing_arm,
        topic=event.topic_cluster,
        angle=event.angle,
        scheduled_hour=_hour(event.scheduled_at),
        quality_score=event.quality_score,
        n_parts=max(1, len(event.parts)),
        features=dict(event.features),
    )


def _posted(state: LearnerState, event: DecisionPosted, seq: int) -> None:
    state.posted_hour[event.decision_id] = event.posted_at.hour


def _outcome(state: LearnerState, event: OutcomeRecorded, seq: int) -> None:
    by_h = state.outcomes.setdefault(event.decision_id, {})
    h = event.horizon_hours  # not int(): +0.25 h and +0.5 h are two horizons
    if h not in by_h:
        state.outcome_events += 1
        state.outcomes_since_model += 1
    by_h[h] = OutcomeObs(
        horizon_hours=h,
        er=event.er_calculated,
        simulated=event.simulated,
        bandit_arm=event.bandit_arm,
        decision_type=event.decision_type,
        timing_arm=event.timing_arm,
    )


def _model(state: LearnerState, event: ModelUpdated, seq: int) -> None:
    if event.scope == MODEL_SCOPE:
        state.model_seq = max(state.model_seq, seq)  # the model subject's last sequence, whatever it holds
        if event.version >= state.model_version:
            state.model_version = event.version
            state.last_model = event
            state.outcomes_since_model = 0


#: event type -> how it changes the state
_EVOLVE: dict[type, Callable[[LearnerState, Any, int], None]] = {
    DecisionQueued: _queued, DecisionPosted: _posted, OutcomeRecorded: _outcome, ModelUpdated: _model,
}
#: the event types the projection decodes: those ``evolve`` folds (derived from its dispatch)
INTERESTED = frozenset(name for name, t in TYPE_NAMES.items() if t in _EVOLVE)


def evolve(state: LearnerState, event: object, seq: int = 0) -> LearnerState:
    """Apply one event in log order; applying the same event twice changes nothing the second time."""
    step = _EVOLVE.get(type(event))
    if step is not None:
        step(state, event, seq)
    return state


@dataclass
class LearnerAccounts:
    """One ``LearnerState`` per account, each evolved only from its own account's events (a dataclass of plain
    states, so the runtime snapshots it like any state)."""

    accounts: dict[str, LearnerState] = field(default_factory=dict)

    def of(self, account: str) -> LearnerState:
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = LearnerState()
        return state

    def restore_attributes(self, loaded: dict[str, Any]) -> None:
        """A snapshot's attributes, restored in place (``shared.snapshots.restore_per_account``)."""
        restore_per_account(self.accounts, loaded["accounts"], LearnerState)

def evolve_accounts(states: LearnerAccounts, event: object, seq: int = 0) -> LearnerAccounts:
    """Apply one event to its own account's state (an event the learner does not fold creates no state)."""
    if type(event) in _EVOLVE:
        evolve(states.of(getattr(event, "account", DEFAULT_ACCOUNT)), event, seq)
    return states


def model_event_id(version: int, account: str = DEFAULT_ACCOUNT) -> str:
    if account == DEFAULT_ACCOUNT:
        return f"model:{MODEL_SCOPE}:v{version}"
    return f"model:{account}:{MODEL_SCOPE}:v{version}"


def scope_of(decision_type: str) -> str:
    return REPLY_SCOPE if decision_type == "reply" else CONTENT_SCOPE


def _sample_hour(state: LearnerState, decision_id: str, obs: OutcomeObs, info: DecisionInfo | None) -> int | None:
    if decision_id in state.posted_hour:
        return state.posted_hour[decision_id]
    for text in (obs.timing_arm, info.timing_arm if info else None):
        if text:
            try:
                return hour_of_timing_arm(text)
            except ValueError:
                pass
    return info.scheduled_hour if info else None


def training_samples(state: LearnerState, *, live: bool, threshold: float) -> list[Sample]:
    """One sample per decision (latest horizon with a known ER), live mode: real outcomes only."""
    out: list[Sample] = []
    for decision_id in sorted(state.outcomes):
        by_h = state.outcomes[decision_id]
        usable = [o for o in by_h.values() if o.er is not None and not (live and o.simulated)]
        if not usable:
            continue
        obs = max(usable, key=lambda o: o.horizon_hours)
        info = state.decisions.get(decision_id)
        dtype = obs.decision_type or (info.decision_type if info else "")
        arm = obs.bandit_arm or (info.bandit_arm if info else "")
        if not arm:
            continue
        er = float(obs.er)  # type: ignore[arg-type]
        out.append(
            Sample(
                decision_id=decision_id,
                decision_type=dtype,
                scope=scope_of(dtype),
                arm=arm,
                hour=_sample_hour(state, decision_id, obs, info),
                er=er,
                success=bandits.success_of(er, threshold),
                simulated=obs.simulated,
                horizon_hours=obs.horizon_hours,
                info=info,
            )
        )
    return out


def arm_states(samples: list[Sample]) -> list[ArmState]:
    posts = bandits.beta_posteriors((s.arm, s.scope, s.success) for s in samples)
    return [
        ArmState(arm=p.arm, scope=p.scope, alpha=p.alpha, beta=p.beta, successes=p.successes, failures=p.failures)
        for _, p in sorted(posts.items())
    ]


def slot_states(samples: list[Sample]) -> list[SlotState]:
    timed = [s for s in samples if s.scope == CONTENT_SCOPE and s.hour is not None]
    # each ER minus its arm's fitted effect, so an hour is not credited with the arms it happened to carry
    obs = bandits.arm_adjusted_slot_observations([(s.arm, int(s.hour), s.er) for s in timed])  # type: ignore[arg-type]
    return [SlotState(hour=st.hour, n=st.n, mean_er=st.mean_er) for st in bandits.slot_stats(obs)]


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # insufficient_outcomes | no_new_outcomes
    message: str
    outcomes: int


class Trained(msgspec.Struct, frozen=True, kw_only=True):
    model: ModelUpdated
    samples: int


def learn(
    state: LearnerState,
    *,
    live: bool,
    threshold: float,
    now: datetime,
    fit_predictors: Any,
    force: bool = False,
    correlation_id: str | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> Skip | Trained:
    """Decide one learning run: a ``Skip`` (publish nothing) or the next ``model.updated``.

    ``fit_predictors(samples, threshold=, seed=) -> (list[PredictorState], skipped_reason | None)`` is the
    predictor trainer (``services.learner.predictors.fit_predictors``), passed in so this function stays a
    plain decision. Its split is seeded by the version, so a replay of the same log fits the same model.
    ``state`` is ``account``'s own, and the model is that account's.
    """
    samples = training_samples(state, live=live, threshold=threshold)
    if len(samples) < MIN_OUTCOMES:
        return Skip(
            reason="insufficient_outcomes", message=INSUFFICIENT_REAL if live else INSUFFICIENT_ANY,
            outcomes=len(samples),
        )
    last = state.last_model
    simulated_used = any(s.simulated for s in samples)
    if (
        not force
        and last is not None
        and state.outcomes_since_model == 0
        and last.success_er_threshold == threshold
        and last.simulated_used == simulated_used
        and last.outcomes_used == len(samples)
    ):
        return Skip(
            reason="no_new_outcomes",
            message=f"[LEARN_JOB] ⏭️ Training skipped: no new outcomes since v{last.version}",
            outcomes=len(samples),
        )
    version = state.model_version + 1
    predictors, skipped_reason = fit_predictors(samples, threshold=threshold, seed=version)
    model = ModelUpdated(
        event_id=model_event_id(version, account),
        occurred_at=now,
        correlation_id=correlation_id,
        account=account,
        scope=MODEL_SCOPE,
        version=version,
        arms=arm_states(samples),
        slots=slot_states(samples),
        predictors=list(predictors),
        predictor_skipped_reason=skipped_reason,
        outcomes_used=len(samples),
        simulated_used=simulated_used,
        success_er_threshold=threshold,
    )
    return Trained(model=model, samples=len(samples))


def learned_line(model: ModelUpdated) -> str:
    return f"[LEARN_JOB] ✅ arms_trained={len(model.arms)}, coeffs_updated=v{model.version}"


__all__ = [
    "INSUFFICIENT_ANY", "INSUFFICIENT_REAL", "INTERESTED", "MIN_OUTCOMES", "MODEL_SCOPE", "DecisionInfo",
    "LearnerAccounts", "LearnerState", "OutcomeObs", "PredictorState", "Sample", "Skip", "Trained", "arm_states",
    "evolve", "evolve_accounts", "learn", "learned_line", "model_event_id", "scope_of", "slot_states",
    "training_samples",
]
