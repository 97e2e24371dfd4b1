"""What every drafting service (the planner, the replier) shares.

* ``state`` -- ``RecentDecisions``, the state they rebuild from the log (``INTERESTED``: the events it folds);
* ``schedule`` -- spacing: ``BusyTimes``, ``earliest_free``, ``hour_window``;
* ``judge`` -- judging a draft, pure: ``judge_draft(Proposal, state, GateRules, now) -> Verdict``, then the
  factories ``queued_event`` / ``skipped_event`` (``draft_event``: either); ``draft_features``, ``predicted_er``;
* ``publish`` -- a decision's first event at most once (``publish_draft``, guarded by ``FIRST_EVENT``);
* ``service`` -- the wiring they share (``wire_drafting``: state, catch-up, writers, health, service parts).

The writers and their settings live in ``shared.llm.writers``.
"""

from .judge import (
    Features,
    GateRules,
    Predictor,
    Proposal,
    Verdict,
    draft_event,
    draft_features,
    judge_draft,
    predicted_er,
    queued_event,
    skipped_event,
)
from .publish import publish_draft
from .schedule import BusyTimes, earliest_free, hour_window
from .service import Drafting, wire_drafting
from .state import INTERESTED, AccountDrafts, DecisionInfo, RecentDecisions, replay

__all__ = [
    "INTERESTED",
    "AccountDrafts",
    "BusyTimes",
    "DecisionInfo",
    "Drafting",
    "Features",
    "GateRules",
    "Predictor",
    "Proposal",
    "RecentDecisions",
    "Verdict",
    "draft_event",
    "draft_features",
    "earliest_free",
    "hour_window",
    "judge_draft",
    "predicted_er",
    "publish_draft",
    "queued_event",
    "replay",
    "skipped_event",
    "wire_drafting",
]
