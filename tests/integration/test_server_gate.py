"""The promotion gate through a real ``mlflow server`` (2 workers) on provenance+postgresql
tracking and registry stores: each gate path (stage, alias, copy) allowed and refused, the
refusal reaching a plain remote client as is; then 8 concurrent clients and a clean verify.

One server and one database serve the whole module (started once, stopped before the
ledger is examined, started again on the same database for the concurrency test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import fresh_postgres_database, inner_db_uri, run_cli
from tests.integration.test_server import _free_port, _server, _wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugin_examples" / "train_classifier.py"
MODEL = "wine-classifier"
PROD = "wine-classifier-prod"
CLIENT_TIMEOUT_S = 300


class Server:
    """``mlflow server`` on one provenance+postgresql database; start/stop as needed."""

    def __init__(self, uri: str, key: Path, home: Path, workdir: Path) -> None:
        self.uri, self.key, self.home, self.workdir = uri, key, home, workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0
        self.log = workdir / "server-0.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_PROVENANCE_")}
        env.update(MLFLOW_PROVENANCE_KEY=str(self.key), MLFLOW_PROVENANCE_HOME=str(self.home))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            env.pop(name, None)
        return env

    def ensure_started(self) -> "Server":
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.port = _free_port()
        self.log = self.workdir / f"server-{self.starts}.log"
        self.starts += 1
        self.proc = _server(self.uri, self.port, self.env(), self.log)
        _wait_ready(self.port, self.proc, self.log, timeout=120)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return "<no server log>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One database, one key, one provenance home; the server is always stopped and the
    database dropped at the end, whatever happened."""
    workdir = tmp_path_factory.mktemp("server-gate")
    key = workdir / "server.key"
    code, out = run_cli("keygen", "--out", str(key))
    assert code == 0, out
    with fresh_postgres_database("prov_gate") as db_uri:
        srv = Server("provenance+" + db_uri, key, workdir / "provenance-home", workdir)
        try:
            srv.ensure_started()
            yield srv
        finally:
            srv.stop()


def _client_env() -> dict[str, str]:
    """A plain remote MLflow client: the plugin is installed, nothing provenance-specific is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_PROVENANCE")}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                 "MLFLOW_RUN_ID"):
        env.pop(name, None)
    return env


GATE_CLIENT = textwrap.dedent("""\
    import importlib.util, json, os, sys, warnings
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    warnings.simplefilter("ignore")
    uri, example, prod = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = importlib.util.spec_from_file_location("train_classifier", example)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ids = module.train(uri, epochs=3)          # calls mlflow.set_tracking_uri(uri) itself
    name = ids["model_name"]
    client = MlflowClient()
    client.set_registered_model_tag(name, "owner", "ml-platform@example.com")

    def attempt(fn):
        \"\"\"None when the call went through, else what reached the client.\"\"\"
        try:
            fn()
            return None
        except MlflowException as exc:   # RestException is a subclass
            return {"error_code": exc.error_code, "message": str(exc)}

    complete = ids["version"]
    results = {"complete": {}, "incomplete": {}}
    results["complete"]["stage"] = attempt(lambda: client.transition_model_version_stage(name, complete, "Production"))
    results["complete"]["alias"] = attempt(lambda: client.set_registered_model_alias(name, "champion", complete))
    results["complete"]["copy"] = attempt(lambda: client.copy_model_version(f"models:/{name}/{complete}", prod))

    # An incomplete version: a run created over REST without the run-context provider.
    experiment = mlflow.get_experiment_by_name("wine-quality").experiment_id
    bare = client.create_run(experiment)
    incomplete = client.create_model_version(name, f"runs:/{bare.info.run_id}/model", bare.info.run_id).version
    # The stock client's retries stay on (a refusal answered as a transient 5xx would be retried
    # and lost behind "too many 500 error responses"); only their backoff is removed to stay fast.
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0"
    results["incomplete"]["stage"] = attempt(lambda: client.transition_model_version_stage(name, incomplete, "Production"))
    results["incomplete"]["alias"] = attempt(lambda: client.set_registered_model_alias(name, "champion", incomplete))
    results["incomplete"]["copy"] = attempt(lambda: client.copy_model_version(f"models:/{name}/{incomplete}", prod))
    del os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"], os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"]

    stages = {mv.version: mv.current_stage for mv in client.search_model_versions(f"name = '{name}'")}
    prod_versions = {mv.version: {"source": mv.source, "run_id": mv.run_id, "tags": mv.tags}
                     for mv in client.search_model_versions(f"name = '{prod}'")}
    tags = {v: client.get_model_version(name, v).tags for v in (complete, incomplete)}
    print(json.dumps({
        "ids": ids, "complete": complete, "incomplete": incomplete, "bare_run": bare.info.run_id,
        "results": results, "stages": stages, "aliases": client.get_registered_model(name).aliases,
        "prod_versions": prod_versions, "version_tags": tags,
    }))
