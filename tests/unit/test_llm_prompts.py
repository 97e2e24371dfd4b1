"""The prompt we send and the strict parsing of the JSON draft we get back."""

import json

import pytest

from shared.llm.port import DraftRequest
from shared.llm.prompts import (
    DRAFT_SCHEMA,
    DraftParseError,
    build_messages,
    estimate_prompt_tokens,
    parse_draft,
    response_format,
)

pytestmark = pytest.mark.unit

SINGLE = DraftRequest(kind="plan", topic="llm_engineering", angle="contrarian", seed=4)
THREAD = DraftRequest(kind="plan", topic="startups", angle="story", decision_type="thread", seed=5)
REPLY = DraftRequest(kind="reply", topic="ai_tools", angle="ask_question", context="Agents are overhyped.", seed=6)


def test_prompts_name_the_request() -> None:
    single, thread, reply = (build_messages(r)[1]["content"] for r in (SINGLE, THREAD, REPLY))
    assert "llm engineering" in single and "contrarian" in single and "exactly 1 part" in single
    assert "2 to 7 parts" in thread and "startups" in thread
    assert "Agents are overhyped." in reply and "ask question" in reply
    assert build_messages(SINGLE)[0]["role"] == "system"
    assert estimate_prompt_tokens(THREAD) > len(build_messages(THREAD)[1]["content"]) / 4


def test_response_formats() -> None:
    strict = response_format("json_schema")
    assert strict["json_schema"]["strict"] is True and strict["json_schema"]["schema"] is DRAFT_SCHEMA
    assert set(DRAFT_SCHEMA["required"]) == set(DRAFT_SCHEMA["properties"])  # strict mode needs all required
    assert response_format("json_object") == {"type": "json_object"}
    with pytest.raises(ValueError):
        response_format("text")


def test_a_valid_answer_parses() -> None:
    d = parse_draft(json.dumps({"parts": ["  Stop shipping prompts without evals.  "], "hook": "Stop"}), SINGLE)
    assert d.parts == ["Stop shipping prompts without evals."] and d.hook == "Stop" and d.topic == SINGLE.topic
    t = parse_draft(json.dumps({"parts": ["1/ a", "2/ b", "3/ c"], "hook": None, "extra": 1}), THREAD)
    assert len(t.parts) == 3 and t.hook is None and t.text == "1/ a\n\n2/ b\n\n3/ c"


@pytest.mark.parametrize(
    ("content", "request_"),
    [
        (None, SINGLE),
        ("", SINGLE),
        ("Sure! Here is your tweet: hello", SINGLE),
        ('{"parts": "one string"}', SINGLE),
        ('{"hook": "x"}', SINGLE),
        ('{"parts": ["a", "b"], "hook": null}', SINGLE),  # a single post has one part
        ('{"parts": ["a", "b"], "hook": null}', REPLY),
        ('{"parts": ["only one"], "hook": null}', THREAD),  # a thread has 2..7
        (json.dumps({"parts": [f"p{i}" for i in range(8)], "hook": None}), THREAD),
        ('{"parts": ["ok", "   "], "hook": null}', THREAD),
        ('{"parts": ["ok"], "hook": null', SINGLE),  # truncated JSON
    ],
)
def test_anything_else_is_a_parse_error(content: str | None, request_: DraftRequest) -> None:
    with pytest.raises(DraftParseError):
        parse_draft(content, request_)
