"""``log_dataset`` and ``log_evaluation`` end to end on embedded provenance stores (issue 4).

Each record must land in three places that agree: the MLflow dataset input of the run
(its profile carries the record under ``mlflow_provenance``), the ledger event of the
same write (``payload.records``) and ``prov_blobs`` (the record's canonical bytes, named
by their SHA-256). Refused calls write nothing; lineage queries read the ledger back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

import mlflow_provenance
from mlflow_provenance.datasets.frames import digest_frame
from mlflow_provenance.adapters import datasets as api
from mlflow_provenance.datasets.files import DatasetInputError
from mlflow_provenance.datasets.records import RecordError
from tests.conftest import ledger_rows as _ledger

FULL_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DATASET_MEDIA = "application/vnd.mlflow-provenance.dataset.v1+json"
EVALUATION_MEDIA = "application/vnd.mlflow-provenance.evaluation.v1+json"
UNKNOWN = "sha256:" + "ab" * 32


# --- helpers ---------------------------------------------------------------------------------------




def _records(uri: str, kind: str | None = None) -> list[tuple[int, str, str, dict]]:
    """``(seq, op, entity_id, record)`` of every record bound into a ledger event."""
    found = []
    for seq, op, entity, body in _ledger(uri, "SELECT seq, op, entity_id, body FROM prov_events ORDER BY seq"):
        for record in (json.loads(body).get("payload") or {}).get("records") or ():
            if kind is None or record.get("kind") == kind:
                found.append((int(seq), op, entity, record))
    return found


def _blob(uri: str, digest: str) -> tuple[bytes, str]:
    rows = _ledger(uri, "SELECT content, media_type FROM prov_blobs WHERE digest = ?", digest)
    assert len(rows) == 1, f"prov_blobs holds {len(rows)} rows for {digest}"
    return bytes(rows[0][0]), rows[0][1]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _inputs(run_id: str) -> list[Any]:
    return list(mlflow.MlflowClient().get_run(run_id).inputs.dataset_inputs)


def _written(uri: str, run_id: str | None = None) -> tuple[int, int, int | None, dict[str, float] | None]:
    """What a refused call must leave unchanged: events, blobs, the run's inputs and metrics."""
    events = int(_ledger(uri, "SELECT COUNT(*) FROM prov_events")[0][0])
    blobs = int(_ledger(uri, "SELECT COUNT(*) FROM prov_blobs")[0][0])
    if run_id is None:
        return events, blobs, None, None
    run = mlflow.MlflowClient().get_run(run_id)
    return events, blobs, len(run.inputs.dataset_inputs), dict(run.data.metrics)


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


def _write_csv(path: Path, frame: pd.DataFrame) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path.read_bytes()


def _manifest_digest(files: dict[str, bytes]) -> str:
    """The documented dir-manifest-v1 digest, computed here independently."""
    lines = b"".join(
        f"{rel}\0{len(data)}\0{hashlib.sha256(data).hexdigest()}\n".encode()
        for rel, data in sorted(files.items(), key=lambda kv: kv[0].encode())
    )
    return _sha(lines)


@pytest.fixture
def quiet_model_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # log_model imports the model in a subprocess to guess pip requirements (~8 s);
    # the guess only lands in an artifact file.
    from mlflow.utils import requirements_utils

    monkeypatch.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])


