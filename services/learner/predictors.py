"""The learner's side of the predictors: a decision's features as ``shared.learning.predictors`` reads them,
and the fit turned into what ``model.updated`` carries (only what was fit, only measured held-out metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.events import PredictorState
from shared.learning.arms import CONTENT_SCOPE, split_arm
from shared.learning.predictors import FeatureRow, NotTrained, predictor_state, train_predictors

from .domain import Sample


def decision_features(sample: Sample) -> dict[str, Any]:
    """The planner's ``features`` dict, with the decision's own fields on top (topic, angle, type, the hour
    the post went out, quality score, number of parts). Without its ``decision.queued`` (e.g. aged out of
    the stream) topic and angle come from the arm."""
    info = sample.info
    out: dict[str, Any] = dict(info.features) if info else {}
    out["decision_type"] = sample.decision_type
    if info is not None:
        out.update(topic=info.topic, angle=info.angle, n_parts=info.n_parts)
        if info.quality_score is not None:
            out["quality_score"] = info.quality_score
    elif sample.scope == CONTENT_SCOPE:
        try:
            out["topic"], out["angle"] = split_arm(sample.arm)
        except ValueError:
            pass
    if sample.hour is not None:
        out["hour"] = sample.hour
    return out


def fit_predictors(
    samples: Sequence[Sample], *, threshold: float, seed: int
) -> tuple[list[PredictorState], str | None]:
    """Ridge (ER) and logistic (success) on the samples; ``(predictors, why some or all were not published)``."""
    rows = [
        FeatureRow(decision_id=s.decision_id, features=_numeric_safe(decision_features(s)), er=s.er)
        for s in samples
    ]
    result = train_predictors(rows, seed=seed, threshold=threshold)
    if isinstance(result, NotTrained):
        return [], f"{result.reason}: {result.detail}" if result.detail else result.reason
    skipped = "; ".join(f"{kind}: {reason}" for kind, reason in sorted(result.skipped.items())) or None
    return [predictor_state(p) for p in result.predictors], skipped


_CATEGORICAL = frozenset({"topic", "angle", "decision_type"})


def _numeric_safe(features: dict[str, Any]) -> dict[str, Any]:
    """Drop values the predictors cannot read as numbers (a planner's free-text extra, say) instead of
    failing the whole fit; the categorical keys stay as strings."""
    out: dict[str, Any] = {}
    for k, v in features.items():
        if k in _CATEGORICAL or v is None or isinstance(v, bool | int | float):
            out[k] = v
    return out
