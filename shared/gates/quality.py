"""Quality gate: an explained score in [0, 1] from weighted components.

Components (each scored in [0, 1], weights per decision type in ``WEIGHTS``, all returned in ``details``):

* ``length``      -- every part at least ``MIN_LENGTH[type]`` weighted characters (graded: shortest / minimum);
* ``hook``        -- the first sentence opens with a hook: a question, a number, a how/why/what opener or a strong
                     claim word (not required of replies, weight 0 there);
* ``complete``    -- no truncated sentence: no trailing ``...``/``…``, no dangling comma/hyphen/colon, no trailing
                     conjunction or article ("and", "the"), no part cut off mid-word at the length limit;
* ``banned``      -- none of the ``BANNED_PHRASES`` (AI boilerplate);
* ``hashtags``    -- at most 2 hashtags in any part;
* ``emoji``       -- at most 3 emoji in any part.

Hard defects -- a part over X's limit, an empty part, placeholder text (``[insert``, ``lorem ipsum``, ``TODO``,
``{topic}``, ``<placeholder>``) -- block whatever the score, which is then reported as 0 (the weighted score is
kept in ``details.weighted_score``). With the default weights and ``MIN_QUALITY_SCORE=0.7``, a truncated part or
a banned phrase blocks on its own (score 0.68); a missing hook (0.90), hashtag spam or emoji spam (0.92) alone
passes, and it takes several of those together to block. ``reason`` names the worst defect (hard first, then
the largest loss of score); it is ``ok`` when there is none.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .result import GateResult
from .text import TWEET_LIMIT, count_emoji, weighted_length

GATE = "quality"
DECISION_TYPES = ("single", "thread", "reply")

WEIGHTS: dict[str, dict[str, float]] = {
    "single": {
        "length": 0.10,
        "hook": 0.10,
        "complete": 0.32,
        "banned": 0.32,
        "hashtags": 0.08,
        "emoji": 0.08,
    },
    "thread": {
        "length": 0.10,
        "hook": 0.10,
        "complete": 0.32,
        "banned": 0.32,
        "hashtags": 0.08,
        "emoji": 0.08,
    },
    "reply": {
        "length": 0.10,
        "hook": 0.00,
        "complete": 0.32,
        "banned": 0.32,
        "hashtags": 0.13,
        "emoji": 0.13,
    },
}
MIN_LENGTH = {"single": 40, "thread": 30, "reply": 10}
MAX_HASHTAGS = 2
MAX_EMOJI = 3

BANNED_PHRASES: tuple[str, ...] = (
    "as an ai",
    "as a language model",
    "in conclusion",
    "delve",
    "game-changer",
    "game changer",
    "unlock the power",
    "unleash the power",
    "in today's fast-paced world",
    "in today's digital age",
    "in the ever-evolving",
    "ever-evolving landscape",
    "it's important to note",
    "it is important to note",
    "navigating the complexities",
    "a testament to",
    "tapestry",
    "let's dive in",
    "dive into the world",
    "buckle up",
    "revolutionize the way",
    "elevate your",
    "i hope this helps",
)
# "delve" also catches delves/delved/delving; the rest match as whole words.
_BANNED_BODY: tuple[tuple[str, str], ...] = tuple(
    (p, r"delv(?:e|es|ed|ing)" if p == "delve" else re.escape(p)) for p in BANNED_PHRASES
)
_BANNED_RE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (p, re.compile(r"(?<!\w)" + body + r"(?!\w)")) for p, body in _BANNED_BODY
)
#: any of them, the word-start test once per position (a part none of them matches, most parts, is read once)
_ANY_BANNED_RE = re.compile(r"(?<!\w)(?:" + "|".join(body for _, body in _BANNED_BODY) + r")(?!\w)")

_PLACEHOLDER_RE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("[insert", re.compile(r"\[\s*(?:insert|your|add|name|topic|link|placeholder|tbd)\b", re.IGNORECASE)),
    ("lorem ipsum", re.compile(r"lorem\s+ipsum", re.IGNORECASE)),
    ("TODO", re.compile(r"\b(?:TODO|TBD|FIXME|XXX)\b")),
    ("{template}", re.compile(r"\{\{?\s*[A-Za-z_][\w .-]{0,40}\}\}?")),
    (
        "<placeholder>",
        re.compile(r"<\s*(?:placeholder|insert[^>]*|topic|name|link|[a-z]+_[a-z_]+)\s*>", re.IGNORECASE),
    ),
)

_HOOK_OPENERS = frozenset(
    """
    how why what when where who which whose is are do does did can could should would will stop never always
    nobody everyone everybody no most few every only forget imagine here here's heres this unpopular hot
    """.split()
)
_CLAIM_WORDS = re.compile(
    r"\b(?:never|always|nobody|everyone|no one|most people|the truth|the real|the secret|secret|myth|mistake|"
    r"wrong|overrated|underrated|the best|the worst|the biggest|the only|is dead|isn't|is not|don't|doesn't|"
    r"stop|unpopular opinion|hot take|lesson|lessons|nobody talks about|beats|faster than|cheaper than)\b"
)
_TRAILING_WORDS = frozenset(
    """
    and or but nor because the a an of with than my your our their whose whether although unless whereas
    versus vs via
    """.split()
)
_DANGLING_END = tuple(",;-–—([{&")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+|\n+")
_HASHTAG_RE = re.compile(r"(?<![\w&])#\w+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("\u2018", "'")


def _first_sentence(text: str) -> str:
    return _SENTENCE_END_RE.split(text.strip(), maxsplit=1)[0].strip()


def _has_hook(text: str) -> tuple[bool, str]:
    sentence = _first_sentence(text)
    folded = _fold(sentence)
    if not folded:
        return False, "empty"
    if "?" in folded:
        return True, "question"
    if re.search(r"\d", folded):
        return True, "number"
    words = re.findall(r"[\w']+", folded)
    if words and words[0] in _HOOK_OPENERS:
        return True, f"opener:{words[0]}"
    m = _CLAIM_WORDS.search(folded)
    if m:
        return True, f"claim:{m.group(0)}"
    if folded.endswith("!") and len(words) <= 12:
        return True, "exclamation"
    return False, "none"


def _truncation(part: str, *, final: bool, limit: int) -> str | None:
    """Why ``part`` looks truncated, or None. Non-final thread parts may end with ':' (a lead-in)."""
    text = part.rstrip()
    if not text:
        return None
    if text.endswith("...") or text.endswith("…"):
        return "ellipsis"
    if text.endswith(_DANGLING_END) or (final and text.endswith(":")):
        return "dangling_punctuation"
    last = re.findall(r"[\w']+", text[-40:])
    if last and text[-1].isalnum() and last[-1] in _TRAILING_WORDS:
        return f"trailing_word:{last[-1]}"
    if text[-1].isalnum() and weighted_length(text) >= limit - 1:
        return "cut_at_limit"
    return None


def quality_gate(
    parts: list[str], *, min_score: float, decision_type: str, limit: int = TWEET_LIMIT,
    account_banned: tuple[str, ...] = (),
) -> GateResult:
    """Score a draft (one part for ``single``/``reply``, several for ``thread``) and block below ``min_score``.
    ``account_banned``: the account profile's banned phrases; any of them (as a whole word or words, case and
    apostrophes folded) is a hard defect -- the account said never."""
    if decision_type not in WEIGHTS:
        raise ValueError(f"unknown decision_type {decision_type!r}")
    if not parts:
        raise ValueError("a draft needs at least one part")
    if decision_type != "thread" and len(parts) != 1:
        raise ValueError(f"a {decision_type} has exactly one part, got {len(parts)}")
    weights = WEIGHTS[decision_type]
    hard: list[str] = []
    notes: dict[str, Any] = {}

    lengths = [weighted_length(p) for p in parts]
    notes["weighted_lengths"] = lengths
    if any(not p.strip() for p in parts):
        hard.append("empty_part")
    if any(n > limit for n in lengths):
        hard.append("over_length")
        notes["over_length_parts"] = [i for i, n in enumerate(lengths) if n > limit]
    if account_banned:
        folded = [_fold(p) for p in parts]
        said = sorted({b for b in account_banned
                       if any(re.search(r"(?<!\w)" + re.escape(_fold(b)) + r"(?!\w)", f) for f in folded)})
        if said:
            hard.append("account_banned_phrase")
            notes["account_banned_phrases"] = said
    placeholders = sorted({name for p in parts for name, rx in _PLACEHOLDER_RE if rx.search(p)})
    if placeholders:
        hard.append("placeholder")
        notes["placeholders"] = placeholders

    scores: dict[str, float] = {}
    minimum = MIN_LENGTH[decision_type]
    scores["length"] = min(1.0, min(lengths) / minimum)

    hook, hook_kind = _has_hook(parts[0])
    notes["hook"] = hook_kind if decision_type != "reply" else "not_required_for_reply"
    scores["hook"] = 1.0 if (hook or decision_type == "reply") else 0.0

    truncated = {
        i: why
        for i, p in enumerate(parts)
        if (why := _truncation(p, final=i == len(parts) - 1, limit=limit)) is not None
    }
    if truncated:
        notes["truncated_parts"] = truncated
    scores["complete"] = 0.0 if truncated else 1.0

    folded_parts = [_fold(p) for p in parts]
    banned = sorted({name for f in folded_parts if _ANY_BANNED_RE.search(f) for name, rx in _BANNED_RE if rx.search(f)})
    if banned:
        notes["banned_phrases"] = banned
    scores["banned"] = 0.0 if banned else 1.0

    hashtags = max(len(_HASHTAG_RE.findall(p)) for p in parts)
    emoji = max(count_emoji(p) for p in parts)
    notes["max_hashtags_per_part"] = hashtags
    notes["max_emoji_per_part"] = emoji
    scores["hashtags"] = 1.0 if hashtags <= MAX_HASHTAGS else 0.0
    scores["emoji"] = 1.0 if emoji <= MAX_EMOJI else 0.0

    weighted = round(sum(weights[k] * scores[k] for k in weights), 6)
    defect_names = {
        "length": "too_short",
        "hook": "no_hook",
        "complete": "truncated",
        "banned": "banned_phrase",
        "hashtags": "hashtag_spam",
        "emoji": "emoji_spam",
    }
    losses = {k: weights[k] * (1.0 - scores[k]) for k in weights}
    soft = [defect_names[k] for k in sorted(losses, key=lambda k: -losses[k]) if losses[k] > 0]
    defects = hard + soft
    score = 0.0 if hard else weighted
    passed = not hard and score >= min_score
    details: dict[str, Any] = {
        "decision_type": decision_type,
        "components": {k: {"weight": weights[k], "score": round(scores[k], 6)} for k in weights},
        "weighted_score": weighted,
        "min_score": min_score,
        "hard_defects": hard,
        "defects": defects,
        **notes,
    }
    return GateResult(GATE, passed, defects[0] if defects else "ok", score, details)