def _tiny_model(frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = frame.drop(columns="target"), frame["target"]
    return LogisticRegression(max_iter=50).fit(X.iloc[:, :3], y), X.iloc[:, :3]


def clean_wine(frame: pd.DataFrame) -> pd.DataFrame:
    """A transformation step whose source is recorded by digest."""
    return frame.dropna().reset_index(drop=True)


# --- each input kind -------------------------------------------------------------------------------


@dataclass
class Input:
    data: Any
    digest: str | None  # computed independently, where the algorithm is simple enough
    source_type: str
    source: Any  # parsed JSON of the MLflow dataset's source
    description_kind: str
    num_rows: int | None


def _input(kind: str, tmp_path: Path) -> Input:
    wine = _wine()
    if kind == "csv":
        path = tmp_path / "data" / "wine.csv"
        raw = _write_csv(path, wine)
        return Input(str(path), _sha(raw), "local", {"uri": str(path)}, "file", None)
    if kind in ("directory", "glob"):
        root = tmp_path / "shards"
        files = {
            "part-0.csv": _write_csv(root / "part-0.csv", wine.iloc[:90]),
            "part-1.csv": _write_csv(root / "part-1.csv", wine.iloc[90:]),
            "sub/extra.csv": _write_csv(root / "sub" / "extra.csv", wine.iloc[:5]),
        }
        if kind == "directory":
            return Input(str(root), _manifest_digest(files), "local", {"uri": str(root)}, "directory", None)
        pattern = str(root / "*.csv")  # not sub/extra.csv
        chosen = {k: v for k, v in files.items() if "/" not in k}
        return Input(pattern, _manifest_digest(chosen), "local", {"uri": pattern}, "glob", None)
    if kind == "frame":
        return Input(wine, None, "code", {"tags": {}}, "dataframe", len(wine))
    if kind == "array":
        array = wine.to_numpy()
        return Input(array, None, "code", {"tags": {}}, "ndarray", array.shape[0])
    if kind == "mlflow-pandas":
        dataset = mlflow.data.from_pandas(wine, name="wine")
        return Input(dataset, None, "external", dataset.source.to_dict(), "dataframe", len(wine))
    if kind == "mlflow-numpy":
        array = wine.drop(columns="target").to_numpy()
        dataset = mlflow.data.from_numpy(array)
        return Input(dataset, None, "external", dataset.source.to_dict(), "ndarray", array.shape[0])
    raise AssertionError(kind)


KINDS = ["csv", "directory", "glob", "frame", "array", "mlflow-pandas", "mlflow-numpy"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_input_kind_is_recorded_in_mlflow_and_the_ledger(store_uri, kind, tmp_path, verify):
    given = _input(kind, tmp_path)
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        rec = mlflow_provenance.log_dataset(
            given.data, name=f"wine-{kind}", context="validation", license="CC-BY-4.0",
            owner="data-team@example.com", consent="research use only", features="v3",
        )
    run_id = run.info.run_id

    assert FULL_DIGEST.match(rec.digest), rec.digest
    if given.digest is not None:
        assert rec.digest == given.digest
    assert (rec.name, rec.context, rec.run_id) == (f"wine-{kind}", "validation", run_id)
    assert FULL_DIGEST.match(rec.record_digest)
    assert rec.mlflow_digest == rec.digest[len("sha256:"):][:36]

    # MLflow's view: the run's dataset input.
    (dataset_input,) = _inputs(run_id)
    dataset = dataset_input.dataset
    assert dataset.name == f"wine-{kind}"
    assert dataset.digest == rec.digest.split(":", 1)[1][:36]
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "validation"}
    assert dataset.source_type == given.source_type
    assert json.loads(dataset.source) == given.source
    profile = json.loads(dataset.profile)
    doc = profile["mlflow_provenance"]
    assert doc == rec.document
    assert doc["kind"] == "dataset" and doc["name"] == f"wine-{kind}" and doc["context"] == "validation"
    assert doc["digest"] == rec.digest
    assert doc["license"] == {"expression": "CC-BY-4.0", "kind": "spdx"}
    assert doc["owner"] == "data-team@example.com"
    assert doc["consent"] == "research use only"
    assert doc["features"] == "v3"
    assert doc["parents"] == [] and doc["transformations"] == []
    assert doc["digest_description"]["kind"] == given.description_kind
    assert doc["source"] == (given.source["uri"] if given.source_type == "local"
                             else None if given.source_type == "code" else given.source)
    if given.num_rows is not None:
        assert profile["num_rows"] == given.num_rows
    if kind == "csv":
        assert doc["digest_description"]["bytes"] == len(Path(given.data).read_bytes())

    # The ledger's view: the record in the event of the log_inputs write, its bytes in prov_blobs.
    ((seq, op, entity, record),) = _records(store_uri, "dataset")
    assert (op, entity) == ("log_inputs", run_id)
    assert record == {"kind": "dataset", "blob": rec.record_digest, "media_type": DATASET_MEDIA,
                      "run_id": run_id, "data_digest": rec.digest, "parents": [], "context": "validation"}
    content, media_type = _blob(store_uri, rec.record_digest)
    assert _sha(content) == rec.record_digest and media_type == DATASET_MEDIA
    assert json.loads(content) == rec.document

    code, report = verify(store_uri)
    assert code == 0, report["findings"]


def test_mlflow_dataset_wrappers_hash_the_same_content_as_the_raw_data(sqlite_uri):
    wine = _wine()
    array = wine.drop(columns="target").to_numpy()
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        frame = mlflow_provenance.log_dataset(wine, name="frame")
        wrapped_frame = mlflow_provenance.log_dataset(mlflow.data.from_pandas(wine), name="wrapped-frame")
        plain = mlflow_provenance.log_dataset(array, name="array")
        wrapped = mlflow_provenance.log_dataset(mlflow.data.from_numpy(array), name="wrapped-array")
        changed = wine.copy()
        changed.iloc[177, 0] += 0.001  # the last row: MLflow's own digest would stop at 10,000 rows
        other = mlflow_provenance.log_dataset(changed, name="changed")
    assert frame.digest == wrapped_frame.digest
    assert plain.digest == wrapped.digest
    assert len({frame.digest, plain.digest, other.digest}) == 3


# --- governance fields -----------------------------------------------------------------------------


def test_all_governance_fields_round_trip(sqlite_uri, tmp_path, verify):
    path = tmp_path / "wine.csv"
    _write_csv(path, _wine())
    transformations = [
        {"name": "dropna", "code": "etl/clean.py:dropna", "parameters": {"how": "any"},
         "description": "rows with a missing value removed"},
        "deduplicate",
        clean_wine,
    ]
    consent = {"basis": "informed consent", "withdrawals_honoured": True, "purposes": ["research"]}
    filters = {"alcohol": {">": 12.0}, "region": ["EU"]}
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        rec = mlflow_provenance.log_dataset(
            str(path), name="wine", source="s3://lake/wine/2024.csv", license="internal use only",
            consent=consent, collected=(dt.date(2024, 1, 1), dt.date(2024, 6, 30)), owner="Dr. A. Owner",
            transformations=transformations, filters=filters, features="wine-features==3.1",
        )
        spdx = mlflow_provenance.log_dataset(
            _wine(), name="spdx", license="MIT OR Apache-2.0",
            collected=("2024-01-01T10:00:00+02:00", "2024-03-01T00:00:00Z"),
        )
        naive = mlflow_provenance.log_dataset(
            _wine().iloc[:10], name="naive", license="CC-BY-4.0",
            collected={"start": dt.datetime(2023, 5, 1, 12, 30), "end": None},
        )

    expected_code = {
        "reference": f"{clean_wine.__module__}:clean_wine",
        "digest": _sha(inspect.getsource(clean_wine).encode()),
    }
    assert expected_code["reference"].endswith("test_log_dataset:clean_wine")
    expected = {
        "license": {"expression": "internal use only", "kind": "text"},
        "consent": consent,
        "collected": {"start": "2024-01-01T00:00:00Z", "end": "2024-06-30T00:00:00Z"},
        "owner": "Dr. A. Owner",
        "filters": filters,
        "features": "wine-features==3.1",
        "source": "s3://lake/wine/2024.csv",
        "transformations": [
            {"name": "dropna", "code": {"reference": "etl/clean.py:dropna"}, "parameters": {"how": "any"},
             "description": "rows with a missing value removed"},
            {"name": "deduplicate", "parameters": {}},
            {"name": "clean_wine", "code": expected_code, "parameters": {}},
        ],
    }
    stored = json.loads(_blob(sqlite_uri, rec.record_digest)[0])
    (dataset_input,) = [i for i in _inputs(run.info.run_id) if i.dataset.name == "wine"]
    in_profile = json.loads(dataset_input.dataset.profile)["mlflow_provenance"]
    for doc in (rec.document, stored, in_profile):
        assert {k: doc[k] for k in expected} == expected
    assert dataset_input.dataset.source_type == "s3"
    assert json.loads(dataset_input.dataset.source) == {"uri": "s3://lake/wine/2024.csv"}

    assert spdx.document["license"] == {"expression": "MIT OR Apache-2.0", "kind": "spdx"}
    assert spdx.document["collected"] == {"start": "2024-01-01T08:00:00Z", "end": "2024-03-01T00:00:00Z"}
    assert naive.document["collected"] == {"start": "2023-05-01T12:30:00Z", "end": None}

    # Lineage reads the same fields back from the ledger.
    described = mlflow_provenance.dataset_lineage(rec.digest, direction="upstream")["dataset"]
    assert described["license"] == expected["license"] and described["owner"] == "Dr. A. Owner"
    assert described["transformations"] == expected["transformations"]
    assert described["source"] == "s3://lake/wine/2024.csv"
    assert verify(sqlite_uri)[0] == 0


@pytest.mark.parametrize("terms", ["proprietary", "confidential"])
def test_single_word_free_text_license_is_text_not_spdx(sqlite_uri, terms):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        rec = mlflow_provenance.log_dataset(_wine().iloc[:3], name="wine", license=terms)
    assert rec.document["license"] == {"expression": terms, "kind": "text"}


@pytest.mark.parametrize("collected, message", [
    ((dt.date(2024, 6, 30), dt.date(2024, 1, 1)), "starts .* after it ends"),
    (("2024-02-01T00:00:00Z", "2024-01-31T23:59:59Z"), "starts .* after it ends"),
    (("yesterday", "2024-01-01"), "not an ISO 8601"),
    ("2024", "collected must be a"),
])
def test_bad_collection_window_is_refused_before_anything_is_written(sqlite_uri, collected, message):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        before = _written(sqlite_uri, run.info.run_id)
        with pytest.raises(RecordError, match=message):
            mlflow_provenance.log_dataset(_wine(), name="wine", collected=collected)
        assert _written(sqlite_uri, run.info.run_id) == before


@pytest.mark.parametrize("transformation, message", [
    ({"name": "x", "script": "a.py"}, "unknown keys"),
    ({"code": "a.py"}, "name must be a non-empty string"),
    (42, "must be a mapping"),
    ({"name": "x", "code_digest": "md5:abc"}, "code_digest must be a full digest"),
])
def test_malformed_transformation_is_refused(sqlite_uri, transformation, message):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        before = _written(sqlite_uri, run.info.run_id)
        with pytest.raises(RecordError, match=message):
            mlflow_provenance.log_dataset(_wine(), name="wine", transformations=[transformation])
        assert _written(sqlite_uri, run.info.run_id) == before


# --- lineage -------------------------------------------------------------------------------------


def test_lineage_from_raw_file_to_registered_model(sqlite_uri, tmp_path, quiet_model_logging, verify):
    raw_path = tmp_path / "raw" / "wine.csv"
    _write_csv(raw_path, _wine())
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run1:
        raw = mlflow_provenance.log_dataset(str(raw_path), name="wine-raw", license="CC-BY-4.0")
        cleaned_frame = clean_wine(pd.read_csv(raw_path))
        cleaned_frame = cleaned_frame[cleaned_frame["alcohol"] > 12].reset_index(drop=True)
        cleaned = mlflow_provenance.log_dataset(cleaned_frame, name="wine-clean", parents=[raw],
                                                transformations=[clean_wine])
    with mlflow.start_run() as run2:
        features_frame = cleaned_frame.assign(ratio=cleaned_frame["alcohol"] / cleaned_frame["malic_acid"])
        features = mlflow_provenance.log_dataset(features_frame, name="wine-features",
                                                 parents=[cleaned.digest])  # a digest works as well as a record
        model, sample = _tiny_model(features_frame)
        info = mlflow.sklearn.log_model(model, name="wine-model", registered_model_name="wine-classifier",
                                        input_example=sample.iloc[:2])
        evaluation = mlflow_provenance.log_evaluation({"accuracy": 0.97}, dataset=features, model=info.model_id)
    run1_id, run2_id = run1.info.run_id, run2.info.run_id
    assert info.model_id.startswith("m-")

    down = mlflow_provenance.dataset_lineage(raw.digest, direction="downstream")
    assert down["dataset"]["digest"] == raw.digest and down["dataset"]["recorded"] is True
    assert down["dataset"]["license"] == {"expression": "CC-BY-4.0", "kind": "spdx"}
    assert [d["digest"] for d in down["descendants"]] == [cleaned.digest, features.digest]
    assert [d["names"] for d in down["descendants"]] == [["wine-clean"], ["wine-features"]]
    assert down["descendants"][0]["runs"] == {run1_id: ["training"]}
    assert down["descendants"][1]["runs"] == {run2_id: ["training"]}
    assert down["descendants"][0]["transformations"][0]["name"] == "clean_wine"
    assert down["runs"] == sorted([run1_id, run2_id])
    assert set(down["models"]) == {"models:/wine-classifier/1", info.model_id}

    # Downstream of the features: only the second run and its models.
    assert mlflow_provenance.dataset_lineage(features.digest)["runs"] == [run2_id]

    up = mlflow_provenance.dataset_lineage(features.digest, direction="upstream")
    assert up["dataset"]["parents"] == [cleaned.digest]
    assert [a["digest"] for a in up["ancestors"]] == [cleaned.digest, raw.digest]  # nearest first
    assert [a["recorded"] for a in up["ancestors"]] == [True, True]
    assert mlflow_provenance.dataset_lineage(raw.digest, direction="upstream")["ancestors"] == []

    lineage = mlflow_provenance.run_lineage(run2_id)
    assert lineage["run"] == run2_id
    assert [d["digest"] for d in lineage["datasets"]] == [features.digest]
    assert {a["digest"] for a in lineage["ancestors"]} == {cleaned.digest, raw.digest}
    (summary,) = lineage["evaluations"]
    assert summary["record"] == evaluation.record_digest and summary["dataset"] == features.digest
    assert summary["metrics"] == {"accuracy": 0.97} and summary["model"] == {"model_id": info.model_id}
    assert lineage["unverified_inputs"] == []
    run1_lineage = mlflow_provenance.run_lineage(run1_id)
    assert {d["digest"] for d in run1_lineage["datasets"]} == {raw.digest, cleaned.digest}
    assert [a["digest"] for a in run1_lineage["ancestors"]] == []  # raw is used, not only an ancestor
    code, report = verify(sqlite_uri)
    assert code == 0, [f["message"] for f in report["findings"]]


def test_lineage_queries_refuse_bad_arguments(sqlite_uri, tmp_path):
    from mlflow_provenance.errors import ConfigurationError

    mlflow.set_tracking_uri(sqlite_uri)
    mlflow.MlflowClient().create_run("0")  # the store creates its ledger when first opened
    with pytest.raises(RecordError, match="full digest"):
        mlflow_provenance.dataset_lineage("abc123")
    with pytest.raises(RecordError, match="direction must be"):
        mlflow_provenance.dataset_lineage(UNKNOWN, direction="sideways")
    unknown = mlflow_provenance.dataset_lineage(UNKNOWN)
    assert unknown == {"dataset": {"digest": UNKNOWN, "recorded": False}, "descendants": [], "runs": [], "models": []}
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/plain.db")
    with pytest.raises(ConfigurationError, match="not a provenance"):
        mlflow_provenance.dataset_lineage(UNKNOWN)


def test_lineage_of_a_database_without_a_ledger_is_a_clear_answer(sqlite_uri):
    from mlflow_provenance.errors import ConfigurationError

    mlflow.set_tracking_uri(sqlite_uri)  # MLflow's schema, but no provenance store opened it yet
    try:
        answer = mlflow_provenance.dataset_lineage(UNKNOWN)
    except ConfigurationError as exc:
        assert "ledger" in str(exc) or "provenance" in str(exc)
    else:
        assert answer == {"dataset": {"digest": UNKNOWN, "recorded": False}, "descendants": [], "runs": [],
                          "models": []}


# --- snapshots -------------------------------------------------------------------------------------


def test_snapshots_store_the_exact_data_as_run_artifacts(sqlite_uri, tmp_path, verify):
    csv = tmp_path / "in" / "wine.csv"
    raw = _write_csv(csv, _wine())
    shards = tmp_path / "in" / "shards"
    shard_bytes = {"a.csv": _write_csv(shards / "a.csv", _wine().iloc[:5]),
                   "nested/b.csv": _write_csv(shards / "nested" / "b.csv", _wine().iloc[5:9])}
    frame = _wine().assign(label=lambda f: f["target"].map({0: "a", 1: "b", 2: "c"}))
    array = np.arange(60, dtype=np.float32).reshape(12, 5) / 7
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        file_rec = mlflow_provenance.log_dataset(str(csv), name="file", snapshot=True)
        dir_rec = mlflow_provenance.log_dataset(str(shards), name="dir", snapshot=True)
        frame_rec = mlflow_provenance.log_dataset(frame, name="frame", snapshot=True)
        array_rec = mlflow_provenance.log_dataset(array, name="array", snapshot=True)
        unsnapped = mlflow_provenance.log_dataset(array[:3], name="no-snapshot")
    client = mlflow.MlflowClient()
    run_id = run.info.run_id

    def where(rec: Any) -> str:
        artifact_path = f"provenance/datasets/{rec.digest.split(':', 1)[1][:16]}"
        assert rec.document["snapshot"] == {"artifact_path": artifact_path}
        return artifact_path

    def fetch(path: str) -> Path:
        return Path(client.download_artifacts(run_id, path, str(tmp_path / "out")))

    assert fetch(f"{where(file_rec)}/wine.csv").read_bytes() == raw
    for rel, data in shard_bytes.items():
        assert fetch(f"{where(dir_rec)}/data/{rel}").read_bytes() == data
    pd.testing.assert_frame_equal(pd.read_parquet(fetch(f"{where(frame_rec)}/data.parquet")), frame)
    loaded = np.load(fetch(f"{where(array_rec)}/data.npy"), allow_pickle=False)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)
    assert unsnapped.document["snapshot"] is None
    listed = {f.path for f in client.list_artifacts(run_id, "provenance/datasets")}
    assert listed == {where(r) for r in (file_rec, dir_rec, frame_rec, array_rec)}
    assert verify(sqlite_uri)[0] == 0


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing path", "empty glob", "list", "unknown parent",
                                  "malformed parent", "self parent", "bad license", "bad name"])
