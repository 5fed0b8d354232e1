"""Tests for bootstrap confidence intervals (mlflow_provenance.datasets.bootstrap).

Metric functions are checked against scikit-learn; one interval is recomputed here with
numpy from the documented recipe.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, r2_score

from mlflow_provenance.datasets.bootstrap import BUILTIN_METRICS, bootstrap_intervals
from mlflow_provenance.datasets.records import RecordError


def noisy_classifier(size: int, seed: int = 0, flip: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and predictions that are wrong with probability ``flip``."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, size=size)
    wrong = rng.random(size) < flip
    y_pred = np.where(wrong, 1 - y_true, y_true)
    return y_true, y_pred


def noisy_regression(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(10.0, 3.0, size=size)
    y_pred = y_true + rng.normal(0.0, 1.0, size=size)
    return y_true, y_pred


# --- metric functions against scikit-learn ----------------------------------------------------


def test_accuracy_matches_sklearn():
    y_true, y_pred = noisy_classifier(500)
    expected = accuracy_score(y_true, y_pred)
    assert BUILTIN_METRICS["accuracy"](y_true, y_pred) == pytest.approx(expected, abs=1e-12)
    assert BUILTIN_METRICS["error_rate"](y_true, y_pred) == pytest.approx(1 - expected, abs=1e-12)
    assert 0.7 < expected < 0.9  # the noise is really there


@pytest.mark.parametrize(
    "names, reference",
    [
        (("mae", "mean_absolute_error"), mean_absolute_error),
        (("mse", "mean_squared_error"), mean_squared_error),
        (("r2", "r2_score"), r2_score),
    ],
)
def test_regression_metrics_match_sklearn(names, reference):
    y_true, y_pred = noisy_regression(400)
    expected = reference(y_true, y_pred)
    for name in names:
        assert BUILTIN_METRICS[name](y_true, y_pred) == pytest.approx(expected, rel=1e-10)


def test_rmse_matches_sklearn():
    y_true, y_pred = noisy_regression(400, seed=3)
    expected = math.sqrt(mean_squared_error(y_true, y_pred))
    assert BUILTIN_METRICS["rmse"](y_true, y_pred) == pytest.approx(expected, rel=1e-10)
    assert BUILTIN_METRICS["root_mean_squared_error"](y_true, y_pred) == pytest.approx(expected, rel=1e-10)


def test_metric_functions_on_known_values():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.0, 2.0, 5.0, 2.0])
    assert BUILTIN_METRICS["accuracy"](y_true, y_pred) == 0.5
    assert BUILTIN_METRICS["mae"](y_true, y_pred) == 1.0  # (0 + 0 + 2 + 2) / 4
    assert BUILTIN_METRICS["mse"](y_true, y_pred) == 2.0  # (0 + 0 + 4 + 4) / 4
    assert BUILTIN_METRICS["rmse"](y_true, y_pred) == pytest.approx(math.sqrt(2.0))
    assert BUILTIN_METRICS["r2"](y_true, y_pred) == pytest.approx(1 - 8.0 / 5.0)  # SS_tot = 5


def test_r2_of_constant_truth_is_nan():
    y = np.array([2.0, 2.0, 2.0])
    assert math.isnan(BUILTIN_METRICS["r2"](y, np.array([1.0, 2.0, 3.0])))


def test_builtin_metric_names():
    assert set(BUILTIN_METRICS) == {
        "accuracy", "error_rate", "mae", "mean_absolute_error", "mse", "mean_squared_error",
        "rmse", "root_mean_squared_error", "r2", "r2_score",
    }


# --- intervals ------------------------------------------------------------------------------


def test_interval_recomputed_independently():
    y_true, y_pred = noisy_classifier(300, seed=5)
    seed, n, confidence = 1234, 200, 0.9
    result = bootstrap_intervals({"accuracy": 0.0}, y_true, y_pred, seed=seed, n=n, confidence=confidence)

    size = len(y_true)
    indices = np.random.default_rng(seed).integers(0, size, size=(n, size))
    samples = np.array([np.count_nonzero(y_true[i] == y_pred[i]) / size for i in indices])
    low, high = np.nanquantile(samples, [0.05, 0.95])
    assert result["accuracy"]["low"] == float(low)
    assert result["accuracy"]["high"] == float(high)


def test_regression_interval_recomputed_independently():
    y_true, y_pred = noisy_regression(150, seed=8)
    seed, n = 99, 100
    result = bootstrap_intervals({"mae": 1.0}, list(y_true), list(y_pred), seed=seed, n=n)
    indices = np.random.default_rng(seed).integers(0, 150, size=(n, 150))
    samples = [mean_absolute_error(y_true[i], y_pred[i]) for i in indices]
    low, high = np.quantile(samples, [0.025, 0.975])
    assert result["mae"]["low"] == pytest.approx(low, rel=1e-12)
    assert result["mae"]["high"] == pytest.approx(high, rel=1e-12)


def test_reproducible_with_same_seed():
    y_true, y_pred = noisy_regression(200)
    metrics = {"mae": 0.0, "r2": 0.0, "accuracy": 0.0}
    first = bootstrap_intervals(metrics, y_true, y_pred, seed=42, n=100)
    second = bootstrap_intervals(metrics, y_true, y_pred, seed=42, n=100)
    assert first == second


def test_different_seed_gives_different_interval():
    y_true, y_pred = noisy_regression(200)
    first = bootstrap_intervals({"mae": 0.0}, y_true, y_pred, seed=42, n=100)
    other = bootstrap_intervals({"mae": 0.0}, y_true, y_pred, seed=43, n=100)
    assert (first["mae"]["low"], first["mae"]["high"]) != (other["mae"]["low"], other["mae"]["high"])
    assert other["mae"]["seed"] == 43


def test_interval_contains_point_estimate():
    y_true, y_pred = noisy_classifier(500, seed=11)
    point = accuracy_score(y_true, y_pred)
    result = bootstrap_intervals({"accuracy": point}, y_true, y_pred, seed=7)
    interval = result["accuracy"]
    assert interval["low"] < point < interval["high"]
    # The binomial standard error is about 0.018; a 95% interval spans about 0.07.
    assert 0.03 < interval["high"] - interval["low"] < 0.12


def test_interval_narrows_as_sample_grows():
    widths = []
    for size in (100, 1000, 5000):
        y_true, y_pred = noisy_classifier(size, seed=size)
        interval = bootstrap_intervals({"accuracy": 0.0}, y_true, y_pred, seed=1, n=300)["accuracy"]
        widths.append(interval["high"] - interval["low"])
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 4  # width shrinks roughly as 1/sqrt(size): sqrt(50) ~ 7


def test_higher_confidence_gives_wider_interval():
    y_true, y_pred = noisy_classifier(400, seed=2)
    narrow = bootstrap_intervals({"accuracy": 0.0}, y_true, y_pred, seed=3, n=500, confidence=0.5)["accuracy"]
    wide = bootstrap_intervals({"accuracy": 0.0}, y_true, y_pred, seed=3, n=500, confidence=0.99)["accuracy"]
    assert wide["low"] < narrow["low"] <= narrow["high"] < wide["high"]


def test_recorded_fields():
    y_true, y_pred = noisy_classifier(120)
    result = bootstrap_intervals({"accuracy": 0.8}, y_true, y_pred, seed=5, n=50, confidence=0.8)
    interval = result["accuracy"]
    assert set(interval) == {"low", "high", "confidence", "method", "n_bootstrap", "seed", "samples"}
    assert interval["method"] == "bootstrap-percentile"
    assert interval["n_bootstrap"] == 50
    assert interval["seed"] == 5
    assert interval["samples"] == 120
    assert interval["confidence"] == 0.8
    assert type(interval["low"]) is float and type(interval["high"]) is float


def test_default_n_and_confidence():
    y_true, y_pred = noisy_classifier(50)
    interval = bootstrap_intervals({"accuracy": 0.8}, y_true, y_pred, seed=0)["accuracy"]
    assert interval["n_bootstrap"] == 1000
    assert interval["confidence"] == 0.95


def test_custom_metric_via_metric_fns():
    y_true, y_pred = noisy_regression(100, seed=4)

    def max_error(t, p):
        return float(np.max(np.abs(t - p)))

    result = bootstrap_intervals({"max_error": 0.0, "mae": 0.0}, y_true, y_pred, seed=1, n=60,
                                 metric_fns={"max_error": max_error})
    assert set(result) == {"max_error", "mae"}
    full = max_error(y_true, y_pred)
    # Every resample's max error is at most the full sample's.
    assert result["max_error"]["high"] <= full
    assert result["max_error"]["low"] > 0

    indices = np.random.default_rng(1).integers(0, 100, size=(60, 100))
    expected = np.quantile([np.max(np.abs(y_true[i] - y_pred[i])) for i in indices], [0.025, 0.975])
    assert result["max_error"]["low"] == pytest.approx(expected[0], rel=1e-12)
    assert result["max_error"]["high"] == pytest.approx(expected[1], rel=1e-12)


def test_metric_fns_override_builtin():
    y_true, y_pred = noisy_classifier(80)
    result = bootstrap_intervals({"accuracy": 0.0}, y_true, y_pred, seed=1, n=20,
                                 metric_fns={"accuracy": lambda t, p: 0.25})
    assert result["accuracy"]["low"] == 0.25 and result["accuracy"]["high"] == 0.25


def test_metrics_without_function_skipped():
    y_true, y_pred = noisy_classifier(80)
    result = bootstrap_intervals({"f1": 0.7, "accuracy": 0.8, "auc": 0.9}, y_true, y_pred, seed=1, n=20)
    assert set(result) == {"accuracy"}
    assert bootstrap_intervals({"f1": 0.7}, y_true, y_pred, seed=1, n=20) == {}


# --- errors ---------------------------------------------------------------------------------


def test_mismatched_lengths_rejected():
    with pytest.raises(RecordError, match="equal length"):
        bootstrap_intervals({"accuracy": 1.0}, [1, 0, 1], [1, 0], seed=0)


def test_empty_arrays_rejected():
    with pytest.raises(RecordError, match="non-empty"):
        bootstrap_intervals({"accuracy": 1.0}, [], [], seed=0)
    with pytest.raises(RecordError, match="non-empty"):
        bootstrap_intervals({"accuracy": 1.0}, np.array([]), np.array([]), seed=0)


@pytest.mark.parametrize("n", [9, 0, -5, 10.0, 100.5, "100", None])
def test_bad_n_rejected(n):
    with pytest.raises(RecordError, match="n_bootstrap"):
        bootstrap_intervals({"accuracy": 1.0}, [1, 0, 1], [1, 1, 1], seed=0, n=n)


def test_n_of_ten_allowed():
    result = bootstrap_intervals({"accuracy": 1.0}, [1, 0, 1], [1, 1, 1], seed=0, n=10)
    assert result["accuracy"]["n_bootstrap"] == 10


@pytest.mark.parametrize("confidence", [0.49, 1.0, 1.5, 0.0, -0.95, float("nan")])
def test_bad_confidence_rejected(confidence):
    with pytest.raises(RecordError, match="confidence"):
        bootstrap_intervals({"accuracy": 1.0}, [1, 0, 1], [1, 1, 1], seed=0, n=10, confidence=confidence)


def test_confidence_of_one_half_allowed():
    result = bootstrap_intervals({"accuracy": 1.0}, [1, 0, 1, 1], [1, 1, 1, 0], seed=0, n=10, confidence=0.5)
    assert result["accuracy"]["confidence"] == 0.5
