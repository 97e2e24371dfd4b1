"""Judging a draft (``shared.drafting.judge``) and the claims gate: a real draft with an unsupported claim is
skipped (or, with approval on, queued with the claim flagged); synthetic drafts are not checked; the settings
build the policy and a bad one stops the service with one line naming it; old events without
``flagged_claims`` still decode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from services.planner.config import PlannerSettings
from services.replier.config import ReplierSettings
from shared.config import load_settings
from shared.drafting import RecentDecisions
from shared.errors import ConfigError
from shared.events import DecisionQueued, DecisionSkipped, decode, encode, float32_bytes
from shared.gates import ClaimPolicy

from .test_drafting_judge import judge as judge_draft_at_t0

pytestmark = pytest.mark.unit

CLAIM = "We cut our cloud bill by 38% in one quarter."
DRAFT = f"Why do cloud bills grow quietly? {CLAIM} Tag every resource before you optimise anything."
CLEAN = "Why do cloud bills grow quietly? Nobody owns them. Tag every resource before you optimise anything."


def judge(text: str, *, source: str = "real", claims: ClaimPolicy | None = None, flag: bool = False,
          decision_type: str = "single") -> Any:
    emb = float32_bytes(np.random.default_rng(3).standard_normal(16).astype(np.float32))
    return judge_draft_at_t0(RecentDecisions.empty(), text, did="d1", emb=emb, source=source, live=source == "real",
                             claims=claims, flag=flag, decision_type=decision_type)


def test_a_real_draft_with_an_unsupported_claim_is_skipped_with_the_claim() -> None:
    event, outcome = judge(DRAFT)
    assert isinstance(event, DecisionSkipped)
    assert (event.gate, event.skip_reason, event.score) == ("claims", "unsupported_claim", 0.0)
    assert event.flagged_claims == [CLAIM] and event.scheduled_at is None
    assert outcome.blocked_by is not None and outcome.blocked_by.details["unsupported"] == [CLAIM]


def test_a_real_draft_the_facts_hold_is_queued_without_flags() -> None:
    facts = ClaimPolicy(facts=("We cut our cloud bill by 38% in Q3 2024",))
    event, outcome = judge(DRAFT, claims=facts)
    assert isinstance(event, DecisionQueued) and event.flagged_claims == []
    claims = outcome.result("claims")
    assert claims is not None and claims.reason == "supported"
    clean, _ = judge(CLEAN)
    assert isinstance(clean, DecisionQueued) and clean.flagged_claims == []


def test_with_approval_on_the_draft_is_queued_with_the_claim_flagged() -> None:
    event, outcome = judge(DRAFT, flag=True)
    assert isinstance(event, DecisionQueued) and event.flagged_claims == [CLAIM]
    assert [r.gate for r in outcome.results] == ["quality", "claims", "uniqueness", "rotation"]
    assert decode(encode(event)) == event


def test_a_synthetic_draft_is_not_claims_checked() -> None:
    event, outcome = judge(DRAFT, source="synthetic")
    assert isinstance(event, DecisionQueued) and event.flagged_claims == []
    assert outcome.result("claims") is None


def test_an_event_written_before_flagged_claims_decodes_with_none() -> None:
    event, _ = judge(CLEAN)
    raw = encode(event).replace(b',"flagged_claims":[]', b"")
    assert b"flagged_claims" not in raw
    assert decode(raw).flagged_claims == []


@pytest.mark.parametrize("cls", [PlannerSettings, ReplierSettings])
def test_settings_build_the_policy_and_a_bad_value_names_the_variable(cls: type) -> None:
    s = load_settings(cls, {"ACCOUNT_FACTS": '["I run a 3-person agency"]', "ACCOUNT_LANGUAGES": "es,en"})
    assert s.claim_policy() == ClaimPolicy(facts=("I run a 3-person agency",), languages=("es", "en"))
    assert load_settings(cls, {}).claim_policy() == ClaimPolicy()
    for env, name in (({"ACCOUNT_FACTS": "I run an agency"}, "ACCOUNT_FACTS"),
                      ({"ACCOUNT_FACTS": '["ok", 3]'}, "ACCOUNT_FACTS"),
                      ({"ACCOUNT_LANGUAGES": "en,it"}, "ACCOUNT_LANGUAGES")):
        with pytest.raises(ConfigError) as err:
            load_settings(cls, env)
        assert str(err.value).startswith(f"{name} is invalid") and "\n" not in str(err.value)


@pytest.mark.integration
def test_a_bad_account_setting_stops_the_service_at_start_with_one_line() -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "NATS_URL": "nats://127.0.0.1:1", "ACCOUNT_LANGUAGES": "en,klingon"}
    r = subprocess.run([sys.executable, "-m", "services.replier"], env=env, capture_output=True, text=True,
                       timeout=60)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "configuration error" in lines[0] and "ACCOUNT_LANGUAGES" in lines[0] and "klingon" in lines[0]