def test_bad_input_is_refused_with_a_clear_error_and_nothing_written(sqlite_uri, tmp_path, case, verify):
    mlflow.set_tracking_uri(sqlite_uri)
    missing = tmp_path / "nowhere" / "wine.csv"
    wine = _wine()
    calls = {
        "missing path": (lambda: mlflow_provenance.log_dataset(str(missing), name="w"),
                         DatasetInputError, re.escape(str(missing))),
        "empty glob": (lambda: mlflow_provenance.log_dataset(str(tmp_path / "*.parquet"), name="w"),
                       DatasetInputError, "matches no file"),
        "list": (lambda: mlflow_provenance.log_dataset([[1, 2], [3, 4]], name="w"),
                 DatasetInputError, "cannot hash a builtins.list"),
        "unknown parent": (lambda: mlflow_provenance.log_dataset(wine, name="w", parents=[UNKNOWN]),
                           MlflowException, f"parent dataset {UNKNOWN} of 'w' was never recorded"),
        "malformed parent": (lambda: mlflow_provenance.log_dataset(wine, name="w", parents=["sha256:abc"]),
                             RecordError, "parents must be a full digest"),
        "bad license": (lambda: mlflow_provenance.log_dataset(wine, name="w", license="  "),
                        RecordError, "license must be a non-empty string"),
        "bad name": (lambda: mlflow_provenance.log_dataset(wine, name=""),
                     RecordError, "name must be a non-empty string"),
    }
    with mlflow.start_run() as run:
        if case == "self parent":
            first = mlflow_provenance.log_dataset(wine, name="first")
            calls[case] = (lambda: mlflow_provenance.log_dataset(wine, name="w", parents=[first]),
                           RecordError, "cannot be its own parent")
        call, error, message = calls[case]
        before = _written(sqlite_uri, run.info.run_id)
        with pytest.raises(error, match=message) as raised:
            call()
        assert _written(sqlite_uri, run.info.run_id) == before
    if error is MlflowException:
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "log it first with mlflow_provenance.log_dataset" in raised.value.message
    assert [r["blob"] for _, _, _, r in _records(sqlite_uri, "dataset")] == (
        [first.record_digest] if case == "self parent" else [])
    assert verify(sqlite_uri)[0] == 0


