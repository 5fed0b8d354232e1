"""A real ``mlflow server`` process on a provenance+postgresql store (DESIGN.md §2, server mode)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import inner_db_uri, run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(uri: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [MLFLOW, "server", "--backend-store-uri", uri, "--registry-store-uri", uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--artifacts-destination", str(log.parent / "server-artifacts")],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=log.parent,
    )


def _wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not become ready:\n{log.read_text()[-3000:]}")


def test_server_without_key_refuses_to_start_and_writes_nothing(postgres_uri, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_PROVENANCE_KEY"}
    log = tmp_path / "server.log"
    proc = _server(postgres_uri, _free_port(), env, log)
    try:
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    output = log.read_text()
    assert code != 0
    assert "needs a signing key" in output and "MLFLOW_PROVENANCE_KEY" in output
    assert "mlflow-provenance keygen" in output
    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # not even MLflow's migrations ran
    engine.dispose()


def test_remote_client_writes_are_recorded_and_verify_clean(postgres_uri, tmp_path, monkeypatch, verify):
    key = tmp_path / "server.key"
    assert run_cli("keygen", "--out", str(key))[0] == 0
    port = _free_port()
    env = dict(os.environ, MLFLOW_PROVENANCE_KEY=str(key))
    log = tmp_path / "server.log"
    proc = _server(postgres_uri, port, env, log)
    try:
        _wait_ready(port, proc, log)
        client_code = (
            "import mlflow\n"
            f"mlflow.set_tracking_uri('http://127.0.0.1:{port}')\n"
            "with mlflow.start_run() as run:\n"
            "    mlflow.log_param('lr', 0.1)\n"
            "    mlflow.log_metrics({'acc': 0.9, 'loss': 0.2}, step=1)\n"
            "    mlflow.set_tag('team', 'audit')\n"
            "c = mlflow.MlflowClient()\n"
            "c.create_registered_model('srv-model')\n"
            "v = c.create_model_version('srv-model', f'runs:/{run.info.run_id}/model', run.info.run_id)\n"
            "c.set_registered_model_alias('srv-model', 'shadow', v.version)\n"  # an ungated alias
            "print(run.info.run_id)\n"
        )
        # A plain MLflow client: no provenance configuration on its side at all.
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_PROVENANCE")}
        result = subprocess.run([sys.executable, "-c", client_code], env=client_env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        run_id = result.stdout.strip().splitlines()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    code, report = verify(postgres_uri)
    assert code == 0, [f["message"] for f in report["findings"]]
    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.connect() as conn:
        ops = [r[0] for r in conn.exec_driver_sql(
            "SELECT op FROM prov_events WHERE entity_id = %s ORDER BY seq", (run_id,))]
        actors = {r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT body::json->>'actor' FROM prov_events WHERE entity_id = %s", (run_id,))}
    engine.dispose()
    assert ops[0] == "create_run" and "log_param" in ops and "log_batch" in ops and ops[-1] == "update_run_info"
    assert all(actor.startswith("anonymous@127.0.0.1") for actor in actors)  # no auth configured

    # And a tamper through psql is caught.
    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE params SET value = '0.5' WHERE key = 'lr'")
    engine.dispose()
    code, report = verify(postgres_uri)
    assert code == 1
    assert any(f["field"] == "params.value[lr]" and f["entity"] == f"run {run_id}" for f in report["findings"])


def test_environment_manifest_travels_from_client_to_server_ledger(postgres_uri, tmp_path, monkeypatch, verify):
    """Issue 3 through a real server: the client's run-context provider sends its manifest,
    the server's store checks it, keeps it in the ledger and writes the run artifact; a run
    created without the provider (``MlflowClient.create_run`` over REST) is marked missing."""
    import hashlib
    import json

    key = tmp_path / "server.key"
    assert run_cli("keygen", "--out", str(key))[0] == 0
    port = _free_port()
    log = tmp_path / "server.log"
    proc = _server(postgres_uri, port, dict(os.environ, MLFLOW_PROVENANCE_KEY=str(key)), log)
    client_code = (
        "import json, os, mlflow\n"
        f"mlflow.set_tracking_uri('http://127.0.0.1:{port}')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_param('lr', 0.1)\n"
        "c = mlflow.MlflowClient()\n"
        "bare = c.create_run(run.info.experiment_id)\n"
        "import mlflow_provenance\n"
        "tagged = c.create_run(run.info.experiment_id, tags=mlflow_provenance.environment_tags())\n"
        "path = c.download_artifacts(run.info.run_id, 'provenance/environment.json', os.getcwd())\n"
        "print(json.dumps({'run': run.info.run_id, 'bare': bare.info.run_id, 'pid': os.getpid(),\n"
        "                  'artifact': open(path, 'rb').read().hex(),\n"
        "                  'tags': c.get_run(run.info.run_id).data.tags,\n"
        "                  'bare_tags': c.get_run(bare.info.run_id).data.tags,\n"
        "                  'tagged_tags': c.get_run(tagged.info.run_id).data.tags}))\n"
    )
    try:
        _wait_ready(port, proc, log)
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_PROVENANCE")}
        result = subprocess.run([sys.executable, "-c", client_code], env=client_env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    tags, artifact = out["tags"], bytes.fromhex(out["artifact"])
    assert tags["provenance.env.status"] == "complete" and tags["provenance.env.source"] == "client"
    assert not [k for k in tags if k.startswith("provenance.env.manifest.part.")]
    assert tags["provenance.env.digest"] == "sha256:" + hashlib.sha256(artifact).hexdigest()
    manifest = json.loads(artifact)
    assert manifest["invocation"]["pid"] == out["pid"]  # the client's process, not the server's
    assert out["bare_tags"]["provenance.env.status"] == "missing"
    assert "provenance.env.digest" not in out["bare_tags"]
    assert out["tagged_tags"]["provenance.env.status"] == "complete"  # create_run with environment_tags()
    assert out["tagged_tags"]["provenance.env.source"] == "client"

    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT content FROM prov_blobs WHERE digest = %s", (tags["provenance.env.digest"],)).scalar_one()
        records = [json.loads(body)["payload"]["records"] for (body,) in conn.exec_driver_sql(
            "SELECT body FROM prov_events WHERE op = 'create_run' AND entity_id IN (%s, %s) ORDER BY seq",
            (out["run"], out["bare"]))]
    engine.dispose()
    assert bytes(stored) == artifact
    assert [r[0]["status"] for r in records] == ["complete", "missing"]
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    code, report = verify(postgres_uri)
    assert code == 0, [f["message"] for f in report["findings"]]
