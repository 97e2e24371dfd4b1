"""The prompts we send for a draft, the JSON shape we ask back, and its strict parsing. Pure."""

from __future__ import annotations

from typing import Any

from .port import PART_MAX_CHARS, Draft, DraftRequest
from .pricing import estimate_tokens
from .shape import UNCONSTRAINED_DRAFT_SCHEMA
from .shape import DraftParseError as DraftParseError
from .shape import draft_schema as draft_schema
from .shape import parse_draft_repaired as parse_draft_repaired
from .shape import response_format as response_format

SYSTEM_PROMPT = (
    "You write posts for an X (Twitter) account about technology, AI, software engineering and productivity. "
    "Voice: concrete, specific, plain words: practical advice, reasoned opinions, honest questions. Every post "
    "opens with a hook (a question, a clear opinion, or a concrete tip). Never invent facts: no statistics, "
    "percentages, amounts of money, multipliers, counts of users or customers, study or survey results, and no "
    "results, experiences, employers or customers of the account, unless the facts below hold them; never "
    "write what you or 'we' did, built, shipped, measured, saved or earned beyond those facts. Rules: each part "
    "at most 260 characters; complete sentences; no hashtags unless essential (never more than one); at most "
    "one emoji; no links; no placeholders; never say you are an AI; avoid cliches such as 'delve', "
    "'game-changer', 'in today's fast-paced world', 'unlock the power'. "
    "Answer only with JSON matching the schema: {\"parts\": [string, ...], \"hook\": string or null}."
)

#: What each content angle and reply style asks of the model. The arm names stay (they are the learner's and the
#: read models' keys); the instructions keep every angle clear of invented numbers and anecdotes.
ANGLE_GUIDES: dict[str, str] = {
    "how_to": "practical steps the reader can try today",
    "contrarian": "a reasoned opinion against common advice, argued, not backed by made-up figures",
    "story": "a short scenario told as a general pattern (what often happens to a team that ...) or drawn only "
             "from the account's facts; never a personal anecdote the facts do not hold",
    "data": "measurement: which metric to watch, how to measure it, what to compare it with and what a change "
            "would mean; no figures unless the account's facts hold them",
    "question": "an open question that invites the reader to share what they do",
    "add_insight": "add one useful point the tweet does not make",
    "ask_question": "ask one genuine follow-up question about the tweet",
    "agree_extend": "agree and extend the point with a next step",
    "counterpoint": "a respectful counterpoint with its reasoning",
    "resource": "point to a kind of resource (official docs, a checklist, a technique) without inventing titles "
                "or links",
}

LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "de": "German", "fr": "French"}

#: The JSON shape without a request: any number of parts. What is sent is `draft_schema(request)` (see
#: `shared.llm.shape`): strict structured outputs need every property required and no extras, and the part count
#: is in the schema (minItems/maxItems); a part's length is not (strict mode has no maxLength), so the prompt
#: states it and `parse_draft` checks it.
DRAFT_SCHEMA: dict[str, Any] = UNCONSTRAINED_DRAFT_SCHEMA


def length_rule(lo: int, hi: int) -> str:
    """The part count and length in words: the schema holds the count, but strict structured outputs cannot
    hold a string's length, so the prompt is where the model learns it (and `parse_draft` checks it)."""
    count = "exactly 1 element" if hi == 1 else f"{lo} to {hi} elements"
    return (f"'parts' has {count}; each element at most {PART_MAX_CHARS} characters (the schema cannot limit "
            "the length, so count: a longer part is rejected).")


def _humanize(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def _guide(angle: str) -> str:
    guide = ANGLE_GUIDES.get(angle)
    return f" ({guide})" if guide else ""


def _languages(request: DraftRequest) -> str:
    names = [LANGUAGE_NAMES.get(code, code) for code in request.languages] or ["English"]
    if request.kind == "reply":
        if len(names) == 1:
            return f"Write in {names[0]}."
        return f"Write in the tweet's language if it is one of {', '.join(names)}; otherwise in {names[0]}."
    if len(names) == 1:
        return f"Write in {names[0]}."
    return f"Write in one of {', '.join(names)} ({names[0]} unless the topic calls for another)."


def facts_prompt(request: DraftRequest) -> str:
    """The account's facts, as the only ones the model may state about the account."""
    if not request.facts:
        return ("You hold no facts about yourself: write advice, opinions and questions, not personal results, "
                "experiences, employers, customers or numbers.")
    listed = "\n".join(f"- {fact}" for fact in request.facts)
    return (f"You may state only these facts about yourself (word them freely, keep every number and name as "
            f"it is):\n{listed}\nAnything else about yourself, and any other number, result, customer or "
            f"employer, you do not invent.")


#: what ``SYSTEM_PROMPT`` says after its first sentence (the account-independent rules)
_RULES = SYSTEM_PROMPT.split(". ", 1)[1]
_TECH_VOICE = "Voice: concrete, specific, plain words: practical advice, reasoned opinions, honest questions. "


def account_prompt(request: DraftRequest) -> str:
    """The system prompt's head for an account with a profile: its niche, its persona, what it never says and
    a few posts in its voice, then the same rules (no invented facts, lengths, no links...)."""
    niche = ", ".join(_humanize(t) for t in request.niche) or "its topics"
    lines = [f"You write posts for an X (Twitter) account about {niche}."]
    if request.persona:
        lines.append(f"Who speaks and how: {request.persona}.")
    if request.never_say:
        lines.append("Never write about or say: " + "; ".join(request.never_say) + ".")
    if request.examples:
        lines.append("Posts in the account's own voice (match the voice, never copy them):\n"
                     + "\n".join(f"- {e}" for e in request.examples))
    rules = _RULES.replace(_TECH_VOICE, "") if request.persona else _RULES
    return "\n".join(lines) + "\n" + rules


def system_prompt(request: DraftRequest) -> str:
    head = account_prompt(request) if (request.niche or request.persona or request.examples) else SYSTEM_PROMPT
    return f"{head}\n{facts_prompt(request)}\n{_languages(request)}"


def user_prompt(request: DraftRequest) -> str:
    lo, hi = request.parts_range
    topic, angle = _humanize(request.topic), _humanize(request.angle)
    if request.kind == "reply":
        return (
            f"Write one reply (a single part) to the tweet below, in the style '{angle}'{_guide(request.angle)}, "
            f"drawing on the topic '{topic}'. Refer to what the tweet actually says; add something of value; no "
            f"flattery; do not invent numbers or experiences. {length_rule(1, 1)}\n"
            f"Tweet:\n<<<\n{request.context or ''}\n>>>\n"
            f"Variation seed: {request.seed}."
        )
    shape = "a single post (exactly 1 part)" if hi == 1 else f"a thread of {lo} to {hi} parts"
    return (
        f"Write {shape} on the topic '{topic}' with the angle '{angle}'{_guide(request.angle)}. "
        f"{length_rule(lo, hi)} Put the opening line that hooks the reader in 'hook' (or null). "
        f"Variation seed: {request.seed}."
    )


def build_messages(request: DraftRequest) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(request)}, {"role": "user", "content": user_prompt(request)}]


def estimate_prompt_tokens(request: DraftRequest) -> int:
    """A high estimate of the prompt's tokens (message overheads included), for the budget reservation."""
    return sum(estimate_tokens(m["content"]) + 8 for m in build_messages(request)) + 16


def parse_draft(content: str | None, request: DraftRequest) -> Draft:
    """The model's JSON answer as a `Draft` (repaired for free where it can be); `DraftParseError` (with its
    ``reason``) when it is not the shape we asked for."""
    return parse_draft_repaired(content, request)[0]
