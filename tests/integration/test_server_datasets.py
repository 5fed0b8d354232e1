"""Dataset and evaluation records through a real ``mlflow server`` (issue 4, server mode).

The client computes each record where the data is and sends it in MLflow's own REST
fields (the dataset's profile, ``log_batch`` tags); the server's provenance store checks
it and binds it into the ledger. A refused record's error message reaches the client.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import inner_db_uri, run_cli
from tests.integration.test_server import _free_port, _server, _wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UNKNOWN = "sha256:" + "cd" * 32

CLIENT = """
import json, sys
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
import mlflow_provenance

port, csv = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")
with mlflow.start_run() as run:
    raw = mlflow_provenance.log_dataset(csv, name="wine-raw", license="CC-BY-4.0", owner="data-team",
                                        collected=("2024-01-01", "2024-06-30"))
    frame = pd.read_csv(csv)
    clean = frame[frame["alcohol"] > 12].reset_index(drop=True)
    cleaned = mlflow_provenance.log_dataset(clean, name="wine-clean", context="evaluation", parents=[raw],
                                            transformations=[{"name": "alcohol>12", "code": "etl.py:clean"}])
    evaluation = mlflow_provenance.log_evaluation(
        {"accuracy": 0.91, "loss": 0.3}, dataset=cleaned, seed=11,
        thresholds={"accuracy": 0.9, "loss": {"<=": 0.25}}, ci={"accuracy": (0.88, 0.94)})
    try:
        mlflow_provenance.log_dataset(clean.iloc[:5], name="orphan", parents=[sys.argv[3]])
        refused = None
    except MlflowException as exc:
        refused = str(exc)
        print("refused:", refused)
    try:
        mlflow_provenance.log_evaluation({"accuracy": 0.5}, dataset=sys.argv[3])
        refused_evaluation = None
    except MlflowException as exc:
        refused_evaluation = str(exc)
        print("refused evaluation:", refused_evaluation)
client = mlflow.MlflowClient()
logged = client.get_run(run.info.run_id)
print(json.dumps({
    "run": run.info.run_id,
    "raw": [raw.digest, raw.record_digest], "cleaned": [cleaned.digest, cleaned.record_digest],
    "evaluation": [evaluation.record_digest, evaluation.thresholds_met],
    "refused": refused, "refused_evaluation": refused_evaluation,
    "inputs": sorted(i.dataset.name for i in logged.inputs.dataset_inputs),
    "metrics": logged.data.metrics,
    "tags": sorted(k for k in logged.data.tags if k.startswith("provenance.record")),
}))
"""


def test_dataset_and_evaluation_records_through_a_real_server(postgres_uri, tmp_path, monkeypatch, verify):
    from sklearn.datasets import load_wine

    csv = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(csv, index=False)
    raw_bytes = csv.read_bytes()
    key = tmp_path / "server.key"
    assert run_cli("keygen", "--out", str(key))[0] == 0
    port = _free_port()
    log = tmp_path / "server.log"
    proc = _server(postgres_uri, port, dict(os.environ, MLFLOW_PROVENANCE_KEY=str(key)), log)
    try:
        _wait_ready(port, proc, log)
        # A client with no provenance configuration of its own (and its own home for the digest cache).
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_PROVENANCE")}
        client_env["HOME"] = str(tmp_path / "client-home")
        result = subprocess.run([sys.executable, "-c", CLIENT, str(port), str(csv), UNKNOWN], env=client_env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=240)
        print(result.stdout)
        assert result.returncode == 0, result.stderr[-3000:] + log.read_text()[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    raw_digest, raw_record = out["raw"]
    cleaned_digest, cleaned_record = out["cleaned"]
    evaluation_record, thresholds_met = out["evaluation"]
    run_id = out["run"]
    assert raw_digest == "sha256:" + hashlib.sha256(raw_bytes).hexdigest()  # hashed on the client
    assert out["refused"] is not None and "never recorded" in out["refused"]
    assert UNKNOWN in out["refused"] and "'orphan'" in out["refused"]
    assert out["refused_evaluation"] is not None and "never recorded" in out["refused_evaluation"]
    assert out["inputs"] == ["wine-clean", "wine-raw"]  # the orphan was not logged
    assert out["metrics"] == {"accuracy": 0.91, "loss": 0.3}  # the refused evaluation logged nothing
    assert out["tags"] == []
    assert thresholds_met is False  # loss 0.3 > 0.25

    engine = sa.create_engine(inner_db_uri(postgres_uri))
    try:
        with engine.connect() as conn:
            bound = [(op, entity, record) for op, entity, body in conn.exec_driver_sql(
                "SELECT op, entity_id, body FROM prov_events ORDER BY seq")
                for record in (json.loads(body).get("payload") or {}).get("records") or ()
                if record.get("kind") in ("dataset", "evaluation", "mlflow-dataset-input")]
            blobs = {digest: bytes(content) for digest, content in conn.exec_driver_sql(
                "SELECT digest, content FROM prov_blobs WHERE digest IN (%s, %s, %s)",
                (raw_record, cleaned_record, evaluation_record))}
            orphans = conn.exec_driver_sql("SELECT COUNT(*) FROM datasets WHERE name = 'orphan'").scalar()
    finally:
        engine.dispose()
    assert [(op, entity, r["kind"]) for op, entity, r in bound] == [
        ("log_inputs", run_id, "dataset"), ("log_inputs", run_id, "dataset"), ("log_batch", run_id, "evaluation")]
    raw_ledger, cleaned_ledger, evaluation_ledger = (r for _, _, r in bound)
    assert raw_ledger["blob"] == raw_record and raw_ledger["data_digest"] == raw_digest
    assert raw_ledger["parents"] == [] and raw_ledger["context"] == "training"
    assert cleaned_ledger["blob"] == cleaned_record and cleaned_ledger["data_digest"] == cleaned_digest
    assert cleaned_ledger["parents"] == [raw_digest] and cleaned_ledger["context"] == "evaluation"
    assert evaluation_ledger == {
        "kind": "evaluation", "blob": evaluation_record, "media_type": "application/vnd.mlflow-provenance.evaluation.v1+json",
        "run_id": run_id, "dataset": cleaned_digest, "thresholds_met": False,
    }
    assert orphans == 0
    assert set(blobs) == {raw_record, cleaned_record, evaluation_record}
    for digest, content in blobs.items():
        assert "sha256:" + hashlib.sha256(content).hexdigest() == digest
    raw_doc = json.loads(blobs[raw_record])
    assert raw_doc["license"] == {"expression": "CC-BY-4.0", "kind": "spdx"} and raw_doc["owner"] == "data-team"
    assert raw_doc["collected"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-06-30T00:00:00Z"}
    assert raw_doc["source"] == str(csv)  # the client's path, as the client saw it
    evaluation_doc = json.loads(blobs[evaluation_record])
    assert evaluation_doc["thresholds"] == {"accuracy": {"operator": ">=", "value": 0.9, "met": True},
                                            "loss": {"operator": "<=", "value": 0.25, "met": False}}
    assert evaluation_doc["seed"] == 11 and evaluation_doc["run_id"] == run_id

    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    code, report = verify(postgres_uri)
    assert code == 0, [f["message"] for f in report["findings"]]

    # Lineage reads the server's ledger like any other.
    import mlflow_provenance

    down = mlflow_provenance.dataset_lineage(raw_digest, tracking_uri=postgres_uri)
    assert [d["digest"] for d in down["descendants"]] == [cleaned_digest] and down["runs"] == [run_id]