def test_no_active_run_and_no_run_id_is_refused(sqlite_uri):
    mlflow.set_tracking_uri(sqlite_uri)
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    before = _written(sqlite_uri, run.info.run_id)
    with pytest.raises(MlflowException, match="no active run"):
        mlflow_provenance.log_dataset(_wine(), name="wine")
    with pytest.raises(MlflowException, match="no active run"):
        mlflow_provenance.log_evaluation({"accuracy": 0.9}, dataset=UNKNOWN)
    assert _written(sqlite_uri, run.info.run_id) == before
    # ...and with run_id= it works without an active run.
    rec = mlflow_provenance.log_dataset(_wine(), name="wine", run_id=run.info.run_id)
    assert [i.dataset.name for i in _inputs(run.info.run_id)] == ["wine"]
    assert rec.run_id == run.info.run_id


@pytest.mark.parametrize("kind", ["file", "frame", "array"])
def test_snapshot_of_too_much_data_is_refused(sqlite_uri, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(api, "MAX_SNAPSHOT_BYTES", 1024)
    path = tmp_path / "wine.csv"
    _write_csv(path, _wine())
    data = {"file": str(path), "frame": _wine(), "array": _wine().to_numpy()}[kind]
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        before = _written(sqlite_uri, run.info.run_id)
        with pytest.raises(DatasetInputError, match="snapshot=True is for small data"):
            mlflow_provenance.log_dataset(data, name="wine", snapshot=True)
        assert _written(sqlite_uri, run.info.run_id) == before
        # without a snapshot the same data is fine
        mlflow_provenance.log_dataset(data, name="wine")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id, "provenance/datasets") == []


