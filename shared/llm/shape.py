"""The shape of a draft: the JSON schema each request sends, and the free repairs of an answer that does not fit.

**The schema per request.** A draft request knows how many parts it wants (a single post and a reply: exactly 1;
a thread: 2..7), so the schema it sends says so: ``parts`` has ``minItems``/``maxItems`` equal to that range, and
a schema-conforming server cannot answer a single post with three parts. OpenAI's structured outputs in strict
mode accept ``minItems``/``maxItems`` on arrays (and ``pattern``/``format`` on strings), but not ``minLength``/
``maxLength``: a strict schema states a part's length in its ``description`` and in the prompt, and the length
is checked here, locally, on every answer. ``draft_schema(strict=False)`` adds ``maxLength`` for servers whose
(non-strict) structured outputs honour it.

**Free repairs** (``repair_parts``), tried before an answer is rejected (a rejected answer was paid for, and
another call costs as much again); each one applied is named in the result:

* whitespace around a part is trimmed, empty parts are dropped (``dropped_empty_parts``);
* a single post or a reply that came back as several parts is joined into one when the parts fit one post
  together (thread numbering such as ``1/`` removed) (``joined_parts``);
* a single post or a reply too long for one post keeps its leading whole sentences that fit, when they make a
  post of at least ``MIN_KEPT_CHARS`` (``dropped_sentences``);
* a thread part too long for one post is split at sentence ends (``split_parts``); a thread with too many
  parts has its shortest neighbouring parts merged while they fit one post (``merged_parts``); a thread with too
  few parts has its longest part split at a sentence end (``split_parts``); a thread with more text than its
  parts allowed can hold keeps the leading sentences of each part too long (``dropped_sentences``). A numbered
  thread is numbered again in its own style (``1/``, ``1/5``, ``1.``, ``1)``).

What cannot be repaired raises `DraftParseError` with a ``reason`` (the ``wasted_reason`` of the call):
``parts_count``, ``too_long`` or ``empty``. Nothing here calls anything or invents text: a repair only trims,
joins, splits or drops what the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from ..gates.text import TWEET_LIMIT, weighted_length
from .port import PART_MAX_CHARS, Draft, DraftRequest

#: a single post or a reply cut down to its leading sentences keeps at least this many weighted characters
MIN_KEPT_CHARS = 60
#: room kept for a thread's numbering ("7/7 ") when parts are split or merged
_NUMBERING_ROOM = 6

#: the keywords OpenAI's strict structured outputs do not accept (see the module docstring)
STRICT_UNSUPPORTED_KEYWORDS = ("minLength", "maxLength")

#: the schema sent before schemas were per request: any number of parts of any length (kept for comparison)
UNCONSTRAINED_DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "parts": {"type": "array", "items": {"type": "string"}},
        "hook": {"type": ["string", "null"]},
    },
    "required": ["parts", "hook"],
    "additionalProperties": False,
}


class DraftParseError(ValueError):
    """An answer that is not the draft asked for, even after the free repairs. ``reason`` names why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def draft_schema(request: DraftRequest, *, strict: bool = True) -> dict[str, Any]:
    """The JSON schema of the draft ``request`` asks for: as many parts as it wants, each one post long."""
    lo, hi = request.parts_range
    item: dict[str, Any] = {
        "type": "string",
        "description": f"one post: at most {PART_MAX_CHARS} characters, complete sentences",
    }
    if not strict:
        item["minLength"] = 1
        item["maxLength"] = PART_MAX_CHARS
    what = "exactly 1 part" if hi == 1 else f"{lo} to {hi} parts, in reading order"
    return {
        "type": "object",
        "properties": {
            "parts": {"type": "array", "description": what, "items": item, "minItems": lo, "maxItems": hi},
            "hook": {"type": ["string", "null"], "description": "the opening line that hooks the reader, or null"},
        },
        "required": ["parts", "hook"],
        "additionalProperties": False,
    }


