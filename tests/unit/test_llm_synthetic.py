"""The deterministic adapters: SyntheticWriter (varied, plausible, within X's limits) and HashingEmbedder."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.gates.quality import quality_gate
from shared.gates.text import weighted_length
from shared.learning.arms import DEFAULT_ANGLES, DEFAULT_TOPICS, REPLY_ARMS
from shared.llm.port import LLM, DraftRequest, Embedder, normalize_rows
from shared.llm.synthetic import HashingEmbedder, SyntheticWriter

pytestmark = pytest.mark.unit

W = SyntheticWriter()
CONTEXT = (
    "Hot take: most teams don't need microservices. A modular monolith gets you 90% of the way there. "
    "#architecture https://example.com/post 🚀 @someone"
)


def plan(topic: str = "ai_tools", angle: str = "how_to", dt: str = "single", seed: int = 0) -> DraftRequest:
    return DraftRequest(kind="plan", topic=topic, angle=angle, decision_type=dt, seed=seed)  # type: ignore[arg-type]


def test_it_implements_the_ports() -> None:
    assert isinstance(W, LLM)
    assert isinstance(HashingEmbedder(), Embedder)


def test_same_request_same_draft_and_seed_changes_it() -> None:
    assert W.write(plan(seed=7)) == SyntheticWriter().write(plan(seed=7))
    texts = {W.write(plan(seed=s)).text for s in range(40)}
    assert len(texts) >= 36  # different seeds give different drafts


def test_drafts_vary_across_topics_angles_and_templates() -> None:
    drafts = [W.write(plan(t, a, dt, s)) for t in DEFAULT_TOPICS for a in DEFAULT_ANGLES
              for dt in ("single", "thread") for s in range(4)]
    texts = [d.text for d in drafts]
    assert len(set(texts)) == len(texts)
    openers = {d.parts[0].split()[0 if d.parts[0][0].isalpha() else 1] for d in drafts}
    assert len(openers) >= 25  # many different templates, not one sentence with swapped nouns
    # the topic shows in the words: ai_tools and startups drafts use different vocabularies
    ai = " ".join(W.write(plan("ai_tools", "how_to", seed=s)).text for s in range(10)).lower()
    st_ = " ".join(W.write(plan("startups", "how_to", seed=s)).text for s in range(10)).lower()
    assert "customer" in st_ or "pricing" in st_ or "users" in st_
    assert "customer" not in ai


def test_part_counts() -> None:
    counts = {len(W.write(plan(dt="thread", seed=s)).parts) for s in range(120)}
    assert counts <= set(range(2, 8)) and len(counts) >= 5
    assert all(len(W.write(plan(seed=s)).parts) == 1 for s in range(20))
    reply = DraftRequest(kind="reply", topic="ai_tools", angle="add_insight", decision_type="thread", context=CONTEXT)
    assert len(W.write(reply).parts) == 1  # a reply is one part whatever decision_type says


def test_drafts_pass_the_quality_gate_and_fit_280() -> None:
    n = 0
    for topic in (*DEFAULT_TOPICS, "underwater_basket_weaving"):
        for angle in (*DEFAULT_ANGLES, "something_else"):
            for dt in ("single", "thread"):
                for seed in range(6):
                    d = W.write(plan(topic, angle, dt, seed))
                    assert all(weighted_length(p) <= 280 for p in d.parts)
                    result = quality_gate(d.parts, min_score=0.7, decision_type=dt)
                    assert result.passed, (result.reason, d.parts)
                    assert d.topic == topic and d.angle == angle and d.hook
                    n += 1
    assert n == 9 * 6 * 2 * 6


def test_replies_reference_the_context_and_are_clean() -> None:
    for style in (*REPLY_ARMS, "other"):
        for seed in range(8):
            d = W.write(DraftRequest(kind="reply", topic="developer_workflow", angle=style, context=CONTEXT, seed=seed))
            text = d.parts[0]
            assert "microservices" in text or "monolith" in text, text
            assert "http" not in text and "#" not in text and "@" not in text and "🚀" not in text
            assert quality_gate(d.parts, min_score=0.7, decision_type="reply").passed
    styles = {W.write(DraftRequest(kind="reply", topic="ai_tools", angle=s, context=CONTEXT, seed=1)).text
              for s in REPLY_ARMS}
    assert len(styles) == len(REPLY_ARMS)


def test_reply_without_usable_context_still_answers() -> None:
    d = W.write(DraftRequest(kind="reply", topic="ai_tools", angle="ask_question", context="🔥🔥"))
    assert d.parts[0] and weighted_length(d.parts[0]) <= 280


@settings(max_examples=60, deadline=None)
@given(context=st.text(min_size=0, max_size=600), seed=st.integers(0, 2**31), style=st.sampled_from(REPLY_ARMS),
       topic=st.text(min_size=1, max_size=30))
def test_any_context_any_topic_stays_within_280(context: str, seed: int, style: str, topic: str) -> None:
    d = W.write(DraftRequest(kind="reply", topic=topic, angle=style, context=context, seed=seed))
    assert len(d.parts) == 1 and 0 < weighted_length(d.parts[0]) <= 280
    t = W.write(DraftRequest(kind="plan", topic=topic, angle="data", decision_type="thread", seed=seed))
    assert 2 <= len(t.parts) <= 7 and all(0 < weighted_length(p) <= 280 for p in t.parts)


async def test_async_draft_reports_no_usage() -> None:
    r = await W.draft(plan(seed=3), request_id="r1")
    assert r.draft == W.write(plan(seed=3)) and r.usage.total_tokens == 0 and r.request_id == "r1"
    assert r.model == W.model


# ------------------------------------------------------------------------------------------ hashing embedder
def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_vectors_are_float32_unit_and_deterministic() -> None:
    e = HashingEmbedder(256)
    v = e.embed_texts(["AI tools saved me hours.", "Another text", ""])
    assert v.dtype == np.float32 and v.shape == (3, 256)
    assert np.allclose(np.linalg.norm(v[:2], axis=1), 1.0, atol=1e-5)
    assert np.all(v[2] == 0)  # nothing to hash: the zero vector, not NaN
    assert np.array_equal(v, HashingEmbedder(256).embed_texts(["AI tools saved me hours.", "Another text", ""]))
    assert HashingEmbedder(64).embed_texts(["x y z"]).shape == (1, 64)
    with pytest.raises(ValueError):
        HashingEmbedder(0)


def test_near_duplicates_are_close_unrelated_texts_are_not() -> None:
    e = HashingEmbedder()
    a = "AI tools saved me 5 hours a week once I stopped pasting the first answer without checking it."
    near = [
        "AI tools saved me 6 hours a week once I stopped pasting the first answer without checking it!",
        "ai tools saved me 5 hours a week, once i stopped pasting the first answer without checking it",
        "AI tools saved me 5 hours every week once I stopped pasting the first answer without checking it.",
    ]
    far = [
        "My sourdough starter finally doubled overnight after I moved it next to the oven.",
        "The stadium was packed for the final match of the season last night.",
        "Quarterly tax filings are due at the end of the month for most freelancers.",
    ]
    va, vn, vf = e.vector(a), e.embed_texts(near), e.embed_texts(far)
    assert all(cos(va, v) > 0.9 for v in vn), [cos(va, v) for v in vn]
    assert all(cos(va, v) < 0.3 for v in vf), [cos(va, v) for v in vf]
    assert cos(e.vector("Customer calls beat surveys."), e.vector("Surveys beat customer calls.")) > 0.5


async def test_async_embed_matches_sync() -> None:
    e = HashingEmbedder(128)
    r = await e.embed(["one", "two"], request_id="x")
    assert np.array_equal(r.vectors, e.embed_texts(["one", "two"])) and r.dim == 128 and r.model == "hashing-128"
    assert (await e.embed([])).vectors.shape == (0, 128)


def test_no_sentence_is_said_twice_in_a_draft() -> None:
    import re

    for topic in ("ai_tools", "tech_trends", "no_such_topic"):
        for angle in DEFAULT_ANGLES:
            for seed in range(40):
                d = W.write(plan(topic, angle, "thread", seed))
                body = [re.sub(r"^\d+(/\d*)?\.? ?", "", p) for p in d.parts]
                sentences = [s.strip().lower() for p in body for s in re.split(r"(?<=[.!?:])\s+", p) if s.strip()]
                assert len(sentences) == len(set(sentences)), d.parts


def _plain_vector(text: str, dim: int) -> np.ndarray:
    """The hashing trick as defined, one feature at a time: every word, word pair and character 3- and 4-gram
    (of the words joined by spaces, a space at each end) adds sign * kind weight * (1 + ln count) to its bucket."""
    import hashlib
    import math
    import unicodedata
    from collections import Counter

    tokens = re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", unicodedata.normalize("NFKC", text).casefold())
    keys = ["w:" + t for t in tokens] + ["b:" + a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
    padded = " " + " ".join(tokens) + " "
    for n in (3, 4):
        keys += [f"c{n}:" + padded[i : i + n] for i in range(len(padded) - n + 1) if padded[i : i + n].strip()]
    v = np.zeros(dim)
    for feat, count in Counter(keys).items():
        h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
        weight = {"w": 1.0, "b": 0.7, "c3": 0.35, "c4": 0.45}[feat.split(":", 1)[0]]
        v[h % dim] += (1.0 if (h >> 63) & 1 else -1.0) * weight * (1.0 + math.log(count))
    return normalize_rows(v)[0]  # to unit length as every Embedder does


def test_vectors_are_the_plain_definition_bit_for_bit() -> None:
    texts = [" ".join(W.write(plan(seed=s, topic=t)).parts) for s in range(60) for t in ("ai_tools", "startups")]
    texts += ["", "a", "x y", "Ünïcödé ﬁ café’s DON'T stop", "1 2 3 " * 200, "again " * 300]
    e = HashingEmbedder(256)
    for text in texts * 2:  # the second time from the embedder's cache
        assert np.array_equal(e.vector(text), _plain_vector(text, 256)), text
