"""Predictors of a decision's engagement, in numpy: ridge regression of ER, logistic regression of success.

**Features** (:func:`feature_vector`, names in :data:`FEATURE_NAMES`, a stable order): one-hot topic over
``DEFAULT_TOPICS`` and one-hot angle over ``DEFAULT_ANGLES`` (a topic or angle outside the catalogue is all
zeros), one-hot ``decision_type`` (single / thread / reply), ``hour_sin`` / ``hour_cos`` of the hour of day,
``weighted_length``, ``has_question``, ``has_number``, ``n_parts``, ``quality_score``. The decision's
``features`` dict supplies them under the keys ``topic``, ``angle``, ``decision_type``, ``hour``,
``weighted_length``, ``has_question``, ``has_number``, ``n_parts``, ``quality_score``. A missing numeric
value (``None`` or absent) is *missing*: training fills it with the training rows' mean of that column
(zero after standardization), and so does prediction.

**Training** (:func:`train_predictors`): rows are split into training and held-out rows by a seeded
permutation (a quarter held out, at least ``MIN_HOLDOUT``). Features are standardized with the training
rows' means and standard deviations (a constant column keeps std 1, so it is all zeros and its coefficient
is 0). Ridge is solved in closed form with the intercept unpenalised; logistic by Newton's method (IRLS)
with an L2 penalty, the intercept unpenalised. Success = ER strictly above the threshold.

**Honesty rule.** Publish only what was fit, and only metrics that were measured on held-out rows:

- fewer than ``MIN_ROWS`` rows, a non-finite ER or feature, a feature that is not a number, or no feature
  that varies: nothing is trained (:class:`NotTrained` with the reason);
- ER constant on the training rows: no ridge (``zero_variance_target``); one class only among the training
  rows: no logistic (``single_class``); a singular system or a Newton run that does not converge: that
  predictor is not published (``singular_matrix`` / ``not_converged``). If one predictor survives it is
  published alone (:class:`Trained` with ``skipped`` naming the other's reason); if none does, NotTrained;
- held-out metrics: ridge ``mae``, ``rmse`` and ``r2`` (``r2`` only when the held-out ER varies);
  logistic ``log_loss``, ``accuracy`` and ``auc`` (``auc`` only when both classes are held out). A metric
  that cannot be measured is absent, never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from .arms import DEFAULT_ANGLES, DEFAULT_TOPICS
from .metrics import SUCCESS_ER_THRESHOLD

DECISION_TYPES: tuple[str, ...] = ("single", "thread", "reply")
NUMERIC_FEATURES: tuple[str, ...] = (
    "weighted_length",
    "has_question",
    "has_number",
    "n_parts",
    "quality_score",
)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"topic={t}" for t in DEFAULT_TOPICS),
    *(f"angle={a}" for a in DEFAULT_ANGLES),
    *(f"type={d}" for d in DECISION_TYPES),
    "hour_sin",
    "hour_cos",
    *NUMERIC_FEATURES,
)

RIDGE_KIND = "ridge_er"
LOGISTIC_KIND = "logistic_success"

#: Fewest rows worth training on: 15 to fit, 5 to measure.
MIN_ROWS = 20
MIN_HOLDOUT = 5
HOLDOUT_FRACTION = 0.25
DEFAULT_RIDGE_ALPHA = 1.0
DEFAULT_LOGISTIC_L2 = 1.0
DEFAULT_MAX_ITER = 50
#: A system matrix whose condition number is above this is treated as singular.
MAX_CONDITION = 1e12

# Reasons (stable strings: they travel in ``model.updated.predictor_skipped_reason``).
TOO_FEW_ROWS = "too_few_rows"
NON_FINITE_INPUT = "non_finite_input"
INVALID_INPUT = "invalid_input"
ZERO_VARIANCE_FEATURES = "zero_variance_features"
ZERO_VARIANCE_TARGET = "zero_variance_target"
SINGLE_CLASS = "single_class"
SINGULAR_MATRIX = "singular_matrix"
NOT_CONVERGED = "not_converged"
NON_FINITE_FIT = "non_finite_fit"


class FitError(Exception):
    """A fit that produced no model; ``reason`` is one of the reason strings above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ----- data ---------------------------------------------------------------------------------------------