def response_format(mode: str, request: DraftRequest | None = None) -> dict[str, Any]:
    """``json_schema`` (OpenAI structured outputs, strict, with the schema of ``request``; without one, the shape
    with any number of parts) or ``json_object`` (plain JSON mode)."""
    if mode == "json_schema":
        schema = draft_schema(request) if request is not None else UNCONSTRAINED_DRAFT_SCHEMA
        return {"type": "json_schema", "json_schema": {"name": "draft", "strict": True, "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object"}
    raise ValueError(f"response format must be json_schema or json_object, not {mode!r}")


# --------------------------------------------------------------------------------------------- the repairs
_NUMBERING_RE = re.compile(r"^\s*(\d{1,2})(/\d{1,2}|[/.)])\s+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+")


def _fits(text: str, limit: int) -> bool:
    return weighted_length(text) <= limit


def _numbering_style(parts: Sequence[str]) -> str | None:
    """The numbering every part carries (``{i}/``, ``{i}/{n}``, ``{i}.``, ``{i})``), or None."""
    styles = set()
    for p in parts:
        m = _NUMBERING_RE.match(p)
        if m is None:
            return None
        mark = m.group(2)
        styles.add("{i}/{n} " if len(mark) > 1 else "{i}" + mark + " ")
    return styles.pop() if len(styles) == 1 else None


def strip_numbering(part: str) -> str:
    return _NUMBERING_RE.sub("", part, count=1).strip()


def sentences(text: str) -> list[str]:
    return [s for s in (x.strip() for x in _SENTENCE_END_RE.split(text.strip())) if s]


def _pack(units: Sequence[str], limit: int) -> list[str] | None:
    """Sentences packed greedily into chunks of at most ``limit``; None when one sentence alone is too long."""
    chunks: list[str] = []
    for s in units:
        if not _fits(s, limit):
            return None
        if chunks and _fits(chunks[-1] + " " + s, limit):
            chunks[-1] += " " + s
        else:
            chunks.append(s)
    return chunks


def _leading_sentences(text: str, limit: int) -> str | None:
    """The longest run of ``text``'s leading whole sentences that fits ``limit`` (None if it is too short)."""
    kept = ""
    for s in sentences(text):
        candidate = f"{kept} {s}" if kept else s
        if not _fits(candidate, limit):
            break
        kept = candidate
    return kept if kept and weighted_length(kept) >= MIN_KEPT_CHARS else None


def _split_then_merge(bodies: Sequence[str], room: int, hi: int, shape: str, lo: int
                      ) -> tuple[list[str], list[str]]:
    """Parts too long split at sentence ends, then the shortest neighbours merged while there are more than
    ``hi``; `DraftParseError` when a sentence alone is too long or the parts cannot be merged down to ``hi``."""
    repairs: list[str] = []
    units: list[str] = []
    for body in bodies:
        if _fits(body, room):
            units.append(body)
            continue
        chunks = _pack(sentences(body), room)
        if chunks is None:
            raise DraftParseError("too_long", f"a part of {weighted_length(body)} weighted characters with a "
                                              f"sentence longer than {room}")
        units += chunks
        if "split_parts" not in repairs:
            repairs.append("split_parts")
    while len(units) > hi:
        _, i = min((weighted_length(units[i]) + weighted_length(units[i + 1]), i) for i in range(len(units) - 1))
        merged = units[i] + " " + units[i + 1]
        if not _fits(merged, room):
            raise DraftParseError("parts_count", f"{len(units)} parts, expected {lo}..{hi} for {shape}, and no two "
                                                 "neighbouring parts fit one post")
        units[i : i + 2] = [merged]
        if "merged_parts" not in repairs:
            repairs.append("merged_parts")
    return units, repairs


def repair_parts(raw: Sequence[str], request: DraftRequest, *, limit: int = TWEET_LIMIT
                 ) -> tuple[list[str], list[str]]:
    """``raw`` as the parts ``request`` asks for, and the names of the repairs it took (see the module docstring).
    Raises `DraftParseError` (reason ``empty``, ``parts_count`` or ``too_long``) when no free repair makes it fit."""
    repairs: list[str] = []
    parts = [p.strip() for p in raw]
    if any(not p for p in parts):
        parts = [p for p in parts if p]
        repairs.append("dropped_empty_parts")
    if not parts:
        raise DraftParseError("empty", "no part with text")
    lo, hi = request.parts_range
    shape = f"{request.kind}/{request.decision_type}"
    if hi == 1:
        text = parts[0]
        if len(parts) > 1:
            text = " ".join(strip_numbering(p) for p in parts)
            if not _fits(text, limit):
                raise DraftParseError(
                    "parts_count", f"{len(parts)} parts, expected 1 for {shape}, too long for one post when joined")
            repairs.append("joined_parts")
        if not _fits(text, limit):
            kept = _leading_sentences(text, limit)
            if kept is None:
                raise DraftParseError("too_long", f"{weighted_length(text)} weighted characters, limit {limit}")
            text = kept
            repairs.append("dropped_sentences")
        return [text], repairs

    if lo <= len(parts) <= hi and all(_fits(p, limit) for p in parts):
        return parts, repairs
    style = _numbering_style(parts) if len(parts) > 1 else None
    room = limit - _NUMBERING_ROOM if style else limit
    bodies = [strip_numbering(p) if style else p for p in parts]
    try:  # keep every sentence: split what is too long, then merge neighbours while there are too many parts
        units, more = _split_then_merge(bodies, room, hi, shape, lo)
    except DraftParseError:
        if all(_fits(b, room) for b in bodies):
            raise
        # too much text for the parts allowed: each part too long keeps its leading sentences instead
        trimmed = [b if _fits(b, room) else _leading_sentences(b, room) for b in bodies]
        if any(t is None for t in trimmed):
            raise
        units, more = _split_then_merge([t for t in trimmed if t is not None], room, hi, shape, lo)
        more = ["dropped_sentences", *more]
    repairs += more
    while len(units) < lo:
        splittable = [(weighted_length(u), i) for i, u in enumerate(units) if len(sentences(u)) > 1]
        if not splittable:
            raise DraftParseError("parts_count", f"{len(units)} part(s), expected {lo}..{hi} for {shape}")
        _, i = max(splittable)
        ss = sentences(units[i])
        half = max(1, len(ss) // 2)
        units[i : i + 1] = [" ".join(ss[:half]), " ".join(ss[half:])]
        if "split_parts" not in repairs:
            repairs.append("split_parts")
    if style:
        n = len(units)
        units = [style.format(i=i, n=n) + u for i, u in enumerate(units, start=1)]
    return units, list(dict.fromkeys(repairs))


class _RawDraft(msgspec.Struct, forbid_unknown_fields=False):
    parts: list[str]
    hook: str | None = None


_FENCE_OPEN = ("```json", "```JSON", "```")


def check_parts(raw: Sequence[str], request: DraftRequest, *, limit: int = TWEET_LIMIT) -> list[str]:
    """``raw`` (whitespace trimmed) when it is exactly the shape asked for, with no repair; else `DraftParseError`
    (what every answer met before the free repairs existed)."""
    parts = [p.strip() for p in raw]
    lo, hi = request.parts_range
    if not lo <= len(parts) <= hi:
        raise DraftParseError("parts_count", f"{len(parts)} parts, expected {lo}..{hi} for "
                                             f"{request.kind}/{request.decision_type}")
    if any(not p for p in parts):
        raise DraftParseError("empty", "an empty part")
    if any(not _fits(p, limit) for p in parts):
        raise DraftParseError("too_long", f"a part over {limit} weighted characters")
    return parts


def parse_draft_repaired(content: str | None, request: DraftRequest, *, repair: bool = True
                         ) -> tuple[Draft, list[str]]:
    """The model's JSON answer as a `Draft`, after the free repairs (``shared.llm.shape.repair_parts``; a JSON
    answer in a Markdown code fence is taken out of it, ``unfenced``), and the names of the repairs made.
    `DraftParseError` (with its ``reason``) when even so it is not the shape asked for. ``repair=False``
    accepts only an answer of exactly the shape asked for (`check_parts`; for comparisons)."""
    if not content or not content.strip():
        raise DraftParseError("empty", "empty content")
    text = content.strip()
    repairs: list[str] = []
    if repair and text.startswith("```") and text.endswith("```") and len(text) > 6:
        opener = next(f for f in _FENCE_OPEN if text.startswith(f))
        text = text[len(opener):-3].strip()
        repairs.append("unfenced")
    try:
        raw = msgspec.json.decode(text.encode(), type=_RawDraft)
    except msgspec.DecodeError as exc:
        raise DraftParseError("not_json", f"not a draft JSON: {exc}") from None
    if repair:
        parts, more = repair_parts(raw.parts, request)
    else:
        parts, more = check_parts(raw.parts, request), []
    hook = raw.hook.strip() if raw.hook and raw.hook.strip() else None
    return Draft(parts=parts, topic=request.topic, angle=request.angle, hook=hook), repairs + more
