"""The verdict every gate returns."""

from __future__ import annotations

from typing import Any

import msgspec


class GateResult(msgspec.Struct, frozen=True):
    """One gate's verdict on one draft.

    ``gate`` is ``quality``, ``claims``, ``uniqueness`` or ``rotation``; ``reason`` is a short token (``ok``, ``too_similar``,
    ``gate_error:<gate>:<Exception>``...); ``score`` is the gate's number (quality score, max cosine, resulting
    share), ``None`` when the gate could not compute one; ``details`` explains it.
    """

    gate: str
    passed: bool
    reason: str
    score: float | None = None
    details: dict[str, Any] = {}