""")


@pytest.fixture(scope="module")
def gate_run(server: Server) -> dict[str, Any]:
    """Train, register and try every gate path once from a plain client; its JSON summary."""
    server.ensure_started()
    script = server.workdir / "gate_client.py"  # a script file: its digest is the run's code version
    script.write_text(GATE_CLIENT)
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script), server.url, str(EXAMPLE), PROD], env=_client_env(),
                            cwd=server.workdir, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert result.returncode == 0, (
        f"client failed after {time.monotonic() - started:.0f}s:\n{result.stderr[-4000:]}\n"
        f"server log:\n{server.log_tail()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _decisions(uri: str) -> list[dict[str, Any]]:
    """Every promotion-decision record in the ledger, with its event's op."""
    engine = sa.create_engine(inner_db_uri(uri))
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT op, body FROM prov_events WHERE body LIKE %s ORDER BY seq", ("%promotion-decision%",)).all()
    finally:
        engine.dispose()
    found = []
    for op, body in rows:
        for record in (json.loads(body).get("payload") or {}).get("records") or ():
            if record.get("kind") == "promotion-decision":
                found.append({**record, "_op": op})
    return found


def _assert_refusal(message: str | None, action: str) -> None:
    """``message`` is the gate's refusal for the incomplete version 2, naming the environment."""
    assert message is not None, "the promotion of an incomplete version went through"
    assert f"mlflow-provenance refused to {action} model '{MODEL}' version 2" in message, message
    env_line = next((line for line in message.splitlines() if line.startswith("  - environment:")), None)
    assert env_line is not None and "To fix:" in env_line, message
    assert "no complete environment manifest" in env_line and "status missing" in env_line, message


