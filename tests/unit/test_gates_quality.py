"""Quality gate: worked examples of every component, hard defects and the explained score."""

from __future__ import annotations

import pytest

from shared.gates.quality import BANNED_PHRASES, WEIGHTS, quality_gate

pytestmark = pytest.mark.unit

GOOD = "Why do most side projects die? They ship to nobody. Find 10 users before you write a line of code."
NO_HOOK = "Remote teams kept their output steady while meetings moved across time zones this year."


def q(text_or_parts, decision_type="single", min_score=0.7):
    parts = [text_or_parts] if isinstance(text_or_parts, str) else text_or_parts
    return quality_gate(parts, min_score=min_score, decision_type=decision_type)


def test_a_good_tweet_scores_one_and_explains_itself():
    r = q(GOOD)
    assert (r.gate, r.passed, r.reason, r.score) == ("quality", True, "ok", 1.0)
    comps = r.details["components"]
    assert set(comps) == {"length", "hook", "complete", "banned", "hashtags", "emoji"}
    assert sum(c["weight"] for c in comps.values()) == pytest.approx(1.0)
    assert r.details["hook"] == "question"
    assert r.details["defects"] == [] and r.details["hard_defects"] == []


@pytest.mark.parametrize("decision_type", ["single", "thread", "reply"])
def test_weights_sum_to_one(decision_type):
    assert sum(WEIGHTS[decision_type].values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("How I cut our cloud bill in half without touching the code base at all.", "opener:how"),
        ("3 habits that made me a faster engineer than I was five years ago, honestly.", "number"),
        ("Nobody talks about the cost of context switching for a small engineering team.", "opener:nobody"),
        (
            "Microservices are overrated for teams of five, and a monolith will serve you well.",
            "claim:overrated",
        ),
    ],
)
def test_hooks_are_recognised(text, kind):
    r = q(text)
    assert r.passed and r.score == 1.0
    assert r.details["hook"] == kind


def test_missing_hook_costs_its_weight_and_still_passes():
    r = q(NO_HOOK)
    assert r.passed and r.reason == "no_hook"
    assert r.score == pytest.approx(0.9)
    assert r.details["components"]["hook"]["score"] == 0.0


def test_reply_needs_no_hook_and_may_be_short():
    r = q("Exactly this. Shipping beats polishing.", decision_type="reply")
    assert r.passed and r.reason == "ok" and r.score == 1.0
    assert r.details["components"]["hook"]["weight"] == 0.0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Why do side projects die? Because founders build for months and", "trailing_word:and"),
        ("Why do side projects die? Because founders build for months and then...", "ellipsis"),
        ("Why do side projects die? Because founders build for months, then\u2026", "ellipsis"),
        ("Why do side projects die? Because founders build for months,", "dangling_punctuation"),
        ("Why do side projects die? Here is the one reason that matters most:", "dangling_punctuation"),
        ("Why do side projects die? Founders build for months before talking to the", "trailing_word:the"),
    ],
)
def test_truncated_sentences_block_on_their_own(text, why):
    r = q(text)
    assert not r.passed
    assert r.reason == "truncated"
    assert r.score == pytest.approx(0.68)
    assert r.details["truncated_parts"] == {0: why}


def test_text_cut_mid_word_at_the_limit_is_truncated():
    text = ("Why do side projects die? " + "founders build without users " * 10)[:279] + "x"
    assert len(text) == 280 and text[-1].isalnum()
    r = q(text)
    assert not r.passed and r.reason == "truncated"
    assert r.details["truncated_parts"] == {0: "cut_at_limit"}


def test_plan_a_is_not_a_trailing_article():
    assert q("Why do side projects die? Founders never pick a Plan A.").passed
    assert q("Why do projects die? Nobody had a plan B or a Plan A").passed


def test_thread_lead_in_colon_is_fine_except_on_the_last_part():
    parts = ["Why most side projects die, in three steps:", "1. They ship to nobody and learn nothing."]
    assert q(parts, decision_type="thread").passed
    r = q([parts[1], parts[0]], decision_type="thread")
    assert not r.passed and r.details["truncated_parts"] == {1: "dangling_punctuation"}


def test_hashtag_spam_is_more_than_two():
    two = q(GOOD + " #buildinpublic #indiehackers")
    assert two.passed and two.reason == "ok"
    three = q(GOOD[:150] + " #a #b #c")
    assert three.reason == "hashtag_spam" and three.details["max_hashtags_per_part"] == 3
    assert three.score == pytest.approx(0.92) and three.passed
    assert not q(GOOD[:150] + " #a #b #c", min_score=0.95).passed


def test_emoji_spam_is_more_than_three():
    three = q(GOOD + " \U0001f680\U0001f525\u2764\ufe0f")
    assert three.passed and three.reason == "ok"
    four = q(GOOD + " \U0001f680\U0001f525\u2764\ufe0f\U0001f468\u200d\U0001f469\u200d\U0001f467")
    assert four.reason == "emoji_spam" and four.details["max_emoji_per_part"] == 4
    assert four.score == pytest.approx(0.92)


