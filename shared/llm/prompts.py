"""The prompts we send for a draft, the JSON shape we ask back, and its strict parsing. Pure."""

from __future__ import annotations

from typing import Any

import msgspec

from .port import Draft, DraftRequest
from .pricing import estimate_tokens

SYSTEM_PROMPT = (
    "You write posts for an X (Twitter) account about technology, AI, software engineering and productivity. "
    "Voice: concrete, specific, plain words, first-hand. Every post opens with a hook (a question, a number, "
    "or a strong claim). Rules: each part at most 260 characters; complete sentences; no hashtags unless "
    "essential (never more than one); at most one emoji; no links; no placeholders; never say you are an AI; "
    "avoid cliches such as 'delve', 'game-changer', 'in today's fast-paced world', 'unlock the power'. "
    "Answer only with JSON matching the schema: {\"parts\": [string, ...], \"hook\": string or null}."
)

#: The JSON we ask for. Strict structured outputs need every property required and no extras; the part count
#: and lengths are checked on our side (`parse_draft`), not by the schema.
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "parts": {"type": "array", "items": {"type": "string"}},
        "hook": {"type": ["string", "null"]},
    },
    "required": ["parts", "hook"],
    "additionalProperties": False,
}


def response_format(mode: str) -> dict[str, Any]:
    """``json_schema`` (OpenAI structured outputs, strict) or ``json_object`` (plain JSON mode)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "draft", "strict": True, "schema": DRAFT_SCHEMA}}
    if mode == "json_object":
        return {"type": "json_object"}
    raise ValueError(f"response format must be json_schema or json_object, not {mode!r}")


def _humanize(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def user_prompt(request: DraftRequest) -> str:
    lo, hi = request.parts_range
    topic, angle = _humanize(request.topic), _humanize(request.angle)
    if request.kind == "reply":
        return (
            f"Write one reply (a single part) to the tweet below, in the style '{angle}', drawing on the "
            f"topic '{topic}'. Refer to what the tweet actually says; add something of value; no flattery.\n"
            f"Tweet:\n<<<\n{request.context or ''}\n>>>\n"
            f"Variation seed: {request.seed}."
        )
    shape = "a single post (exactly 1 part)" if hi == 1 else f"a thread of {lo} to {hi} parts"
    return (
        f"Write {shape} on the topic '{topic}' with the angle '{angle}'. Put the opening line that hooks the "
        f"reader in 'hook' (or null). Variation seed: {request.seed}."
    )


def build_messages(request: DraftRequest) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_prompt(request)}]


def estimate_prompt_tokens(request: DraftRequest) -> int:
    """A high estimate of the prompt's tokens (message overheads included), for the budget reservation."""
    return sum(estimate_tokens(m["content"]) + 8 for m in build_messages(request)) + 16


class _RawDraft(msgspec.Struct, forbid_unknown_fields=False):
    parts: list[str]
    hook: str | None = None


class DraftParseError(ValueError):
    pass


def parse_draft(content: str | None, request: DraftRequest) -> Draft:
    """The model's JSON answer as a `Draft`; `DraftParseError` when it is not the shape we asked for."""
    if not content or not content.strip():
        raise DraftParseError("empty content")
    try:
        raw = msgspec.json.decode(content.strip().encode(), type=_RawDraft)
    except msgspec.DecodeError as exc:
        raise DraftParseError(f"not a draft JSON: {exc}") from None
    parts = [p.strip() for p in raw.parts]
    lo, hi = request.parts_range
    if not lo <= len(parts) <= hi:
        raise DraftParseError(f"{len(parts)} parts, expected {lo}..{hi} for {request.kind}/{request.decision_type}")
    if any(not p for p in parts):
        raise DraftParseError("an empty part")
    hook = raw.hook.strip() if raw.hook and raw.hook.strip() else None
    return Draft(parts=parts, topic=request.topic, angle=request.angle, hook=hook)