def test_relogging_same_data_with_new_terms_is_recorded_or_refused(sqlite_uri, tmp_path):
    path = tmp_path / "wine.csv"
    _write_csv(path, _wine())
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        first = mlflow_provenance.log_dataset(str(path), name="wine", license="CC-BY-4.0")
        try:
            second = mlflow_provenance.log_dataset(str(path), name="wine", license="MIT", context="evaluation")
        except MlflowException:
            return  # refusing is an acceptable answer too
    assert second.record_digest != first.record_digest
    bound = {r["blob"] for _, _, _, r in _records(sqlite_uri, "dataset")}
    assert second.record_digest in bound


def test_refused_record_leaves_no_snapshot_artifact(sqlite_uri):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        with pytest.raises(MlflowException, match="never recorded"):
            mlflow_provenance.log_dataset(_wine(), name="wine", parents=[UNKNOWN], snapshot=True)
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id, "provenance/datasets") == []


# --- plain mlflow.log_input ------------------------------------------------------------------------


def test_plain_log_input_is_recorded_and_upgraded_from_a_local_source(sqlite_uri, tmp_path, verify):
    path = tmp_path / "plain" / "wine.csv"
    raw = _write_csv(path, _wine())
    gone = tmp_path / "plain" / "gone.csv"
    _write_csv(gone, _wine().iloc[:20])
    frame = pd.read_csv(path)
    local = mlflow.data.from_pandas(frame, source=str(path), name="plain-wine")
    entity = local._to_mlflow_entity()
    assert entity.source_type == "local" and json.loads(entity.source) == {"uri": str(path)}
    in_memory = mlflow.data.from_pandas(frame.iloc[:50], name="in-memory")
    assert in_memory._to_mlflow_entity().source_type == "code"
    vanished = mlflow.data.from_pandas(pd.read_csv(gone), source=str(gone), name="vanished")
    gone.unlink()

    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        mlflow.log_input(local, context="training")
        mlflow.log_input(in_memory, context="evaluation")
        mlflow.log_input(vanished, context="test")
    run_id = run.info.run_id

    plain = {r["name"]: (op, entity_id, r) for _, op, entity_id, r in _records(sqlite_uri, "mlflow-dataset-input")}
    assert set(plain) == {"plain-wine", "in-memory", "vanished"}
    op, entity_id, upgraded = plain["plain-wine"]
    assert (op, entity_id) == ("log_inputs", run_id)
    assert upgraded["full_digest"] == _sha(raw)
    assert upgraded["upgraded"] is True and upgraded["run_id"] == run_id
    assert upgraded["mlflow_digest"] == local.digest
    assert upgraded["digest_description"] == {"kind": "file", "algorithm": "sha256", "path": str(path),
                                             "bytes": len(raw)}
    assert upgraded["data_digest"] == digest_frame(frame).digest  # the data as loaded, hashed by the client
    # In memory only: hashed in the logging process, where the data is (adapters/mlflow_datasets.py).
    in_memory_record = plain["in-memory"][2]
    assert in_memory_record["full_digest"] == digest_frame(frame.iloc[:50]).digest
    assert in_memory_record["upgraded"] == "client" and "reason" not in in_memory_record
    unreadable = plain["vanished"][2]
    assert unreadable["full_digest"] == unreadable["data_digest"] and unreadable["upgraded"] == "client"
    assert unreadable["reason"].startswith("local source not readable")
    assert _records(sqlite_uri, "dataset") == []  # none of them claims a log_dataset record

    lineage = mlflow_provenance.run_lineage(run_id)
    assert sorted(d["digest"] for d in lineage["datasets"]) == sorted(
        [_sha(raw), in_memory_record["full_digest"], unreadable["full_digest"]])
    assert lineage["unverified_inputs"] == []
    assert verify(sqlite_uri)[0] == 0


