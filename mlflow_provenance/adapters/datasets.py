"""The public logging API: ``log_dataset`` and ``log_evaluation`` (DESIGN.md §7, issue 4).

Both compute their record on the caller's side — where the data is — and hand it to the
tracking store through MLflow's own calls (``log_inputs``, ``log_batch``), so they work
the same against an embedded provenance store and a remote ``mlflow server`` running one;
the store checks each record and binds it into the ledger (:mod:`.records`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from mlflow_provenance.adapters import records as store_records
from mlflow_provenance.datasets import records
from mlflow_provenance.datasets.bootstrap import bootstrap_intervals
from mlflow_provenance.datasets.files import ContentDigest, DatasetInputError, default_cache, digest_path
from mlflow_provenance.datasets.frames import digest_data

#: ``snapshot=True`` is for small data.
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
SNAPSHOT_DIR = "provenance/datasets"


@dataclass(frozen=True)
class DatasetRecord:
    """What ``log_dataset`` recorded. ``digest`` is the data's full-content digest."""

    name: str
    digest: str
    context: str
    run_id: str
    record_digest: str
    document: dict[str, Any] = field(repr=False)

    @property
    def mlflow_digest(self) -> str:
        """The digest as MLflow's Datasets panel shows it (the first 36 hex digits)."""
        return records.mlflow_digest(self.digest)


@dataclass(frozen=True)
class EvaluationRecord:
    """What ``log_evaluation`` recorded."""

    run_id: str
    record_digest: str
    thresholds_met: bool | None
    document: dict[str, Any] = field(repr=False)


def log_dataset(
    data: Any,
    *,
    name: str,
    context: str = "training",
    source: Any = None,
    license: str | None = None,
    consent: Any = None,
    collected: Any = None,
    owner: str | None = None,
    transformations: Sequence[Any] = (),
    parents: Sequence[Any] = (),
    filters: Any = None,
    features: Any = None,
    snapshot: bool = False,
    run_id: str | None = None,
    progress: bool | None = None,
) -> DatasetRecord:
    """Record a dataset with its full-content digest, lineage and terms in the ledger, and
    log it as an input of the run (it appears in MLflow's Datasets panel).

    Args:
        data: a file or directory path, a glob, a pandas DataFrame or Series, a numpy
            array, or an ``mlflow.data`` dataset (pandas or numpy).
        name: the dataset's name.
        context: how the run uses it (training, validation, evaluation…).
        source: where the data came from (URI or description); defaults to the path.
        license: an SPDX license expression (``CC-BY-4.0``) or free text.
        consent: consent constraints (text or mapping).
        collected: the collection window, ``(start, end)`` dates or ISO 8601 times.
        owner: who is accountable for the data.
        transformations: steps that derived it: ``{"name", "code", "parameters"}`` mappings,
            names, or functions (their module, name and source digest are recorded).
        parents: the datasets it was derived from (records returned by ``log_dataset``, or
            their digests); each must already be recorded in the tracking store.
        filters: filtering criteria; features: feature-definitions version.
        snapshot: also store the data as run artifacts (files as they are, frames as
            parquet, arrays as ``.npy``) under ``provenance/datasets/<digest>/``.
        run_id: the run; default the active run.
        progress: show a progress bar while hashing (default: on a terminal, for ≥ 256 MiB).

    Raises:
        DatasetInputError: the data cannot be read or is of an unsupported type.
        RecordError: a malformed argument (license, window, transformation, parent…).
        MlflowException: no run, or the store refused the record (e.g. unknown parent).
        Nothing is written to the ledger when any of these is raised.
    """
    run_id = _run_id(run_id)
    content, default_source, extra_profile, schema, payload = _fingerprint(data, progress)
    record = records.dataset_record(
        name=name, digest=content.digest, digest_description=content.description, context=context,
        source=source if source is not None else default_source, license=license, consent=consent,
        collected=collected, owner=owner, transformations=transformations, parents=parents,
        filters=filters, features=features,
        snapshot={"artifact_path": f"{SNAPSHOT_DIR}/{content.hex[:16]}"} if snapshot else None,
    )
    client = mlflow.MlflowClient()
    if snapshot:
        _check_snapshot_size(payload, content)
    profile = {**extra_profile, store_records.PROFILE_KEY: record.document}
    source_type, source_json = _mlflow_source(record.document["source"])
    dataset = Dataset(
        name=name, digest=records.mlflow_digest(content.digest), source_type=source_type,
        source=source_json, schema=schema, profile=json.dumps(profile),
    )
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])
    if snapshot:  # only once the store accepted the record: a refusal leaves no artifact behind
        try:
            _write_snapshot(client, run_id, payload, content)
        except Exception as exc:
            raise DatasetInputError(
                f"dataset {name!r} is recorded, but its snapshot could not be written to "
                f"{SNAPSHOT_DIR}/{content.hex[:16]}: {exc}. Log the files as artifacts yourself."
            ) from exc
    return DatasetRecord(name, content.digest, context, run_id, record.digest, record.document)


