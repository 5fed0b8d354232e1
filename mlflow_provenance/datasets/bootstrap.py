"""Confidence intervals for evaluation metrics by bootstrap (percentile method).

``n`` resamples of the (y_true, y_pred) pairs with replacement, drawn from
``numpy.random.default_rng(seed)``; the interval is the (1-c)/2 and (1+c)/2 quantiles of
the metric over the resamples. The seed, ``n`` and the confidence are recorded beside the
interval, so anyone can recompute it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from mlflow_provenance.datasets.records import RecordError

MetricFn = Callable[[Any, Any], float]


def _accuracy(y_true: Any, y_pred: Any) -> float:
    return float((y_true == y_pred).mean())


def _mae(y_true: Any, y_pred: Any) -> float:
    import numpy as np

    return float(np.abs(y_true - y_pred).mean())


def _mse(y_true: Any, y_pred: Any) -> float:
    return float(((y_true - y_pred) ** 2).mean())


def _rmse(y_true: Any, y_pred: Any) -> float:
    return _mse(y_true, y_pred) ** 0.5


def _r2(y_true: Any, y_pred: Any) -> float:
    total = float(((y_true - y_true.mean()) ** 2).sum())
    return 1.0 - float(((y_true - y_pred) ** 2).sum()) / total if total else float("nan")


#: Metrics whose interval can be computed from ``y_true``/``y_pred`` without being told how.
BUILTIN_METRICS: dict[str, MetricFn] = {
    "accuracy": _accuracy,
    "error_rate": lambda t, p: 1.0 - _accuracy(t, p),
    "mae": _mae,
    "mean_absolute_error": _mae,
    "mse": _mse,
    "mean_squared_error": _mse,
    "rmse": _rmse,
    "root_mean_squared_error": _rmse,
    "r2": _r2,
    "r2_score": _r2,
}


def bootstrap_intervals(
    metrics: Mapping[str, float],
    y_true: Any,
    y_pred: Any,
    *,
    seed: int,
    n: int = 1000,
    confidence: float = 0.95,
    metric_fns: Mapping[str, MetricFn] | None = None,
) -> dict[str, dict[str, Any]]:
    """Percentile-bootstrap intervals for each metric that has a function.

    Raises:
        RecordError: mismatched or empty ``y_true``/``y_pred``, a bad ``n`` or ``confidence``.
    """
    import numpy as np

    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape[0] == 0 or truth.shape[0] != predicted.shape[0]:
        raise RecordError(f"y_true and y_pred must be non-empty and of equal length, got {truth.shape[0]} and {predicted.shape[0]}")
    if not isinstance(n, int) or n < 10:
        raise RecordError(f"n_bootstrap must be an integer of at least 10, got {n!r}")
    if not 0.5 <= confidence < 1:
        raise RecordError(f"confidence must be in [0.5, 1), got {confidence!r}")
    functions = {**BUILTIN_METRICS, **(metric_fns or {})}
    rng = np.random.default_rng(seed)
    size = truth.shape[0]
    indices = rng.integers(0, size, size=(n, size))
    result: dict[str, dict[str, Any]] = {}
    for name in metrics:
        fn = functions.get(name)
        if fn is None:
            continue
        samples = np.array([fn(truth[i], predicted[i]) for i in indices], dtype=float)
        interval: dict[str, Any] = {"confidence": confidence, "method": "bootstrap-percentile",
                                    "n_bootstrap": n, "seed": seed, "samples": size}
        if np.isnan(samples).all():
            interval.update(low=None, high=None, reason=f"{name} is undefined on every resample (e.g. constant y_true)")
        else:
            low, high = np.nanquantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
            interval.update(low=float(low), high=float(high))
        result[name] = interval
    return result
