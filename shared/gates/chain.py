"""The gate chain: quality -> claims -> uniqueness -> rotation, stopping at the first block, failing closed.

The claims gate runs only when a ``ClaimPolicy`` is given (the caller gives one for drafts of the real LLM);
with ``flag_claims`` it never blocks, it flags (``flagged_for_approval``) what it would have blocked.

Every gate call is guarded: an exception never lets a draft through. In live mode it blocks with reason
``gate_error:<gate>:<ExceptionName>``; in shadow mode it blocks the same way and the result is marked
``details.shadow=True``. The chain is pure apart from reading the index and window it is given; the caller
records a queued decision into both (``index.add``, ``window.add``) when it emits ``decision.queued``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from .claims import ClaimPolicy, claims_gate
from .quality import quality_gate
from .result import GateResult
from .rotation import DEFAULT_MIN_SAMPLE, RotationWindow, rotation_gate
from .text import content_hash as compute_content_hash
from .uniqueness import UniquenessIndex, uniqueness_gate

GATES = ("quality", "claims", "uniqueness", "rotation")


class GateConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds: ``MIN_QUALITY_SCORE``, ``DUP_COSINE_THRESHOLD`` and the rotation caps of the seed."""

    min_quality_score: float = 0.7
    dup_cosine_threshold: float = 0.85
    topic_max: float = 0.35
    angle_max: float = 0.40
    min_sample: int = DEFAULT_MIN_SAMPLE
    #: the account profile's banned phrases (a hard defect of the quality gate)
    banned_phrases: tuple[str, ...] = ()


class ChainOutcome(msgspec.Struct, frozen=True):
    passed: bool
    results: list[GateResult]
    blocked_by: GateResult | None

    def result(self, gate: str) -> GateResult | None:
        return next((r for r in self.results if r.gate == gate), None)


def guarded(gate: str, call: Callable[[], GateResult], *, live: bool) -> GateResult:
    """Run one gate; any exception (or a non-GateResult answer) becomes a block, never a pass."""
    try:
        result = call()
        if not isinstance(result, GateResult):
            raise TypeError(f"gate {gate} returned {type(result).__name__}, not GateResult")
        return result
    except Exception as exc:  # fail closed: whatever went wrong, the draft does not pass
        return GateResult(
            gate,
            False,
            f"gate_error:{gate}:{type(exc).__name__}",
            None,
            {"error": str(exc)[:500], "shadow": not live},
        )


def run_gate_chain(
    *,
    parts: Sequence[str],
    decision_type: str,
    embedding: Any,
    topic: str,
    angle: str,
    index: UniquenessIndex,
    window: RotationWindow,
    now: datetime,
    live: bool,
    content_hash: str | None = None,
    config: GateConfig | None = None,
    exclude: Iterable[str] = (),
    claims: ClaimPolicy | None = None,
    flag_claims: bool = False,
) -> ChainOutcome:
    """Run quality, claims (when ``claims`` is given), uniqueness and rotation on one draft; stop at the first
    block.

    ``embedding`` is the draft's vector (array or float32 bytes); ``content_hash`` defaults to the hash of
    ``parts``; ``exclude`` lists decision ids to ignore in the uniqueness index (e.g. the draft's own on replay).
    """
    cfg = config or GateConfig()
    part_list = list(parts)
    excluded = tuple(exclude)

    def uniqueness() -> GateResult:
        h = content_hash if content_hash is not None else compute_content_hash(part_list)
        return uniqueness_gate(
            embedding, h, index, threshold=cfg.dup_cosine_threshold, now=now, exclude=excluded
        )

    steps: list[tuple[str, Callable[[], GateResult]]] = [
        (
            "quality",
            lambda: quality_gate(part_list, min_score=cfg.min_quality_score, decision_type=decision_type,
                                 account_banned=cfg.banned_phrases),
        ),
    ]
    if claims is not None:
        policy = claims
        steps.append(("claims", lambda: claims_gate(part_list, policy, flag_only=flag_claims)))
    steps += [
        ("uniqueness", uniqueness),
        (
            "rotation",
            lambda: rotation_gate(
                topic,
                angle,
                window,
                now=now,
                topic_max=cfg.topic_max,
                angle_max=cfg.angle_max,
                min_sample=cfg.min_sample,
            ),
        ),
    ]
    results: list[GateResult] = []
    for gate, call in steps:
        result = guarded(gate, call, live=live)
        results.append(result)
        if not result.passed:
            return ChainOutcome(False, results, result)
    return ChainOutcome(True, results, None)


def format_block_line(decision_id: str, result: GateResult) -> str:
    """The seed's log line: ``[GATE_CHAIN] ⛔ Blocked (<gate>) decision_id=..., reason=..., score=0.000``."""
    score = float("nan") if result.score is None else float(result.score)
    return (
        f"[GATE_CHAIN] \u26d4 Blocked ({result.gate}) decision_id={decision_id}, "
        f"reason={result.reason}, score={score:.3f}"
    )