@pytest.mark.parametrize(
    "phrase",
    [
        "As an AI",
        "In conclusion",
        "delving",
        "game-changer",
        "Unlock the power",
        "In today\u2019s fast-paced world",
    ],
)
def test_banned_phrases_block_on_their_own(phrase):
    r = q(f"Why do side projects die? {phrase}, founders build for months before talking to users.")
    assert not r.passed
    assert r.reason == "banned_phrase"
    assert r.score == pytest.approx(0.68)
    assert r.details["banned_phrases"]


def test_banned_list_covers_the_brief():
    for p in (
        "as an ai",
        "in conclusion",
        "delve",
        "game-changer",
        "unlock the power",
        "in today's fast-paced world",
    ):
        assert p in BANNED_PHRASES


@pytest.mark.parametrize(
    "text",
    [
        "Why do side projects die? [insert reason here] and how to fix it today.",
        "Why do side projects die? Lorem ipsum dolor sit amet, consectetur adipiscing.",
        "Why do side projects die? TODO write the body of this tweet later on.",
        "Why do side projects die? Everything about {topic} you need to know today.",
        "Why do side projects die? Read more about <placeholder> in my newsletter.",
    ],
)
def test_placeholders_are_a_hard_block(text):
    r = q(text)
    assert not r.passed
    assert r.reason == "placeholder"
    assert r.score == 0.0
    assert r.details["hard_defects"] == ["placeholder"]
    assert r.details["weighted_score"] == pytest.approx(1.0)  # nothing else wrong, still blocked


def test_lowercase_todo_is_ordinary_text():
    assert q("Why does my todo list never shrink? I keep adding three things for each one I finish.").passed


def test_over_length_part_is_a_hard_block_even_at_min_score_zero():
    r = q("Why? " + "x" * 280, min_score=0.0)
    assert not r.passed and r.reason == "over_length" and r.score == 0.0
    thread = q([GOOD, "How to fix it: " + "y " * 140], decision_type="thread", min_score=0.0)
    assert not thread.passed and thread.reason == "over_length"
    assert thread.details["over_length_parts"] == [1]


def test_worst_defect_is_named_hard_first_then_largest_loss():
    r = q("As an AI, here is [insert topic] for you and")
    assert r.reason == "placeholder"
    assert r.details["defects"][0] == "placeholder"
    assert {"banned_phrase", "truncated"} <= set(r.details["defects"])
    soft = q("Remote teams did fine. As an AI I say so. #a #b #c")
    assert soft.reason == "banned_phrase"
    assert soft.details["defects"] == ["banned_phrase", "no_hook", "hashtag_spam"]
    assert soft.score == pytest.approx(1 - 0.32 - 0.10 - 0.08)


def test_score_is_the_weighted_sum_of_components():
    r = q("Teams ship.")  # 11 of 40 characters, no hook
    comps = r.details["components"]
    assert comps["length"]["score"] == pytest.approx(11 / 40)
    expected = sum(c["weight"] * c["score"] for c in comps.values())
    assert r.score == pytest.approx(expected)
    assert r.details["defects"] == ["no_hook", "too_short"]  # hook loses 0.10, length 0.10 * (1 - 11/40)
    assert r.score == pytest.approx(1 - 0.10 - 0.10 * (1 - 11 / 40))
    assert r.passed  # short and hook-less, yet nothing that blocks at 0.7 on its own
    assert not q("Teams ship.", min_score=0.85).passed


def test_blocked_exactly_when_below_min_score():
    r = q(NO_HOOK, min_score=0.9)
    assert r.passed  # 0.9 is not below 0.9
    assert not q(NO_HOOK, min_score=0.91).passed


def test_bad_input_raises_for_the_chain_to_fail_closed():
    with pytest.raises(ValueError):
        q(GOOD, decision_type="quote")
    with pytest.raises(ValueError):
        q([GOOD, GOOD], decision_type="single")
    with pytest.raises(ValueError):
        q([], decision_type="thread")


def test_empty_part_is_a_hard_block():
    r = q([GOOD, "   "], decision_type="thread", min_score=0.0)
    assert not r.passed and r.reason == "empty_part"


def test_the_any_banned_prefilter_gives_the_phrases_one_by_one_would() -> None:
    import re

    import shared.gates.quality as quality_mod

    texts = [f"Here is the thing: {p} matters more than you think." for p in BANNED_PHRASES]
    texts += [f"Start. {p.upper()}, then {BANNED_PHRASES[0]}." for p in BANNED_PHRASES[:5]]
    texts += ["Here is the thing: delved deep, nothing banned here.", "Here is the thing: delves into it.",
              "Here is the thing: undelve is not a word, gamechanger neither.", GOOD]
    fast = [q([t], min_score=0.0).details.get("banned_phrases") for t in texts]
    any_re = quality_mod._ANY_BANNED_RE
    quality_mod._ANY_BANNED_RE = re.compile("")  # matches every text: each phrase is tried on its own
    try:
        slow = [q([t], min_score=0.0).details.get("banned_phrases") for t in texts]
    finally:
        quality_mod._ANY_BANNED_RE = any_re
    assert fast == slow
    assert sum(b is not None for b in fast) >= len(BANNED_PHRASES)
