"""The prompt we send and the strict parsing of the JSON draft we get back."""

import json

import pytest

from shared.gates.text import weighted_length
from shared.llm.port import PART_MAX_CHARS, Draft, DraftRequest
from shared.llm.prompts import (
    DRAFT_SCHEMA,
    DraftParseError,
    build_messages,
    draft_schema,
    estimate_prompt_tokens,
    parse_draft,
    parse_draft_repaired,
    response_format,
)
from shared.llm.shape import STRICT_UNSUPPORTED_KEYWORDS
from shared.llm.shape import sentences as sentences_of

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


LONG_SENTENCE = "Every team that ships prompts without an eval suite finds the regression in production first " * 4


@pytest.mark.parametrize(
    ("content", "request_", "reason"),
    [
        (None, SINGLE, "empty"),
        ("", SINGLE, "empty"),
        ("Sure! Here is your tweet: hello", SINGLE, "not_json"),
        ('{"parts": "one string"}', SINGLE, "not_json"),
        ('{"hook": "x"}', SINGLE, "not_json"),
        ('{"parts": ["ok"], "hook": null', SINGLE, "not_json"),  # truncated JSON
        ('{"parts": ["  ", ""], "hook": null}', SINGLE, "empty"),
        ('{"parts": ["only one"], "hook": null}', THREAD, "parts_count"),  # one sentence: nothing to split
        ('{"parts": ["ok", "   "], "hook": null}', THREAD, "parts_count"),
        (json.dumps({"parts": ["x" * 200, "y" * 200], "hook": None}), SINGLE, "parts_count"),  # too long joined
        (json.dumps({"parts": [LONG_SENTENCE], "hook": None}), SINGLE, "too_long"),  # one sentence of 370
        (json.dumps({"parts": ["A start.", LONG_SENTENCE], "hook": None}), THREAD, "too_long"),
        (json.dumps({"parts": ["w" * 200] * 8, "hook": None}), THREAD, "parts_count"),  # 8 that cannot merge
    ],
)
def test_anything_else_is_a_parse_error(content: str | None, request_: DraftRequest, reason: str) -> None:
    with pytest.raises(DraftParseError) as err:
        parse_draft(content, request_)
    assert err.value.reason == reason


def test_the_schema_says_how_many_parts_each_request_wants() -> None:
    for request_, lo, hi in ((SINGLE, 1, 1), (REPLY, 1, 1), (THREAD, 2, 7)):
        fmt = response_format("json_schema", request_)
        schema = fmt["json_schema"]["schema"]
        parts = schema["properties"]["parts"]
        assert fmt["json_schema"]["strict"] is True
        assert (parts["minItems"], parts["maxItems"]) == (lo, hi)
        assert set(schema["required"]) == set(schema["properties"]) and schema["additionalProperties"] is False
        # strict structured outputs accept no string length: it is in the description and the prompt instead
        assert not set(STRICT_UNSUPPORTED_KEYWORDS) & set(parts["items"])
        assert str(PART_MAX_CHARS) in parts["items"]["description"]
        assert f"at most {PART_MAX_CHARS} characters" in build_messages(request_)[1]["content"]
    loose = draft_schema(SINGLE, strict=False)["properties"]["parts"]["items"]
    assert loose["maxLength"] == PART_MAX_CHARS and loose["minLength"] == 1


def test_a_single_in_several_parts_that_fit_together_is_joined() -> None:
    d, repairs = parse_draft_repaired(json.dumps(
        {"parts": ["1/ Stop shipping prompts blind.", " 2/ Write three evals first.  ", ""], "hook": None}), SINGLE)
    assert d.parts == ["Stop shipping prompts blind. Write three evals first."]
    assert repairs == ["dropped_empty_parts", "joined_parts"]
    r, repairs = parse_draft_repaired('{"parts": ["Good point.", "What about tests?"], "hook": null}', REPLY)
    assert r.parts == ["Good point. What about tests?"] and repairs == ["joined_parts"]


def test_a_single_too_long_keeps_its_leading_sentences() -> None:
    sentences = [f"Sentence number {i} says one more useful thing about evals." for i in range(8)]
    d, repairs = parse_draft_repaired(json.dumps({"parts": [" ".join(sentences)], "hook": None}), SINGLE)
    assert repairs == ["dropped_sentences"] and weighted_length(d.parts[0]) <= 280
    assert d.parts[0] == " ".join(sentences[: len(sentences_of(d.parts[0]))])  # a prefix of whole sentences


def test_threads_are_split_merged_and_renumbered_in_their_own_style() -> None:
    long_part = " ".join(f"Point {i} is a complete sentence of about fifty chars." for i in range(9))
    t, repairs = parse_draft_repaired(json.dumps({"parts": ["1/ Hook here.", f"2/ {long_part}"], "hook": "Hook"}),
                                      THREAD)
    assert repairs == ["split_parts"] and len(t.parts) >= 3
    assert all(weighted_length(p) <= 280 for p in t.parts)
    assert [p.split(" ", 1)[0] for p in t.parts] == [f"{i}/" for i in range(1, len(t.parts) + 1)]
    eight = [f"{i}/8 Part {i}." for i in range(1, 9)]
    t, repairs = parse_draft_repaired(json.dumps({"parts": eight, "hook": None}), THREAD)
    assert repairs == ["merged_parts"] and len(t.parts) == 7 and t.parts[0].startswith("1/7 ")
    one = parse_draft_repaired('{"parts": ["First idea here. Second idea here."], "hook": null}', THREAD)
    assert one == (Draft(parts=["First idea here.", "Second idea here."], topic=THREAD.topic, angle=THREAD.angle),
                   ["split_parts"])


def test_a_fenced_answer_is_unfenced() -> None:
    d, repairs = parse_draft_repaired('```json\n{"parts": ["Why evals first? Because."], "hook": null}\n```', SINGLE)
    assert d.parts == ["Why evals first? Because."] and repairs == ["unfenced"]