def test_plain_log_input_with_nothing_to_hash_is_marked_unverified(sqlite_uri, monkeypatch, verify):
    from mlflow_provenance.adapters import mlflow_datasets

    # The logging process could not hash the data (e.g. an mlflow.data dataset of another kind).
    monkeypatch.setattr(mlflow_datasets, "_provenance_tracking", lambda: False)
    frame = _wine().iloc[:30]
    in_memory = mlflow.data.from_pandas(frame, name="in-memory")
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        mlflow.log_input(in_memory, context="evaluation")
    (_, _, _, record), = _records(sqlite_uri, "mlflow-dataset-input")
    assert record["full_digest"] is None and "'code' source" in record["reason"]
    unverified = mlflow_provenance.run_lineage(run.info.run_id)["unverified_inputs"]
    assert [u["name"] for u in unverified] == ["in-memory"] and unverified[0]["reason"] == record["reason"]
    assert verify(sqlite_uri)[0] == 0


def test_autologged_training_data_gets_a_full_content_digest(sqlite_uri, verify):
    from sklearn.linear_model import LogisticRegression

    wine = _wine()
    features, target = wine.drop(columns=["target"]), wine["target"]
    mlflow.set_tracking_uri(sqlite_uri)
    mlflow.sklearn.autolog(log_models=False, log_datasets=True, silent=True)
    try:
        with mlflow.start_run():
            LogisticRegression(max_iter=30).fit(features, target)
    finally:
        mlflow.sklearn.autolog(disable=True)
    logged = [r for _, _, _, r in _records(sqlite_uri, "mlflow-dataset-input")]
    assert logged, "autologging logged no dataset"
    assert all(r["full_digest"] and r["upgraded"] == "client" for r in logged), logged
    assert digest_frame(features).digest in {r["full_digest"] for r in logged}
    assert verify(sqlite_uri)[0] == 0


def test_plain_input_and_log_dataset_of_the_same_file_meet_in_lineage(sqlite_uri, tmp_path):
    path = tmp_path / "wine.csv"
    _write_csv(path, _wine())
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as first:
        rec = mlflow_provenance.log_dataset(str(path), name="wine-raw")
    with mlflow.start_run() as second:
        mlflow.log_input(mlflow.data.from_pandas(pd.read_csv(path), source=str(path), name="by-autolog"))
    down = mlflow_provenance.dataset_lineage(rec.digest)
    assert down["runs"] == sorted([first.info.run_id, second.info.run_id])
    assert down["dataset"]["names"] == ["by-autolog", "wine-raw"]


# --- log_evaluation --------------------------------------------------------------------------------


