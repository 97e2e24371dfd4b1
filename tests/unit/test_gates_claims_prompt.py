"""The live prompt asks for nothing the claims gate would refuse: no first-hand voice, no number openers, no
invented figures for the data angle; it offers the account's facts as the only ones to state, and its languages."""

from __future__ import annotations

import pytest

from shared.learning.arms import DEFAULT_ANGLES, REPLY_ARMS
from shared.llm.port import DraftRequest
from shared.llm.prompts import ANGLE_GUIDES, build_messages

pytestmark = pytest.mark.unit


def _prompt(**kw: object) -> tuple[str, str]:
    system, user = build_messages(DraftRequest(**{"kind": "plan", "topic": "startups", "angle": "data", **kw}))  # type: ignore[arg-type]
    return system["content"], user["content"]


def test_the_prompt_no_longer_invites_invented_numbers_or_experiences() -> None:
    system, user = _prompt()
    for phrase in ("first-hand", "a number", "strong claim"):
        assert phrase not in system and phrase not in user
    assert "Never invent facts" in system and "You hold no facts about yourself" in system
    assert "no figures unless the account's facts hold them" in user  # the data angle is about measuring


def test_every_angle_and_reply_style_has_an_instruction_and_none_asks_for_figures() -> None:
    assert set(DEFAULT_ANGLES) | set(REPLY_ARMS) <= set(ANGLE_GUIDES)
    for angle in DEFAULT_ANGLES:
        _, user = _prompt(angle=angle)
        assert f"the angle '{angle.replace('_', ' ')}' ({ANGLE_GUIDES[angle]})" in user
    reply = build_messages(DraftRequest(kind="reply", topic="ai_tools", angle="resource", context="Evals?"))[1]
    assert ANGLE_GUIDES["resource"] in reply["content"] and "do not invent numbers" in reply["content"]


def test_the_facts_are_the_only_ones_offered_and_the_languages_are_named() -> None:
    facts = ("I run a two-person consultancy", "We cut our AWS bill by 38% in 2024")
    system, _ = _prompt(facts=facts, languages=("de", "en"))
    assert "You may state only these facts about yourself" in system
    assert all(f"- {f}" in system for f in facts) and "You hold no facts" not in system
    assert "German" in system and "English" in system
    reply = build_messages(DraftRequest(kind="reply", topic="t", angle="add_insight", context="x",
                                        languages=("es", "fr")))[0]["content"]
    assert "tweet's language" in reply and "Spanish" in reply and "French" in reply