class FeatureRow(msgspec.Struct, frozen=True, kw_only=True):
    """One decision with a measured outcome: its ``features`` dict (see module doc) and its ER."""

    decision_id: str
    features: dict[str, Any]
    er: float


class FittedPredictor(msgspec.Struct, frozen=True, kw_only=True):
    """A fitted linear model on standardized features: ``intercept + coefficients · (x - means) / stds``.

    For ``ridge_er`` that is the ER; for ``logistic_success`` it is the log-odds of success. ``metrics``
    holds held-out scores actually measured; same fields as the ``PredictorState`` of ``model.updated``.
    """

    kind: str
    feature_names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    means: tuple[float, ...]
    stds: tuple[float, ...]
    metrics: dict[str, float]
    n_train: int
    n_holdout: int


class Trained(msgspec.Struct, frozen=True, kw_only=True):
    """At least one predictor was fit. ``skipped`` maps a kind that was not published to its reason."""

    predictors: tuple[FittedPredictor, ...]
    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    n_train: int
    n_holdout: int
    train_ids: tuple[str, ...]
    holdout_ids: tuple[str, ...]
    skipped: dict[str, str] = {}

    def get(self, kind: str) -> FittedPredictor | None:
        return next((p for p in self.predictors if p.kind == kind), None)

    @property
    def ridge(self) -> FittedPredictor | None:
        return self.get(RIDGE_KIND)

    @property
    def logistic(self) -> FittedPredictor | None:
        return self.get(LOGISTIC_KIND)

    @property
    def metrics(self) -> dict[str, float]:
        """Every held-out metric measured, as ``"<kind>.<metric>"``."""
        return {f"{p.kind}.{k}": v for p in self.predictors for k, v in p.metrics.items()}


class NotTrained(msgspec.Struct, frozen=True, kw_only=True):
    """Nothing was fit: no predictor, no metric. ``reason`` is a stable code, ``detail`` says more."""

    reason: str
    detail: str = ""
    skipped: dict[str, str] = {}


TrainResult = Trained | NotTrained


# ----- features ------------------------------------------------------------------------------------------
def _number(value: Any) -> float:
    """A feature value as a float; ``None`` (missing) as NaN. Strings and other types are refused."""
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float | np.integer | np.floating):
        return float(value)
    raise ValueError(f"feature value is not a number: {value!r}")


def feature_vector(decision_features: Mapping[str, Any]) -> tuple[tuple[str, ...], np.ndarray]:
    """``(FEATURE_NAMES, values)`` of one decision's features; NaN marks a missing numeric value."""
    f = decision_features
    values: list[float] = []
    topic, angle, dtype = f.get("topic"), f.get("angle"), f.get("decision_type")
    values += [1.0 if topic == t else 0.0 for t in DEFAULT_TOPICS]
    values += [1.0 if angle == a else 0.0 for a in DEFAULT_ANGLES]
    values += [1.0 if dtype == d else 0.0 for d in DECISION_TYPES]
    hour = _number(f.get("hour"))
    if math.isnan(hour):
        values += [math.nan, math.nan]
    else:
        angle_rad = 2.0 * math.pi * (hour % 24) / 24.0
        values += [math.sin(angle_rad), math.cos(angle_rad)]
    values += [_number(f.get(k)) for k in NUMERIC_FEATURES]
    return FEATURE_NAMES, np.asarray(values, dtype=float)