def test_evaluation_is_logged_as_metrics_and_bound_in_the_ledger(store_uri, quiet_model_logging, verify):
    wine = _wine()
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        holdout = mlflow_provenance.log_dataset(wine.iloc[::3], name="wine-holdout", context="evaluation")
        model, sample = _tiny_model(wine)
        info = mlflow.sklearn.log_model(model, name="model", input_example=sample.iloc[:2])
        evaluation = mlflow_provenance.log_evaluation(
            {"accuracy": 0.93, "log_loss": np.float64(0.21)}, dataset=holdout, model=info.model_id,
            slice={"region": "EU"}, seed=42, thresholds={"accuracy": 0.9, "log_loss": {"<=": 0.25}},
            ci={"accuracy": (0.9, 0.96)}, step=3,
        )
    run_id = run.info.run_id
    client = mlflow.MlflowClient()

    # MLflow metrics, linked to the dataset and the model.
    logged = client.get_run(run_id)
    assert logged.data.metrics == {"accuracy": 0.93, "log_loss": 0.21}
    assert not [k for k in logged.data.tags if k.startswith("provenance.record")]  # the transport is taken out
    (history,) = client.get_metric_history(run_id, "accuracy")
    assert (history.value, history.step) == (0.93, 3)
    # MLflow 3.17 keeps a metric's dataset/model link in logged_model_metrics, shown on the logged model.
    by_key = {m.key: m for m in client.get_logged_model(info.model_id).metrics}
    assert set(by_key) == {"accuracy", "log_loss"}
    for key, value in (("accuracy", 0.93), ("log_loss", 0.21)):
        metric = by_key[key]
        assert metric.value == value and metric.step == 3 and metric.run_id == run_id
        assert metric.model_id == info.model_id
        assert (metric.dataset_name, metric.dataset_digest) == ("wine-holdout", holdout.mlflow_digest)

    # The evaluation record.
    doc = evaluation.document
    assert evaluation.run_id == run_id and evaluation.thresholds_met is True
    assert doc["kind"] == "evaluation" and doc["run_id"] == run_id
    assert doc["metrics"] == {"accuracy": 0.93, "log_loss": 0.21}
    assert doc["dataset"] == {"digest": holdout.digest, "name": "wine-holdout", "mlflow_digest": holdout.mlflow_digest}
    assert doc["model"] == {"model_id": info.model_id}
    assert doc["slice"] == {"region": "EU"} and doc["seed"] == 42
    assert doc["thresholds"] == {"accuracy": {"operator": ">=", "value": 0.9, "met": True},
                                 "log_loss": {"operator": "<=", "value": 0.25, "met": True}}
    assert doc["thresholds_met"] is True
    assert doc["ci"] == {"accuracy": {"low": 0.9, "high": 0.96, "confidence": 0.95, "method": "caller"}}

    ((_, op, entity, record),) = _records(store_uri, "evaluation")
    assert (op, entity) == ("log_batch", run_id)
    assert record == {"kind": "evaluation", "blob": evaluation.record_digest, "media_type": EVALUATION_MEDIA,
                      "run_id": run_id, "dataset": holdout.digest, "thresholds_met": True}
    content, media_type = _blob(store_uri, evaluation.record_digest)
    assert _sha(content) == evaluation.record_digest and media_type == EVALUATION_MEDIA
    assert json.loads(content) == doc
    code, report = verify(store_uri)
    assert code == 0, report["findings"]


def test_thresholds_not_met_are_recorded_as_such(sqlite_uri):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        data = mlflow_provenance.log_dataset(_wine(), name="wine", context="evaluation")
        evaluation = mlflow_provenance.log_evaluation(
            {"accuracy": 0.85, "loss": 0.3, "latency_ms": 12.0}, dataset=data.digest,
            thresholds={"accuracy": {">": 0.85}, "loss": {"<": 0.31}, "latency_ms": {"<=": 10}},
        )
    assert evaluation.thresholds_met is False
    assert evaluation.document["thresholds"] == {
        "accuracy": {"operator": ">", "value": 0.85, "met": False},
        "loss": {"operator": "<", "value": 0.31, "met": True},
        "latency_ms": {"operator": "<=", "value": 10.0, "met": False},
    }
    assert evaluation.document["dataset"]["name"] is None  # given by digest
    ((_, _, _, record),) = _records(sqlite_uri, "evaluation")
    assert record["thresholds_met"] is False and record["dataset"] == data.digest


def test_no_thresholds_means_thresholds_met_is_none(sqlite_uri):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        data = mlflow_provenance.log_dataset(_wine(), name="wine", context="evaluation")
        evaluation = mlflow_provenance.log_evaluation({"accuracy": 0.85}, dataset=data)
    assert evaluation.thresholds_met is None and evaluation.document["thresholds"] == {}


def _expected_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, fn: Any, seed: int, n: int,
                        confidence: float) -> tuple[float, float]:
    """The documented percentile bootstrap, recomputed here."""
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(y_true), size=(n, len(y_true)))
    samples = np.array([fn(y_true[i], y_pred[i]) for i in indices], dtype=float)
    low, high = np.nanquantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def test_bootstrap_intervals_are_seeded_and_recorded(sqlite_uri):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=120)
    y_pred = np.where(rng.random(120) < 0.85, y_true, 1 - y_true)
    truth_r, pred_r = rng.normal(size=120), rng.normal(size=120)
    accuracy = float((y_true == y_pred).mean())
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        data = mlflow_provenance.log_dataset(_wine(), name="wine", context="evaluation")

        def evaluate(seed: int | None, **extra: Any) -> Any:
            return mlflow_provenance.log_evaluation(
                {"accuracy": accuracy, "agreement": 0.5}, dataset=data, seed=seed, y_true=y_true, y_pred=y_pred,
                n_bootstrap=200, confidence=0.9, metric_fns={"agreement": lambda t, p: float((t == p).mean())},
                **extra,
            )

        first, again = evaluate(7), evaluate(7, step=1)
        other = mlflow_provenance.log_evaluation(
            {"mae": float(np.abs(truth_r - pred_r).mean())}, dataset=data, seed=8, y_true=truth_r, y_pred=pred_r,
            n_bootstrap=200)
        other_seed = mlflow_provenance.log_evaluation(
            {"mae": float(np.abs(truth_r - pred_r).mean())}, dataset=data, seed=9, y_true=truth_r, y_pred=pred_r,
            n_bootstrap=200)
        unseeded = evaluate(None, step=2)
        caller_wins = evaluate(7, step=3, ci={"accuracy": (0.5, 0.99)})

    ci = first.document["ci"]["accuracy"]
    assert ci == again.document["ci"]["accuracy"]
    assert first.document["ci"]["agreement"]["low"] == ci["low"]  # the same function, the same resamples
    low, high = _expected_bootstrap(y_true, y_pred, lambda t, p: float((t == p).mean()), 7, 200, 0.9)
    assert ci["low"] == pytest.approx(low) and ci["high"] == pytest.approx(high)
    assert ci["low"] <= accuracy <= ci["high"]
    assert {k: ci[k] for k in ("confidence", "method", "n_bootstrap", "seed", "samples")} == {
        "confidence": 0.9, "method": "bootstrap-percentile", "n_bootstrap": 200, "seed": 7, "samples": 120}
    assert first.document["seed"] == 7
    mae_8, mae_9 = other.document["ci"]["mae"], other_seed.document["ci"]["mae"]
    assert (mae_8["low"], mae_8["high"]) != (mae_9["low"], mae_9["high"])
    assert unseeded.document["seed"] is None
    drawn = unseeded.document["ci"]["accuracy"]["seed"]
    assert isinstance(drawn, int)
    low, high = _expected_bootstrap(y_true, y_pred, lambda t, p: float((t == p).mean()), drawn, 200, 0.9)
    assert unseeded.document["ci"]["accuracy"]["low"] == pytest.approx(low)
    assert caller_wins.document["ci"]["accuracy"] == {"low": 0.5, "high": 0.99, "confidence": 0.9, "method": "caller"}
    assert caller_wins.document["ci"]["agreement"]["method"] == "bootstrap-percentile"


