"""Ridge and logistic predictors: exact answers, recovery, held-out metrics, and honest refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.learning import predictors as P
from shared.learning.arms import DEFAULT_ANGLES, DEFAULT_TOPICS

pytestmark = pytest.mark.unit


def _features(rng: np.random.Generator) -> dict:
    return {
        "topic": DEFAULT_TOPICS[int(rng.integers(len(DEFAULT_TOPICS)))],
        "angle": DEFAULT_ANGLES[int(rng.integers(len(DEFAULT_ANGLES)))],
        "decision_type": ["single", "thread", "reply"][int(rng.integers(3))],
        "hour": int(rng.integers(24)),
        "weighted_length": int(rng.integers(40, 280)),
        "has_question": bool(rng.random() < 0.3),
        "has_number": bool(rng.random() < 0.4),
        "n_parts": int(rng.integers(1, 5)),
        "quality_score": float(rng.uniform(0.6, 1.0)),
    }


def _rows(n: int, seed: int = 0, noise: float = 0.002) -> list[P.FeatureRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f = _features(rng)
        er = 0.02 + 0.02 * (f["angle"] == "data") + 0.01 * f["has_question"] + rng.normal(0, noise)
        rows.append(P.FeatureRow(decision_id=f"d{i}", features=f, er=max(er, 0.0)))
    return rows


def test_feature_vector_is_stable_and_documented():
    names, values = P.feature_vector(
        {
            "topic": "productivity",
            "angle": "story",
            "decision_type": "thread",
            "hour": 6,
            "weighted_length": 200,
            "has_question": True,
            "has_number": False,
            "n_parts": 3,
            "quality_score": 0.8,
        }
    )
    assert names == P.FEATURE_NAMES and len(values) == len(names) == len(set(names))
    v = dict(zip(names, values, strict=True))
    assert v["topic=productivity"] == 1.0 and sum(v[f"topic={t}"] for t in DEFAULT_TOPICS) == 1.0
    assert v["angle=story"] == 1.0 and sum(v[f"angle={a}"] for a in DEFAULT_ANGLES) == 1.0
    assert (v["type=thread"], v["type=single"], v["type=reply"]) == (1.0, 0.0, 0.0)
    assert v["hour_sin"] == pytest.approx(1.0) and v["hour_cos"] == pytest.approx(0.0, abs=1e-12)
    assert (v["weighted_length"], v["has_question"], v["has_number"], v["n_parts"], v["quality_score"]) == (
        200.0,
        1.0,
        0.0,
        3.0,
        0.8,
    )
    # unknown topic: all zeros; missing numbers: NaN (missing, imputed at training)
    _, v2 = P.feature_vector({"topic": "gardening", "decision_type": "reply"})
    d2 = dict(zip(names, v2, strict=True))
    assert sum(d2[f"topic={t}"] for t in DEFAULT_TOPICS) == 0.0
    assert math.isnan(d2["hour_sin"]) and math.isnan(d2["quality_score"])
    with pytest.raises(ValueError):
        P.feature_vector({"weighted_length": "long"})


def test_standardize_handles_constant_and_missing_columns():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, np.nan], [5.0, 5.0, np.nan], [np.nan, 5.0, np.nan]])
    Z, means, stds = P.standardize(X)
    assert means[0] == pytest.approx(3.0) and stds[0] == pytest.approx(math.sqrt(8 / 3))
    assert means[1] == 5.0 and stds[1] == 1.0 and np.all(Z[:, 1] == 0.0)
    assert stds[2] == 1.0 and np.all(Z[:, 2] == 0.0)
    assert Z[3, 0] == 0.0  # the missing value sits at the mean
    assert np.all(np.isfinite(Z))


def test_ridge_equals_the_augmented_least_squares_answer():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 5)) * [1, 2, 3, 0.5, 10] + [0, 1, -2, 3, 5]
    y = rng.normal(size=40)
    alpha = 2.5
    b0, coef = P.fit_ridge(X, y, alpha)
    # independent answer: min ||[1 X] w - y||² + alpha ||w[1:]||² as one least-squares problem
    A = np.vstack(
        [np.hstack([np.ones((40, 1)), X]), np.hstack([np.zeros((5, 1)), math.sqrt(alpha) * np.eye(5)])]
    )
    b = np.concatenate([y, np.zeros(5)])
    w, *_ = np.linalg.lstsq(A, b, rcond=None)
    assert b0 == pytest.approx(w[0], abs=1e-10)
    np.testing.assert_allclose(coef, w[1:], atol=1e-10)
    # alpha = 0 is ordinary least squares
    b0, coef = P.fit_ridge(X, y, 0.0)
    w, *_ = np.linalg.lstsq(np.hstack([np.ones((40, 1)), X]), y, rcond=None)
    np.testing.assert_allclose([b0, *coef], w, atol=1e-10)


def test_ridge_recovers_known_coefficients_on_noiseless_data():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(60, 4))
    y = 0.7 + X @ np.array([1.5, -2.0, 0.0, 3.25])
    b0, coef = P.fit_ridge(X, y, 0.0)
    assert b0 == pytest.approx(0.7, abs=1e-10)
    np.testing.assert_allclose(coef, [1.5, -2.0, 0.0, 3.25], atol=1e-10)
    b0_s, coef_s = P.fit_ridge(X, y, 1e-8)  # a tiny penalty barely moves it
    np.testing.assert_allclose(coef_s, coef, atol=1e-6)


def test_ridge_refuses_a_singular_system():
    X = np.hstack([np.ones((10, 1)), np.arange(10.0)[:, None], 2 * np.arange(10.0)[:, None]])
    with pytest.raises(P.FitError) as exc:
        P.fit_ridge(X, np.arange(10.0), 0.0)
    assert exc.value.reason == P.SINGULAR_MATRIX


def test_logistic_recovers_known_coefficients_on_a_large_sample():
    rng = np.random.default_rng(13)
    n = 30000
    X = rng.normal(size=(n, 3))
    true_w, true_b = np.array([1.0, -2.0, 0.5]), -0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ true_w + true_b)))).astype(float)
    b0, coef = P.fit_logistic(X, y, l2=1e-6)
    assert b0 == pytest.approx(true_b, abs=0.06)
    np.testing.assert_allclose(coef, true_w, atol=0.08)
    # the penalty shrinks the coefficients towards 0, not the intercept
    _, coef_pen = P.fit_logistic(X, y, l2=5000.0)
    assert np.all(np.abs(coef_pen) < np.abs(coef))


def test_logistic_refuses_one_class_and_reports_non_convergence():
    X = np.random.default_rng(14).normal(size=(30, 2))
    with pytest.raises(P.FitError) as exc:
        P.fit_logistic(X, np.ones(30))
    assert exc.value.reason == P.SINGLE_CLASS
    # perfectly separable with no penalty: the coefficients run off to infinity
    y = (X[:, 0] > 0).astype(float)
    with pytest.raises(P.FitError) as exc:
        P.fit_logistic(X, y, l2=0.0, max_iter=15)
    assert exc.value.reason in (P.NOT_CONVERGED, P.SINGULAR_MATRIX)


def test_metric_helpers():
    assert P.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert P.roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert P.roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None
    m = P.regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["r2"] == pytest.approx(1 - 1 / 2)
    assert "r2" not in P.regression_metrics(np.array([2.0, 2.0]), np.array([1.0, 2.0]))
    c = P.classification_metrics(np.array([1.0, 0.0]), np.array([0.9, 0.2]))
    assert c["accuracy"] == 1.0 and c["auc"] == 1.0
    assert c["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    assert "auc" not in P.classification_metrics(np.array([1.0, 1.0]), np.array([0.9, 0.2]))


def test_holdout_split_is_deterministic_and_disjoint():
    tr, ho = P.holdout_split(100, seed=3)
    tr2, ho2 = P.holdout_split(100, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(ho, ho2)
    assert len(ho) == 25 and set(tr).isdisjoint(ho) and sorted([*tr, *ho]) == list(range(100))
    assert not np.array_equal(P.holdout_split(100, seed=4)[1], ho)
    assert len(P.holdout_split(20, seed=0)[1]) == P.MIN_HOLDOUT


def test_train_predictors_fits_both_and_learns_the_signal():
    rows = _rows(400, seed=1)
    result = P.train_predictors(rows, seed=5)
    assert isinstance(result, P.Trained)
    assert {p.kind for p in result.predictors} == {P.RIDGE_KIND, P.LOGISTIC_KIND} and result.skipped == {}
    assert result.n_train == 300 and result.n_holdout == 100
    assert set(result.metrics) == {
        "ridge_er.mae",
        "ridge_er.rmse",
        "ridge_er.r2",
        "logistic_success.log_loss",
        "logistic_success.accuracy",
        "logistic_success.auc",
    }
    assert result.ridge.metrics["r2"] > 0.8 and result.logistic.metrics["auc"] > 0.8
    base = {"topic": "ai_tools", "decision_type": "single", "hour": 9, "weighted_length": 150, "n_parts": 1}
    data_q = P.predict_er(result, {**base, "angle": "data", "has_question": True})
    story = P.predict_er(result, {**base, "angle": "story", "has_question": False})
    assert data_q == pytest.approx(0.05, abs=0.006) and story == pytest.approx(0.02, abs=0.006)
    assert P.predict_success(result, {**base, "angle": "data", "has_question": True}) > 0.9
    assert P.predict_success(result, {**base, "angle": "story", "has_question": False}) < 0.1
    # a model.updated event's PredictorState predicts the same numbers
    state = P.predictor_state(result.ridge)
    assert P.predict_er(state, {**base, "angle": "data", "has_question": True}) == pytest.approx(data_q)
    assert P.predict_success(state, base) is None  # a ridge record has no logistic


def test_held_out_metrics_are_measured_on_rows_not_used_for_fitting():
    rows = _rows(120, seed=2)
    result = P.train_predictors(rows, seed=9)
    assert isinstance(result, P.Trained)
    assert set(result.train_ids).isdisjoint(result.holdout_ids)
    assert len(result.train_ids) + len(result.holdout_ids) == len(rows) == result.n_train + result.n_holdout
    # refitting by hand on the training rows only and scoring the held-out rows gives the same numbers
    by_id = {r.decision_id: r for r in rows}
    X_tr = P.feature_matrix([by_id[i].features for i in result.train_ids])
    y_tr = np.array([by_id[i].er for i in result.train_ids])
    X_ho = P.feature_matrix([by_id[i].features for i in result.holdout_ids])
    y_ho = np.array([by_id[i].er for i in result.holdout_ids])
    Z_tr, means, stds = P.standardize(X_tr)
    b0, coef = P.fit_ridge(Z_tr, y_tr, P.DEFAULT_RIDGE_ALPHA)
    expected = P.regression_metrics(y_ho, b0 + P.apply_standardization(X_ho, means, stds) @ coef)
    assert result.ridge.metrics == pytest.approx(expected)
    np.testing.assert_allclose(result.ridge.coefficients, coef)
    # changing a held-out row's outcome moves the metrics and not the fit
    victim = result.holdout_ids[0]
    changed = [
        P.FeatureRow(
            decision_id=r.decision_id, features=r.features, er=r.er + 0.5 if r.decision_id == victim else r.er
        )
        for r in rows
    ]
    again = P.train_predictors(changed, seed=9)
    assert again.ridge.coefficients == result.ridge.coefficients
    assert again.ridge.metrics["mae"] > result.ridge.metrics["mae"]


@pytest.mark.parametrize(
    ("make_rows", "reason"),
    [
        (lambda: _rows(P.MIN_ROWS - 1), P.TOO_FEW_ROWS),
        (
            lambda: [*_rows(40)[:-1], P.FeatureRow(decision_id="x", features={}, er=math.nan)],
            P.NON_FINITE_INPUT,
        ),
        (
            lambda: [
                *_rows(40)[:-1],
                P.FeatureRow(decision_id="x", features={"weighted_length": math.inf}, er=0.1),
            ],
            P.NON_FINITE_INPUT,
        ),
        (
            lambda: [*_rows(40)[:-1], P.FeatureRow(decision_id="x", features={"n_parts": "two"}, er=0.1)],
            P.INVALID_INPUT,
        ),
        (
            lambda: [
                P.FeatureRow(decision_id=str(i), features={"n_parts": 1}, er=0.01 * (i % 3))
                for i in range(40)
            ],
            P.ZERO_VARIANCE_FEATURES,
        ),
        (
            lambda: [
                P.FeatureRow(decision_id=r.decision_id, features=r.features, er=0.02) for r in _rows(40)
            ],
            P.ZERO_VARIANCE_TARGET + "+" + P.SINGLE_CLASS,
        ),
    ],
)
def test_degenerate_data_trains_nothing_and_invents_no_metric(make_rows, reason):
    result = P.train_predictors(make_rows(), seed=0)
    assert isinstance(result, P.NotTrained)
    assert result.reason == reason and result.detail
    assert not hasattr(result, "metrics") and not hasattr(result, "predictors")


def test_single_class_publishes_the_ridge_alone_with_its_reason():
    # every ER below the threshold: ER varies (ridge fits) but "success" never happens (no logistic)
    rows = [P.FeatureRow(decision_id=r.decision_id, features=r.features, er=r.er * 0.3) for r in _rows(80)]
    result = P.train_predictors(rows, seed=1)
    assert isinstance(result, P.Trained)
    assert [p.kind for p in result.predictors] == [P.RIDGE_KIND]
    assert result.skipped == {P.LOGISTIC_KIND: P.SINGLE_CLASS}
    assert result.logistic is None and not any(k.startswith("logistic") for k in result.metrics)
    assert P.predict_success(result, rows[0].features) is None
    assert P.predict_er(result, rows[0].features) is not None


def test_no_r2_or_auc_when_the_held_out_rows_cannot_measure_them():
    # ER varies on training rows but is the same on every held-out row: R² and AUC are undefined there
    rows = _rows(60, seed=3)
    _, hold = P.holdout_split(len(rows), seed=2)
    held = set(int(i) for i in hold)
    rows = [
        P.FeatureRow(decision_id=r.decision_id, features=r.features, er=0.025 if i in held else r.er)
        for i, r in enumerate(rows)
    ]
    result = P.train_predictors(rows, seed=2)
    assert isinstance(result, P.Trained)
    assert set(result.ridge.metrics) == {"mae", "rmse"}
    assert set(result.logistic.metrics) == {"log_loss", "accuracy"}


def test_predict_without_a_model_or_predictor_is_none():
    assert P.predict_er(None, {}) is None
    assert P.predict_er(P.NotTrained(reason="too_few_rows"), {}) is None

    class EmptyModel:
        predictors: list = []

    assert P.predict_er(EmptyModel(), {"topic": "ai_tools"}) is None