def log_evaluation(
    metrics: Mapping[str, float],
    *,
    dataset: DatasetRecord | str,
    model: Any = None,
    slice: Any = None,
    seed: int | None = None,
    thresholds: Mapping[str, Any] | None = None,
    ci: Mapping[str, Sequence[float]] | None = None,
    y_true: Any = None,
    y_pred: Any = None,
    metric_fns: Mapping[str, Callable[[Any, Any], float]] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    run_id: str | None = None,
    step: int = 0,
) -> EvaluationRecord:
    """Record evaluation metrics bound to the dataset's digest, slice, seed, model and run,
    with thresholds and confidence intervals; also log them as MLflow metrics linked to
    the dataset and the model.

    Args:
        metrics: metric name → value.
        dataset: the evaluation dataset's record (from ``log_dataset``) or its digest.
        model: a logged model id (``m-…``), a model URI, or an object with ``model_id``.
        slice: which part of the data (e.g. ``{"region": "EU"}``).
        seed: the evaluation's seed; also seeds the bootstrap (a fresh one is drawn and
            recorded when ``None``).
        thresholds: ``{"accuracy": 0.9}`` (at least), or ``{"loss": {"<=": 0.2}}``.
        ci: intervals from the caller, ``{"accuracy": (0.91, 0.95)}``.
        y_true, y_pred: to compute intervals by bootstrap for metrics with a known function
            (accuracy, error_rate, mae, mse, rmse, r2) or one in ``metric_fns``.

    Raises:
        RecordError: malformed metrics, thresholds or intervals.
        MlflowException: no run, or the store refused the record (e.g. the dataset was
            never recorded). Nothing is written then.
    """
    run_id = _run_id(run_id)
    digest = dataset.digest if isinstance(dataset, DatasetRecord) else dataset
    name = dataset.name if isinstance(dataset, DatasetRecord) else None
    bootstrap_seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else secrets.randbits(32)
    intervals = {key: _caller_interval(key, value, confidence) for key, value in (ci or {}).items()}
    values = {key: _as_float(value) for key, value in metrics.items()}
    for key in intervals:
        if key not in values:
            raise records.RecordError(f"interval for {key!r}, which is not among the metrics {sorted(values)}")
    if y_true is not None or y_pred is not None:
        if y_true is None or y_pred is None:
            raise records.RecordError("pass both y_true and y_pred to compute intervals by bootstrap")
        computed = bootstrap_intervals(values, y_true, y_pred, seed=bootstrap_seed, n=n_bootstrap,
                                       confidence=confidence, metric_fns=metric_fns)
        intervals = {**computed, **intervals}
    model_ref = _model_reference(model)
    record = records.evaluation_record(
        run_id=run_id, metrics=values,
        dataset={"digest": digest, "name": name, "mlflow_digest": records.mlflow_digest(digest) if isinstance(digest, str) and ":" in digest else None},
        model=model_ref, slice=slice, seed=seed, thresholds=thresholds, ci=intervals,
    )
    now = int(time.time() * 1000)
    model_id = (model_ref or {}).get("model_id")
    link = {"dataset_name": name, "dataset_digest": records.mlflow_digest(digest)} if name else {}
    batch = [Metric(key, value, now, step, model_id=model_id, **link) for key, value in values.items()]
    tags = [mlflow.entities.RunTag(k, v) for k, v in store_records.record_tags(record).items()]
    mlflow.MlflowClient().log_batch(run_id, metrics=batch, tags=tags)
    return EvaluationRecord(run_id, record.digest, record.document["thresholds_met"], record.document)