def feature_matrix(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Stack :func:`feature_vector` of many decisions' features into an ``(n, len(FEATURE_NAMES))`` array."""
    if not rows:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.vstack([feature_vector(r)[1] for r in rows])


# ----- pieces --------------------------------------------------------------------------------------------
def standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit and apply standardization: ``(Z, means, stds)``.

    Means and (population) standard deviations ignore NaN (missing values), which become 0 in ``Z`` (the
    mean). A column with zero variance, or with no value at all, gets std 1 and mean 0 or its constant, so
    its ``Z`` column is all zeros.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError("X must be 2-D")
    present = ~np.isnan(X)
    counts = present.sum(axis=0)
    filled = np.where(present, X, 0.0)
    means = np.divide(filled.sum(axis=0), counts, out=np.zeros(X.shape[1]), where=counts > 0)
    dev = np.where(present, X - means, 0.0)
    var = np.divide((dev**2).sum(axis=0), counts, out=np.zeros(X.shape[1]), where=counts > 0)
    stds = np.sqrt(var)
    stds = np.where(stds > 1e-12, stds, 1.0)
    return apply_standardization(X, means, stds), means, stds


def apply_standardization(X: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """``(X - means) / stds`` with NaN (missing) as 0."""
    Z = (np.asarray(X, dtype=float) - means) / stds
    return np.where(np.isnan(Z), 0.0, Z)


def _check_condition(M: np.ndarray, what: str) -> None:
    cond = np.linalg.cond(M)
    if not np.isfinite(cond) or cond > MAX_CONDITION:
        raise FitError(SINGULAR_MATRIX, f"{what} condition number {cond:.3g}")


def fit_ridge(X: np.ndarray, y: np.ndarray, alpha: float = DEFAULT_RIDGE_ALPHA) -> tuple[float, np.ndarray]:
    """Ridge regression in closed form: ``(intercept, coef)`` minimising
    ``||y - intercept - X coef||² + alpha ||coef||²`` (the intercept is not penalised).

    Solved on centred data: ``coef = (Xcᵀ Xc + alpha I)⁻¹ Xcᵀ yc``, ``intercept = ȳ - x̄ · coef``.
    Raises :class:`FitError` (``singular_matrix``) when the system cannot be solved reliably.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise ValueError("X must be (n, p) and y (n,) with n > 0")
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    x_mean, y_mean = X.mean(axis=0), y.mean()
    Xc, yc = X - x_mean, y - y_mean
    A = Xc.T @ Xc + alpha * np.eye(X.shape[1])
    _check_condition(A, "ridge normal matrix")
    try:
        coef = np.linalg.solve(A, Xc.T @ yc)
    except np.linalg.LinAlgError as exc:
        raise FitError(SINGULAR_MATRIX, str(exc)) from exc
    intercept = float(y_mean - x_mean @ coef)
    if not (np.all(np.isfinite(coef)) and math.isfinite(intercept)):
        raise FitError(NON_FINITE_FIT, "ridge coefficients")
    return intercept, coef


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    l2: float = DEFAULT_LOGISTIC_L2,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-8,
) -> tuple[float, np.ndarray]:
    """L2-penalised logistic regression by Newton's method (IRLS) with step halving: ``(intercept, coef)``
    minimising ``sum(log-loss) + l2/2 ||coef||²`` (the intercept is not penalised).

    Raises :class:`FitError`: ``single_class`` when ``y`` has one class, ``singular_matrix`` when a
    Hessian cannot be solved, ``not_converged`` after ``max_iter`` steps.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if y.shape != (n,) or n == 0:
        raise ValueError("X must be (n, p) and y (n,) with n > 0")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must be 0/1")
    if y.min() == y.max():
        raise FitError(SINGLE_CLASS, f"all {n} rows are {int(y[0])}")
    if l2 < 0 or max_iter < 1:
        raise ValueError("l2 must be >= 0 and max_iter >= 1")
    A = np.hstack([np.ones((n, 1)), X])
    penalty = np.full(p + 1, float(l2))
    penalty[0] = 0.0
    w = np.zeros(p + 1)
    base = y.mean()
    w[0] = math.log(base / (1.0 - base))

    def objective(w: np.ndarray) -> float:
        z = A @ w
        # log(1 + e^z) - y z, computed stably
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * w * w))

    f = objective(w)
    for _ in range(max_iter):
        prob = _sigmoid(A @ w)
        grad = A.T @ (prob - y) + penalty * w
        H = (A * (prob * (1.0 - prob))[:, None]).T @ A + np.diag(penalty)
        _check_condition(H, "logistic Hessian")
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError as exc:
            raise FitError(SINGULAR_MATRIX, str(exc)) from exc
        t = 1.0
        for _halving in range(30):
            w_new = w - t * step
            f_new = objective(w_new)
            if f_new <= f + 1e-12 * abs(f):
                break
            t *= 0.5
        else:
            raise FitError(NOT_CONVERGED, "no descent step found")
        w, f = w_new, f_new
        if float(grad @ step) / 2.0 < tol:  # the Newton decrement: how much more a full step could gain
            if not np.all(np.isfinite(w)):
                raise FitError(NON_FINITE_FIT, "logistic coefficients")
            return float(w[0]), w[1:]
    raise FitError(NOT_CONVERGED, f"{max_iter} Newton steps")


