"""Events of the model aggregate: what the learner learned. Subject ``xbot.evt.model.<scope>.<name>``."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from .base import Event


class ArmState(msgspec.Struct, frozen=True, kw_only=True):
    arm: str
    scope: str
    alpha: float
    beta: float
    successes: int
    failures: int


class SlotState(msgspec.Struct, frozen=True, kw_only=True):
    hour: int
    n: int
    mean_er: float | None


class PredictorState(msgspec.Struct, frozen=True, kw_only=True):
    """A fitted predictor. Only measured numbers: ``metrics`` holds held-out scores actually computed."""

    kind: str  # "ridge_er" | "logistic_success"
    feature_names: list[str]
    coefficients: list[float]
    intercept: float
    means: list[float]
    stds: list[float]
    metrics: dict[str, float]
    n_train: int
    n_holdout: int


class ModelUpdated(Event, frozen=True, kw_only=True, tag="model.updated"):
    aggregate: ClassVar[str] = "model"
    name: ClassVar[str] = "updated"
    scope: str = "main"
    version: int
    arms: list[ArmState]
    slots: list[SlotState]
    predictors: list[PredictorState] = []
    predictor_skipped_reason: str | None = None
    outcomes_used: int
    simulated_used: bool
    success_er_threshold: float

    @property
    def aggregate_id(self) -> str:
        return self.scope