def dataset_lineage(digest: str, *, direction: str = "downstream", tracking_uri: str | None = None) -> dict[str, Any]:
    """A dataset's lineage from the ledger: ``upstream`` (the datasets it was derived from,
    transitively) or ``downstream`` (derived datasets, the runs that used any of them and
    the models those runs produced).

    Raises:
        ConfigurationError: the tracking URI is not a provenance store.
        RecordError: ``digest`` is not a full digest, or ``direction`` is unknown.
    """
    records._digest("digest", digest)
    if direction not in ("upstream", "downstream"):
        raise records.RecordError(f"direction must be 'upstream' or 'downstream', not {direction!r}")
    graph = _graph(tracking_uri)
    return graph.upstream_of_dataset(digest) if direction == "upstream" else graph.downstream_of_dataset(digest)


def run_lineage(run_id: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """The datasets a run used (with their ancestors) and its evaluations, from the ledger."""
    return _graph(tracking_uri).upstream_of_run(run_id)


def _graph(tracking_uri: str | None) -> Any:
    import sqlalchemy as sa

    from mlflow_provenance.errors import ConfigurationError
    from mlflow_provenance.lineage import load_graph
    from mlflow_provenance.uri import inner_uri

    from mlflow_provenance import ledger_schema

    uri = tracking_uri or mlflow.get_tracking_uri()
    if not uri.startswith("provenance+"):
        raise ConfigurationError(f"lineage reads a provenance store's ledger; {uri!r} is not a provenance+ URI")
    engine = sa.create_engine(inner_uri(uri))
    try:
        with engine.connect() as conn:
            if not ledger_schema.read_meta(conn):
                raise ConfigurationError(f"{uri} has no provenance ledger yet: nothing was recorded through it")
            return load_graph(conn)
    finally:
        engine.dispose()


# --- helpers -------------------------------------------------------------------------------------


def _run_id(run_id: str | None) -> str:
    if run_id:
        return run_id
    active = mlflow.active_run()
    if active is None:
        raise mlflow.exceptions.MlflowException(
            "mlflow-provenance: no active run: call inside `with mlflow.start_run():` or pass run_id=..."
        )
    return active.info.run_id


def _fingerprint(data: Any, progress: bool | None) -> tuple[ContentDigest, Any, dict[str, Any], str | None, Any]:
    """The digest, a default source, profile fields, an MLflow schema, and what to snapshot."""
    if isinstance(data, (str, os.PathLike)):
        content = digest_path(data, cache=default_cache(), progress=progress)
        return content, os.path.abspath(os.fspath(data)), {}, None, ("path", os.fspath(data))
    frame = _mlflow_dataset_payload(data)
    if frame is not None:
        data, default_source = frame
    else:
        default_source = None
    content = digest_data(data)
    profile: dict[str, Any] = {}
    schema = None
    shape = getattr(data, "shape", None)
    if shape is not None:
        profile["num_rows"] = int(shape[0]) if len(shape) else 1
        profile["num_elements"] = int(getattr(data, "size", 0))
    try:
        from mlflow.types.utils import _infer_schema

        schema = json.dumps({"mlflow_colspec": _infer_schema(data).to_dict()})
    except Exception:  # noqa: BLE001 - the schema is for display only
        schema = None
    return content, default_source, profile, schema, ("data", data)


def _mlflow_dataset_payload(data: Any) -> tuple[Any, Any] | None:
    """An ``mlflow.data`` dataset's in-memory data and its source description."""
    from mlflow.data.dataset import Dataset as MlflowDataset

    if not isinstance(data, MlflowDataset):
        return None
    source = None
    try:
        source = data.source.to_dict()
    except Exception:  # noqa: BLE001 - a source without to_dict
        source = None
    if getattr(data, "df", None) is not None:
        return data.df, source
    features = getattr(data, "features", None)
    if features is not None:
        import numpy as np

        targets = getattr(data, "targets", None)
        if isinstance(features, dict) or isinstance(targets, dict):
            raise DatasetInputError("mlflow.data numpy datasets with dict features/targets are not supported: pass the arrays")
        combined = features if targets is None else np.column_stack([np.asarray(features).reshape(len(features), -1), np.asarray(targets).reshape(len(targets), -1)])
        return combined, source
    raise DatasetInputError(
        f"log_dataset cannot read the data of a {type(data).__name__}: pass its DataFrame, array or file path"
    )


def _mlflow_source(source: Any) -> tuple[str, str]:
    if isinstance(source, str):
        scheme = source.split("://", 1)[0].lower() if "://" in source else ""
        kind = {"": "local", "file": "local", "http": "http", "https": "http"}.get(scheme, scheme)
        return kind, json.dumps({"uri": source})
    if isinstance(source, dict):
        return "external", json.dumps(source)
    return "code", json.dumps({"tags": {}})


def _check_snapshot_size(payload: tuple[str, Any], content: ContentDigest) -> None:
    """Refuse a snapshot of large data before anything is written."""
    kind, value = payload
    size = content.description.get("bytes")
    if size is None and kind == "data":
        import pandas as pd

        if isinstance(value, (pd.DataFrame, pd.Series)):
            size = int(value.memory_usage(deep=True).sum()) if isinstance(value, pd.DataFrame) else int(value.memory_usage(deep=True))
        else:
            size = int(getattr(value, "nbytes", 0))
    if size is not None and size > MAX_SNAPSHOT_BYTES:
        raise DatasetInputError(
            f"snapshot=True is for small data: this dataset has {size:,} bytes (limit {MAX_SNAPSHOT_BYTES:,}); "
            f"store it elsewhere and record its source instead"
        )


def _write_snapshot(client: mlflow.MlflowClient, run_id: str, payload: tuple[str, Any], content: ContentDigest) -> None:
    target = f"{SNAPSHOT_DIR}/{content.hex[:16]}"
    kind, value = payload
    with tempfile.TemporaryDirectory(prefix="mlflow-provenance-snapshot-") as tmp:
        if kind == "path":
            description = content.description
            if description["kind"] == "file":
                shutil.copy2(value, tmp)
            elif description["kind"] == "directory":
                shutil.copytree(value, Path(tmp) / "data")
            else:
                import glob

                base = description["base"]
                for match in glob.glob(value, recursive=True):
                    if os.path.isfile(match):
                        destination = Path(tmp) / os.path.relpath(match, base)
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(match, destination)
        else:
            import numpy as np
            import pandas as pd

            if isinstance(value, (pd.DataFrame, pd.Series)):
                frame = value.to_frame() if isinstance(value, pd.Series) else value
                frame.to_parquet(Path(tmp) / "data.parquet")
            else:
                np.save(Path(tmp) / "data.npy", np.asarray(value), allow_pickle=False)
        client.log_artifacts(run_id, tmp, target)


def _model_reference(model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    model_id = getattr(model, "model_id", None)
    if isinstance(model_id, str):
        return {"model_id": model_id, "uri": getattr(model, "model_uri", None)}
    if isinstance(model, str):
        if model.startswith("m-"):
            return {"model_id": model}
        if model.startswith("models:/m-"):
            return {"model_id": model[len("models:/"):].split("/", 1)[0], "uri": model}
        return {"uri": model}
    raise records.RecordError(f"model must be a logged model id, a model URI or a logged model, not {type(model).__name__}")


def _caller_interval(name: str, value: Any, confidence: float) -> dict[str, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise records.RecordError(f"interval for {name!r} must be a (low, high) pair, got {value!r}")
    low, high = _as_float(value[0]), _as_float(value[1])
    if low > high:
        raise records.RecordError(f"interval for {name!r} has low {low} above high {high}")
    return {"low": low, "high": high, "confidence": confidence, "method": "caller"}


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # the record builder names the bad metric