@pytest.mark.parametrize("case", ["unknown metric threshold", "unknown operator", "non-number threshold",
                                  "two operators", "y_true without y_pred", "y_pred without y_true",
                                  "interval for unknown metric", "reversed interval", "non-number metric",
                                  "no metrics", "dataset never recorded", "malformed dataset digest"])
def test_bad_evaluation_is_refused_and_nothing_is_written(sqlite_uri, case, verify):
    mlflow.set_tracking_uri(sqlite_uri)
    cases: dict[str, tuple[dict[str, Any], type, str]] = {
        "unknown metric threshold": (dict(thresholds={"f1": 0.8}), RecordError, "threshold for 'f1', which is not among"),
        "unknown operator": (dict(thresholds={"accuracy": {"=>": 0.8}}), RecordError, "uses '=>'"),
        "non-number threshold": (dict(thresholds={"accuracy": "high"}), RecordError, "must be a finite number"),
        "two operators": (dict(thresholds={"accuracy": {">=": 0.8, "<=": 1}}), RecordError, "exactly one operator"),
        "y_true without y_pred": (dict(y_true=[1, 0, 1]), RecordError, "pass both y_true and y_pred"),
        "y_pred without y_true": (dict(y_pred=[1, 0, 1]), RecordError, "pass both y_true and y_pred"),
        "interval for unknown metric": (dict(ci={"f1": (0.1, 0.2)}), RecordError, "interval for 'f1'"),
        "reversed interval": (dict(ci={"accuracy": (0.95, 0.9)}), RecordError, "low 0.95 above high 0.9"),
        "non-number metric": (dict(metrics={"accuracy": "good"}), RecordError, "metric 'accuracy' must be a finite"),
        "no metrics": (dict(metrics={}), RecordError, "at least one metric"),
        "dataset never recorded": (dict(dataset=UNKNOWN), MlflowException, f"evaluation dataset {UNKNOWN} was never recorded"),
        "malformed dataset digest": (dict(dataset="sha256:xyz"), RecordError, "dataset.digest must be a full digest"),
    }
    kwargs, error, message = cases[case]
    with mlflow.start_run() as run:
        data = mlflow_provenance.log_dataset(_wine(), name="wine", context="evaluation")
        arguments = {"metrics": {"accuracy": 0.93}, "dataset": data, **kwargs}
        before = _written(sqlite_uri, run.info.run_id)
        with pytest.raises(error, match=re.escape(message) if error is MlflowException else message):
            mlflow_provenance.log_evaluation(arguments.pop("metrics"), **arguments)
        after = _written(sqlite_uri, run.info.run_id)
    assert after == before and after[3] == {}  # no event, no blob, no metric
    assert _records(sqlite_uri, "evaluation") == []
    assert verify(sqlite_uri)[0] == 0


# --- tampering -------------------------------------------------------------------------------------


def test_editing_the_recorded_license_behind_mlflows_back_is_caught(sqlite_uri, tmp_path, verify):
    path = tmp_path / "wine.csv"
    _write_csv(path, _wine())
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run():
        mlflow_provenance.log_dataset(str(path), name="wine-raw", license="CC-BY-NC-4.0")
    code, report = verify(sqlite_uri)
    assert code == 0, report["findings"]

    database = sqlite_uri[len("provenance+sqlite:///"):]
    conn = sqlite3.connect(database)
    try:
        changed = conn.execute(
            "UPDATE datasets SET dataset_profile = replace(dataset_profile, 'CC-BY-NC-4.0', 'CC-BY-4.0') "
            "WHERE name = 'wine-raw'").rowcount
        conn.commit()
    finally:
        conn.close()
    assert changed == 1
    (profile,) = _ledger(sqlite_uri, "SELECT dataset_profile FROM datasets WHERE name = 'wine-raw'")[0]
    assert '"CC-BY-4.0"' in profile  # the tamper took

    code, report = verify(sqlite_uri)
    assert code == 1
    assert any(f["field"] == "datasets.dataset_profile[wine-raw]" for f in report["findings"]), report["findings"]