def holdout_split(n: int, *, seed: int, fraction: float = HOLDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, holdout_idx)`` of ``n`` rows, from a permutation seeded by ``seed`` (each sorted).

    The held-out share is ``fraction`` of the rows, at least ``MIN_HOLDOUT`` (and at least one row left
    to train on).
    """
    if n < 2:
        raise ValueError("need at least 2 rows to split")
    n_hold = min(n - 1, max(MIN_HOLDOUT, int(round(n * fraction))))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


# ----- metrics -------------------------------------------------------------------------------------------
def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``mae``, ``rmse``, and ``r2`` when ``y_true`` varies (R² is undefined for a constant target)."""
    err = np.asarray(y_true, float) - np.asarray(y_pred, float)
    out = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}
    ss_tot = float(np.sum((y_true - np.mean(y_true)) ** 2))
    if ss_tot > 1e-18:
        out["r2"] = 1.0 - float(np.sum(err**2)) / ss_tot
    return out


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); ``None`` unless both classes are present."""
    y = np.asarray(y_true, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    s = np.asarray(score, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties; bounded by len(s)
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """``log_loss``, ``accuracy`` (threshold 0.5), and ``auc`` when both classes are present."""
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(prob, dtype=float), 1e-15, 1.0 - 1e-15)
    out = {
        "log_loss": float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1.0))),
    }
    auc = roc_auc(y, p)
    if auc is not None:
        out["auc"] = auc
    return out


# ----- training ------------------------------------------------------------------------------------------
def train_predictors(
    rows: Sequence[FeatureRow],
    *,
    seed: int,
    threshold: float = SUCCESS_ER_THRESHOLD,
    alpha: float = DEFAULT_RIDGE_ALPHA,
    l2: float = DEFAULT_LOGISTIC_L2,
    max_iter: int = DEFAULT_MAX_ITER,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> TrainResult:
    """Fit ridge (ER) and logistic (success = ER > ``threshold``) on a seeded training split, measure them on
    the held-out rows; see the module doc for what is published when something is degenerate."""
    n = len(rows)
    if n < MIN_ROWS:
        return NotTrained(reason=TOO_FEW_ROWS, detail=f"{n} rows, need {MIN_ROWS}")
    try:
        X = feature_matrix([r.features for r in rows])
    except ValueError as exc:
        return NotTrained(reason=INVALID_INPUT, detail=str(exc))
    er = np.array([r.er if r.er is not None else math.nan for r in rows], dtype=float)
    bad_rows = int((~np.isfinite(er)).sum() + np.isinf(X).any(axis=1).sum())
    if bad_rows:
        return NotTrained(reason=NON_FINITE_INPUT, detail=f"{bad_rows} rows with a NaN/inf ER or feature")

    train_idx, hold_idx = holdout_split(n, seed=seed, fraction=holdout_fraction)
    Z_train, means, stds = standardize(X[train_idx])
    if not np.any(np.abs(Z_train) > 1e-12):
        return NotTrained(reason=ZERO_VARIANCE_FEATURES, detail="no feature varies over the training rows")
    Z_hold = apply_standardization(X[hold_idx], means, stds)
    y_train, y_hold = er[train_idx], er[hold_idx]
    s_train = (y_train > threshold).astype(float)
    s_hold = (y_hold > threshold).astype(float)

    names = FEATURE_NAMES
    common: dict[str, Any] = {
        "feature_names": names,
        "means": tuple(float(v) for v in means),
        "stds": tuple(float(v) for v in stds),
        "n_train": len(train_idx),
        "n_holdout": len(hold_idx),
    }
    fitted: list[FittedPredictor] = []
    skipped: dict[str, str] = {}

    if float(np.std(y_train)) <= 1e-12:
        skipped[RIDGE_KIND] = ZERO_VARIANCE_TARGET
    else:
        try:
            b0, coef = fit_ridge(Z_train, y_train, alpha)
            metrics = regression_metrics(y_hold, b0 + Z_hold @ coef)
            fitted.append(_fitted(RIDGE_KIND, b0, coef, metrics, common))
        except FitError as exc:
            skipped[RIDGE_KIND] = exc.reason

    try:
        b0, coef = fit_logistic(Z_train, s_train, l2, max_iter)
        metrics = classification_metrics(s_hold, _sigmoid(b0 + Z_hold @ coef))
        fitted.append(_fitted(LOGISTIC_KIND, b0, coef, metrics, common))
    except FitError as exc:
        skipped[LOGISTIC_KIND] = exc.reason

    if not fitted:
        detail = ", ".join(f"{k}: {v}" for k, v in skipped.items())
        reasons = list(dict.fromkeys(skipped.values()))  # ridge's reason, then logistic's
        return NotTrained(reason="+".join(reasons), detail=detail, skipped=skipped)
    return Trained(
        predictors=tuple(fitted),
        train_ids=tuple(rows[i].decision_id for i in train_idx),
        holdout_ids=tuple(rows[i].decision_id for i in hold_idx),
        skipped=skipped,
        **common,
    )


def _fitted(
    kind: str, b0: float, coef: np.ndarray, metrics: dict[str, float], common: dict[str, Any]
) -> FittedPredictor:
    finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
    return FittedPredictor(
        kind=kind, intercept=float(b0), coefficients=tuple(float(c) for c in coef), metrics=finite, **common
    )


# ----- prediction ----------------------------------------------------------------------------------------
def _find(model: Any, kind: str) -> Any | None:
    """The predictor of ``kind`` in a Trained, a ``model.updated`` event, or a single predictor record."""
    if model is None:
        return None
    if getattr(model, "kind", None) == kind:
        return model
    if getattr(model, "kind", None) is not None:
        return None
    for p in getattr(model, "predictors", None) or ():
        if getattr(p, "kind", None) == kind:
            return p
    return None


def linear_score(predictor: Any, features: Mapping[str, Any]) -> float:
    """``intercept + Σ coef · (x - mean) / std`` over the predictor's own feature names; a feature the
    predictor knows but the vector lacks (or a missing value) contributes 0 (the training mean)."""
    names, values = feature_vector(features)
    by_name = dict(zip(names, values, strict=True))
    total = float(predictor.intercept)
    for name, coef, mean, std in zip(
        predictor.feature_names, predictor.coefficients, predictor.means, predictor.stds, strict=True
    ):
        x = by_name.get(name, math.nan)
        if not math.isnan(x):
            total += float(coef) * (x - float(mean)) / float(std)
    return total


def predict_er(model: Any, features: Mapping[str, Any]) -> float | None:
    """Predicted ER of a decision, clipped to [0, 1]; ``None`` when ``model`` has no ridge predictor.

    ``model`` is a :class:`Trained`, a ``model.updated`` event (its ``predictors``), or one predictor record
    (``FittedPredictor`` / ``PredictorState``) of kind ``ridge_er``.
    """
    p = _find(model, RIDGE_KIND)
    if p is None:
        return None
    value = linear_score(p, features)
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else None


def predict_success(model: Any, features: Mapping[str, Any]) -> float | None:
    """Predicted probability that ER > threshold; ``None`` when ``model`` has no logistic predictor."""
    p = _find(model, LOGISTIC_KIND)
    if p is None:
        return None
    value = linear_score(p, features)
    return float(_sigmoid(np.array(value))) if math.isfinite(value) else None


def predictor_state(p: FittedPredictor) -> Any:
    """The ``PredictorState`` of ``model.updated`` for a fitted predictor."""
    from shared.events.model import PredictorState

    return PredictorState(
        kind=p.kind,
        feature_names=list(p.feature_names),
        coefficients=list(p.coefficients),
        intercept=p.intercept,
        means=list(p.means),
        stds=list(p.stds),
        metrics=dict(p.metrics),
        n_train=p.n_train,
        n_holdout=p.n_holdout,
    )
