"""``mlflow server --app-name provenance``: basic-auth composed with the provenance rules (issue 5).

* Every route of the composed app gets an authorization decision (basic-auth's validators,
  its public and self-authorizing routes, or a provenance rule) — walked like MLflow's own
  ``test_authorization_coverage``; the app runs fail-closed, so an undecided route would be
  denied, and this test makes that visible before a user meets it.
* Through a real server on PostgreSQL: promotion needs MANAGE on the model (EDIT is not
  enough), the gate still applies to a MANAGE user, a run that a registered version
  depends on cannot be deleted, and the ledger records the authenticated users.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import inner_db_uri, run_cli
from tests.integration.test_server import MLFLOW, _free_port, _wait_ready

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "provenance-admin-Passw0rd!"


def _auth_env(tmp_path: Path) -> dict[str, str]:
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key-for-csrf"}


@contextlib.contextmanager
def provenance_app_server(postgres_uri: str, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A running ``mlflow server --app-name provenance`` (2 workers, basic-auth with an admin,
    a fresh signing key) on ``postgres_uri``: (base URL, its log, the key file)."""
    key = tmp_path / "server.key"
    assert run_cli("keygen", "--out", str(key))[0] == 0
    port = _free_port()
    env = {**os.environ, **_auth_env(tmp_path), "MLFLOW_PROVENANCE_KEY": str(key)}
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [MLFLOW, "server", "--app-name", "provenance", "--backend-store-uri", postgres_uri,
         "--registry-store-uri", postgres_uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        _wait_ready(port, proc, log)
        yield f"http://127.0.0.1:{port}", log, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_WALK = r"""
import json, re
from mlflow_provenance.adapters.server_app import RULES, create_app, rule_for
from mlflow.server import app
from mlflow.server import auth
create_app(app)
from flask import request
undecided, ours, total = [], [], 0
for rule in app.url_map.iter_rules():
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        total += 1
        with app.test_request_context(path, method=method):
            if rule_for(request.path, request.method):
                ours.append([rule.rule, method])
                continue
            decided = (auth.is_unprotected_route(request.path) or auth._find_validator(request) is not None
                       or auth._is_proxy_artifact_path(request.path)
                       or auth._authorized_outside_before_request(request)
                       or auth._is_known_ungated_route(request.path))
            if not decided:
                undecided.append([rule.rule, method])
suffixes = {s for (s, _) in RULES}
unused = sorted(s for s in suffixes if not any(r.rule.endswith(s) for r in app.url_map.iter_rules()))
print(json.dumps({"total": total, "undecided": undecided, "ours": ours, "unused_rules": unused}))
"""


def test_every_route_of_the_composed_app_gets_a_decision(tmp_path):
    env = {**os.environ, **_auth_env(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _WALK], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    walk = json.loads(done.stdout.strip().splitlines()[-1])
    assert walk["total"] > 100  # the whole REST surface was walked
    # What basic-auth leaves undecided is denied (fail-closed) except to admins — and must be
    # exactly the documented list, so a route added by a new MLflow is looked at, not missed.
    from mlflow_provenance.adapters.server_app import DENIED_UNLESS_ADMIN

    undecided = {tuple(route) for route in walk["undecided"]}
    assert undecided == DENIED_UNLESS_ADMIN, (
        f"new undecided routes: {sorted(undecided - DENIED_UNLESS_ADMIN)}; "
        f"listed but gone: {sorted(DENIED_UNLESS_ADMIN - undecided)}")
    assert walk["unused_rules"] == [], f"provenance rules that match no route: {walk['unused_rules']}"
    decided_by_us = {(path.split("mlflow/", 1)[-1], method) for path, method in walk["ours"]}
    assert ("model-versions/transition-stage", "POST") in decided_by_us
    assert ("runs/delete", "POST") in decided_by_us


_CLIENT = r"""
import json, os, sys, importlib.util, warnings
warnings.simplefilter("ignore")
import mlflow
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient
uri, root, password = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

def as_user(name, secret):
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = name, secret
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

def attempt(label, fn):
    try:
        fn()
        out[label] = "ok"
    except MlflowException as exc:
        out[label] = f"{exc.error_code}: {exc.message}"

admin = as_user("admin", password)
spec = importlib.util.spec_from_file_location("example", os.path.join(root, "plugin_examples", "train_classifier.py"))
example = importlib.util.module_from_spec(spec); spec.loader.exec_module(example)
ids = example.train(uri)
admin = as_user("admin", password)
admin.set_registered_model_tag("wine-classifier", "owner", "ml-platform@example.com")
auth = AuthServiceClient(uri)
auth.create_user("alice", "alice-Passw0rd!")
auth.create_user("bob", "bob-Passw0rd!")
auth.grant_user_permission("alice", "registered_model", "wine-classifier", "EDIT")
auth.grant_user_permission("bob", "registered_model", "wine-classifier", "MANAGE")
bare = admin.create_run(admin.get_run(ids["run_id"]).info.experiment_id)
admin.create_model_version("wine-classifier", "runs:/%s/model" % bare.info.run_id, run_id=bare.info.run_id)

alice = as_user("alice", "alice-Passw0rd!")
attempt("alice_production", lambda: alice.transition_model_version_stage("wine-classifier", "1", "Production"))
attempt("alice_champion", lambda: alice.set_registered_model_alias("wine-classifier", "champion", "1"))
attempt("alice_dev_alias", lambda: alice.set_registered_model_alias("wine-classifier", "dev", "1"))
bob = as_user("bob", "bob-Passw0rd!")
attempt("bob_incomplete_production", lambda: bob.transition_model_version_stage("wine-classifier", "2", "Production"))
attempt("bob_production", lambda: bob.transition_model_version_stage("wine-classifier", "1", "Production"))
admin = as_user("admin", password)
attempt("admin_delete_registered_run", lambda: admin.delete_run(ids["run_id"]))
loose = admin.create_run(admin.get_run(ids["run_id"]).info.experiment_id)
attempt("admin_delete_loose_run", lambda: admin.delete_run(loose.info.run_id))
out["stage"] = admin.get_model_version("wine-classifier", "1").current_stage
out["aliases"] = admin.get_registered_model("wine-classifier").aliases
out["run_id"] = ids["run_id"]
print(json.dumps(out))
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_promotion_needs_manage_and_registered_runs_cannot_be_deleted(postgres_uri, tmp_path, monkeypatch, verify):
    with provenance_app_server(postgres_uri, tmp_path) as (base, log, key):
        client_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_PROVENANCE", "MLFLOW_TRACKING"))}
        # From the repository (a git work tree), so the run records its code version.
        done = subprocess.run([sys.executable, "-c", _CLIENT, base, str(ROOT), ADMIN_PASSWORD],
                              env=client_env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:] + log.read_text()[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["alice_production"].startswith("PERMISSION_DENIED") and "needs MANAGE" in out["alice_production"]
    assert out["alice_champion"].startswith("PERMISSION_DENIED")
    assert out["alice_dev_alias"] == "ok"  # an ungated alias needs only what basic-auth asks
    assert out["bob_incomplete_production"].startswith("PERMISSION_DENIED")
    assert "refused to move model 'wine-classifier' version 2" in out["bob_incomplete_production"]
    assert out["bob_production"] == "ok"
    assert out["admin_delete_registered_run"].startswith("PERMISSION_DENIED")
    assert "wine-classifier/1" in out["admin_delete_registered_run"]
    assert out["admin_delete_loose_run"] == "ok"
    assert out["stage"] == "Production" and out["aliases"] == {"candidate": "1", "dev": "1"}

    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.connect() as conn:
        decision_actors = [json.loads(body)["actor"] for (body,) in conn.exec_driver_sql(
            "SELECT body FROM prov_events WHERE op = 'transition_model_version_stage'")]
        run_deleted = conn.exec_driver_sql(
            "SELECT lifecycle_stage FROM runs WHERE run_uuid = %s", (out["run_id"],)).scalar()
    engine.dispose()
    assert decision_actors == ["bob"]  # the authenticated user, recorded in the ledger
    assert run_deleted == "active"
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    code, report = verify(postgres_uri)
    assert code == 0, [f["message"] for f in report["findings"]]