def _post(server: Server, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw REST call: (HTTP status, JSON body)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{server.url}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _refused_requests(server: Server, gate_run: dict[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    """The three refused promotions of the incomplete version, sent once each over raw REST
    (what the stock client sends: copy_model_version is create_model_version from models:/)."""
    incomplete = gate_run["incomplete"]
    return {
        "stage": _post(server, "model-versions/transition-stage", {
            "name": MODEL, "version": incomplete, "stage": "Production", "archive_existing_versions": False}),
        "alias": _post(server, "registered-models/alias", {"name": MODEL, "alias": "champion", "version": incomplete}),
        "copy": _post(server, "model-versions/create", {
            "name": PROD, "source": f"models:/{MODEL}/{incomplete}", "run_id": gate_run["bare_run"]}),
    }


def _use_server_identity(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(server.key))
    monkeypatch.setenv("MLFLOW_PROVENANCE_HOME", str(server.home))


ACTIONS = {"stage": "move", "alias": "move", "copy": "copy"}


def test_gate_paths_allowed_and_refused_through_server(server, gate_run, monkeypatch, verify):
    """stage, alias, copy × allowed (complete version 1), refused (incomplete version 2)."""
    complete, incomplete = gate_run["complete"], gate_run["incomplete"]
    assert (complete, incomplete) == ("1", "2") and gate_run["ids"]["model_name"] == MODEL
    results = gate_run["results"]

    # Allowed: each went through.
    assert results["complete"] == {"stage": None, "alias": None, "copy": None}, results["complete"]
    # Refused: each raised in the plain client with the gate's message, listing what is
    # missing and how to fix it. (copy_model_version is MLflow's client-side helper: it wraps
    # the server's refusal of create_model_version in its own INTERNAL_ERROR.)
    refused = results["incomplete"]
    for path in ("stage", "alias", "copy"):
        assert refused[path] is not None, f"{path} of an incomplete version went through"
        _assert_refusal(refused[path]["message"], ACTIONS[path])
    assert refused["stage"]["error_code"] == refused["alias"]["error_code"] == "PERMISSION_DENIED", refused
    assert "to stage 'Production'" in refused["stage"]["message"]
    assert "to alias 'champion'" in refused["alias"]["message"]
    assert f"into the protected model '{PROD}'" in refused["copy"]["message"]
    # On the wire: a 403 (not a 5xx the client would retry), the refusal as the JSON message.
    server.ensure_started()
    for path, (status, body) in _refused_requests(server, gate_run).items():
        assert (status, body.get("error_code")) == (403, "PERMISSION_DENIED"), (path, status, body)
        _assert_refusal(body.get("message"), ACTIONS[path])
    # Refused ones changed nothing; allowed ones are tagged with their decision.
    assert gate_run["stages"] == {complete: "Production", incomplete: "None"}
    assert gate_run["aliases"] == {"candidate": complete, "champion": complete}
    assert list(gate_run["prod_versions"]) == ["1"]
    copy = gate_run["prod_versions"]["1"]
    assert copy["source"] == f"models:/{MODEL}/{complete}" and copy["run_id"] == gate_run["ids"]["run_id"]
    tags = gate_run["version_tags"]
    assert tags[complete]["provenance.gate.production"].startswith("sha256:")
    assert tags[complete]["provenance.gate.champion"].startswith("sha256:")
    assert copy["tags"]["provenance.gate.copy"].startswith("sha256:")
    assert not [k for k in tags[incomplete] if k.startswith("provenance.gate.")]

    server.stop()  # the ledger is examined with nobody writing

    decisions = _decisions(server.uri)
    assert sorted((d["model"], d["version"], d["target"], d["target_kind"], d["_op"]) for d in decisions) == sorted([
        (MODEL, complete, "Production", "stage", "transition_model_version_stage"),
        (MODEL, complete, "champion", "alias", "set_registered_model_alias"),
        (MODEL, complete, PROD, "copy", "create_model_version"),
    ])
    by_kind = {d["target_kind"]: d for d in decisions}
    assert tags[complete]["provenance.gate.production"] == by_kind["stage"]["blob"]
    assert tags[complete]["provenance.gate.champion"] == by_kind["alias"]["blob"]
    assert copy["tags"]["provenance.gate.copy"] == by_kind["copy"]["blob"]

    _use_server_identity(monkeypatch, server)
    code, out = run_cli("check", f"models:/{MODEL}/{complete}", "--tracking-uri", server.uri)
    assert code == 0 and out.startswith("COMPLETE"), out
    code, out = run_cli("check", f"models:/{MODEL}/{incomplete}", "--tracking-uri", server.uri)
    assert code == 1 and "refused to move model" in out and "  - environment:" in out, out
    code, report = verify(server.uri)
    assert code == 0, [f["message"] for f in report["findings"]]


CONCURRENT_CLIENT = textwrap.dedent('''\
    import sys, warnings
    import mlflow, mlflow_provenance
    import pandas as pd
    from mlflow import MlflowClient

    warnings.simplefilter("ignore")
    uri, index = sys.argv[1], int(sys.argv[2])
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_name=f"client-{index}") as run:   # the default experiment
        mlflow.log_params({"client": index, "lr": 0.01 * (index + 1)})
        for step in range(3):
            mlflow.log_metrics({"acc": 0.5 + 0.1 * step, "loss": 1.0 / (step + 1)}, step=step)
        frame = pd.DataFrame({"x": range(50), "y": [(i * index) %% 7 for i in range(50)]})
        mlflow_provenance.log_dataset(frame, name=f"data-{index}", source="synthetic", license="CC0-1.0")
    if index == 0:
        client = MlflowClient()
        client.create_registered_model("concurrent-model")
        version = client.create_model_version("concurrent-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_registered_model_alias("concurrent-model", "shadow", version.version)
        assert client.get_registered_model("concurrent-model").aliases == {"shadow": version.version}
    print(run.info.run_id)
''').replace("%%", "%")


def test_concurrent_clients_then_verify_clean(server, monkeypatch, verify):
    server.ensure_started()
    engine = sa.create_engine(inner_db_uri(server.uri))
    try:
        with engine.connect() as conn:
            runs_before = conn.exec_driver_sql("SELECT count(*) FROM runs").scalar_one()
    finally:
        engine.dispose()
    script = server.workdir / "concurrent_client.py"
    script.write_text(CONCURRENT_CLIENT)
    logs = server.workdir / "concurrent"
    logs.mkdir(exist_ok=True)
    procs = []
    try:
        for index in range(8):
            out, err = (logs / f"{index}.out").open("w"), (logs / f"{index}.err").open("w")
            procs.append((subprocess.Popen([sys.executable, str(script), server.url, str(index)], env=_client_env(),
                                           cwd=server.workdir, stdout=out, stderr=err), out, err))
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        codes = [proc.wait(timeout=max(1.0, deadline - time.monotonic())) for proc, _, _ in procs]
    finally:
        for proc, out, err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            out.close()
            err.close()
    failures = {i: (logs / f"{i}.err").read_text()[-2000:] for i, code in enumerate(codes) if code != 0}
    assert not failures, f"{failures}\nserver log:\n{server.log_tail()}"
    run_ids = [(logs / f"{i}.out").read_text().strip().splitlines()[-1] for i in range(8)]
    assert len(set(run_ids)) == 8

    server.stop()

    _use_server_identity(monkeypatch, server)
    code, report = verify(server.uri)
    assert code == 0, [f["message"] for f in report["findings"]]
    assert report["runs"] == runs_before + 8
    engine = sa.create_engine(inner_db_uri(server.uri))
    try:
        with engine.connect() as conn:
            created = {r[0] for r in conn.exec_driver_sql(
                "SELECT entity_id FROM prov_events WHERE op = 'create_run' AND entity_id = ANY(%s)", (run_ids,))}
            alias = conn.exec_driver_sql(
                "SELECT version FROM registered_model_aliases WHERE name = 'concurrent-model' AND alias = 'shadow'"
            ).scalar_one()
    finally:
        engine.dispose()
    assert created == set(run_ids)  # every run's creation is in the ledger
    assert alias == 1
