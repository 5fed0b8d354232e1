"""The promotion gate on embedded provenance stores (issue 5).

A version whose provenance is complete reaches a gated stage, alias or protected model,
with a signed decision bound into the promotion's own ledger event and a
``provenance.gate.<target>`` tag naming it; an incomplete one is refused with each
missing item and its fix, and nothing is written. ``mlflow-provenance check`` agrees.

The complete version is the one ``plugin_examples/train_classifier.py`` makes (plus an
``owner`` tag, which the example does not set). Each single missing item starts from that
run and removes one thing — by patching a probe or one of the example's two provenance
calls while it trains, or by editing the database behind MLflow's back.

Policies and MLflow's store cache: the registry store reads ``MLFLOW_PROVENANCE_POLICY``
once, when it is built, and MLflow caches one store per URI for the whole process. A test
therefore sets the variable *before* the first MLflow call on its (per-test, fresh) URI.
Where a test changes the policy for a URI already in use, it either builds
``ProvenanceRegistryStore(uri)`` itself (what a restarted server does) or calls
:func:`restart_registry_stores`, which clears MLflow's cache of built registry stores
(``ModelRegistryStoreRegistry._get_store_with_resolved_uri``, an ``lru_cache``); the
SQLAlchemy engines and ledger recorders stay shared, as they do across stores of one
database in a process.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import mlflow
import pytest
from mlflow.exceptions import MlflowException

import mlflow_provenance
from mlflow_provenance import config
from mlflow_provenance.adapters.registry_store import DECISION_MEDIA_TYPE, GATE_TAG_PREFIX, ProvenanceRegistryStore
from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.environment import code as code_probe
from mlflow_provenance.errors import ConfigurationError, SignatureError
from mlflow_provenance.keys import PublicKey, load_signing_key
from mlflow_provenance.policy import DEFAULT_POLICY_YAML, MEDIA_TYPE as POLICY_MEDIA_TYPE, load_policy, parse_policy
from tests.conftest import ledger_rows as query, inner_db_uri, run_cli

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:Hint. Inferred schema:UserWarning")]

ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = ROOT / "plugin_examples" / "train_classifier.py"
MODEL = "wine-classifier"
PROD_COPY = "wine-classifier-prod"
OWNER = "ml-platform@example.com"
SIGNED_PREFIX = b"mlflow-provenance/promotion-decision/v1\n"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
EVERYTHING = {"environment", "code", "training_data", "evaluation", "integrity", "owner"}
#: The error code of a refusal: HTTP 403 through a server (not INVALID_STATE, an HTTP 500
#: that MLflow clients retry).
REFUSED = "PERMISSION_DENIED"


# --- setup -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _example() -> Any:
    """``plugin_examples/train_classifier.py`` as a module (loaded once)."""
    spec = importlib.util.spec_from_file_location("plugin_examples_train_classifier_gate", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def _warm_environment_probes() -> None:
    """The first capture of a process waits at most 5 s for its slowest probe, then records a
    *partial* manifest; on a busy machine the first run would then lack its environment.
    Let the cached probes finish once, so every run here gets a complete manifest."""
    from mlflow_provenance.environment import capture_environment

    deadline = time.monotonic() + 60
    while capture_environment().status != "complete" and time.monotonic() < deadline:
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _quick_log_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # log_model imports the model in a subprocess to guess its pip requirements (seconds);
    # the guess only lands in an artifact file.
    from mlflow.utils import requirements_utils

    monkeypatch.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])


def client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def train(uri: str, *, owner: bool = True) -> dict[str, str]:
    """The example's complete run and version 1 of ``wine-classifier`` (+ the owner tag)."""
    ids = _example().train(uri)
    assert (ids["model_name"], ids["version"]) == (MODEL, "1")
    if owner:
        client(uri).set_registered_model_tag(MODEL, "owner", OWNER)
    return ids


def bare_version(uri: str, name: str = "bare") -> str:
    """Version 1 of ``name``, registered from a run with nothing but its environment."""
    c = client(uri)
    run = c.create_run("0")
    c.set_terminated(run.info.run_id)
    c.create_registered_model(name)
    c.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return run.info.run_id


def use_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, name: str = "policy.yaml") -> Path:
    """Write a policy and point MLFLOW_PROVENANCE_POLICY at it (stores built from now on read it)."""
    path = tmp_path / name
    path.write_text(text)
    parse_policy(text)  # the test's own policy must be valid
    monkeypatch.setenv(config.ENV_POLICY, str(path))
    return path


def restart_registry_stores() -> None:
    """Make the next MlflowClient build its registry store anew (see the module docstring)."""
    from mlflow.tracking._model_registry.utils import _get_store_registry

    _get_store_registry()._get_store_with_resolved_uri.cache_clear()




def event_count(uri: str) -> int:
    return int(query(uri, "SELECT COUNT(*) FROM prov_events")[0][0])


def records(uri: str, kind: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(event row, record)`` for every ledger record of ``kind``, in sequence order."""
    found = []
    rows = query(uri, "SELECT seq, op, entity_type, entity_id, body FROM prov_events ORDER BY seq")
    for seq, op, entity_type, entity_id, body in rows:
        doc = json.loads(body)
        for record in (doc.get("payload") or {}).get("records") or ():
            if record.get("kind") == kind:
                event = {"seq": int(seq), "op": op, "entity_type": entity_type, "entity_id": entity_id, "body": doc}
                found.append((event, record))
    return found


def blob(uri: str, digest: str) -> tuple[bytes, str]:
    rows = query(uri, "SELECT content, media_type FROM prov_blobs WHERE digest = ?", digest)
    assert len(rows) == 1, f"prov_blobs holds {len(rows)} rows for {digest}"
    return bytes(rows[0][0]), rows[0][1]


def written_rows(event: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The new rows ``event`` wrote to ``table`` (its captured changes)."""
    rows = []
    for tbl, _op, _old, new in (event["body"].get("payload") or {}).get("changes") or ():
        if tbl == table and new is not None:
            rows.append(json.loads(new) if isinstance(new, str) else new)
    return rows


def public_key() -> PublicKey:
    """The public half of the key the embedded stores sign with."""
    return load_signing_key(Path(os.environ.get(config.ENV_KEY) or config.default_key_path())).public_key


def check(uri: str, model_uri: str, target: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out = run_cli("check", model_uri, "--target", target, "--tracking-uri", uri, "--json", *extra)
    return code, (json.loads(out) if out.strip() else {})


def refused_requirements(message: str) -> list[str]:
    """The requirement names a refusal lists, one ``  - name: ... To fix: ...`` line each."""
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    for line in lines:
        assert " To fix: " in line, line
    return [re.match(r"  - (\w+): ", line).group(1) for line in lines]


def gate_tags(mv: Any) -> dict[str, str]:
    return {k: v for k, v in mv.tags.items() if k.startswith(GATE_TAG_PREFIX)}


# --- the three gated paths -------------------------------------------------------------------


PATHS = {
    # path: (target name, kind, tag key, check --target, model version tagged)
    "stage": ("Production", "stage", GATE_TAG_PREFIX + "production", "stage:Production", (MODEL, "1")),
    "alias": ("champion", "alias", GATE_TAG_PREFIX + "champion", "alias:champion", (MODEL, "1")),
    "copy": (PROD_COPY, "copy", GATE_TAG_PREFIX + "copy", "stage:Production", (PROD_COPY, "1")),
}


def promote(uri: str, path: str, name: str = MODEL, version: str = "1") -> Any:
    c = client(uri)
    if path == "stage":
        return c.transition_model_version_stage(name, version, "Production")
    if path == "alias":
        return c.set_registered_model_alias(name, "champion", version)
    return c.copy_model_version(f"models:/{name}/{version}", f"{name}-prod")


def refuse(uri: str, path: str = "stage", name: str = MODEL) -> tuple[MlflowException, list[str]]:
    """Promote, expecting the gate's refusal; return it and the requirements it lists."""
    before = event_count(uri)
    with pytest.raises(MlflowException) as info:
        promote(uri, path, name)
    assert event_count(uri) == before, "a refused promotion wrote to the ledger"
    message = info.value.message
    assert "mlflow-provenance refused to" in message, message
    return info.value, refused_requirements(message)


def assert_only_missing(uri: str, requirement: str, *, path: str = "stage", policy: Path | None = None) -> str:
    """The promotion is refused for ``requirement`` alone, and ``check`` says the same."""
    error, missing = refuse(uri, path)
    assert error.error_code == REFUSED, error.error_code
    assert missing == [requirement], error.message
    assert client(uri).get_model_version(MODEL, "1").current_stage == "None"
    assert not records(uri, "promotion-decision")
    extra = ("--policy", str(policy)) if policy else ()
    code, verdict = check(uri, f"models:/{MODEL}/1", PATHS[path][3], *extra)
    assert code == 1, verdict
    assert verdict["allowed"] is False
    assert [m["requirement"] for m in verdict["missing"]] == [requirement]
    in_force = load_policy(policy or os.environ.get(config.ENV_POLICY) or None)
    kind, _, name = PATHS[path][3].partition(":")
    met = set(in_force.target(name, kind).require) - {requirement}
    assert met <= set(verdict["evidence"]), verdict["evidence"]  # the rest was found
    return error.message


# --- allowed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(PATHS))
def test_complete_version_is_promoted_with_a_signed_decision(
    sqlite_uri: str, path: str, verify: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    uri = sqlite_uri
    ids = train(uri)
    target, kind, tag_key, check_target, tagged = PATHS[path]
    started = dt.datetime.now(dt.timezone.utc)

    result = promote(uri, path)

    c = client(uri)
    if path == "stage":
        assert result.current_stage == "Production"
        assert c.get_model_version(MODEL, "1").current_stage == "Production"
    elif path == "alias":
        assert str(c.get_model_version_by_alias(MODEL, "champion").version) == "1"
    else:
        assert (result.name, str(result.version)) == (PROD_COPY, "1")
        copied = c.get_model_version(PROD_COPY, "1")
        assert (copied.source, copied.run_id) == (f"models:/{MODEL}/1", ids["run_id"])

    # the tag names the stored decision
    tags = gate_tags(c.get_model_version(*tagged))
    assert set(tags) == {tag_key}, tags
    digest = tags[tag_key]
    assert DIGEST.match(digest)
    content, media_type = blob(uri, digest)
    assert media_type == DECISION_MEDIA_TYPE
    assert "sha256:" + hashlib.sha256(content).hexdigest() == digest

    # bound into the promotion's own event, once
    ((event, record),) = records(uri, "promotion-decision")
    assert record["blob"] == digest
    assert record["policy"] == load_policy(None).digest
    assert (record["model"], record["version"], record["target"], record["target_kind"]) == (MODEL, "1", target, kind)
    if path == "stage":
        assert event["op"] == "transition_model_version_stage"
        assert [r["current_stage"] for r in written_rows(event, "model_versions")] == ["Production"]
    elif path == "alias":
        assert event["op"] == "set_registered_model_alias"
        assert [(r["alias"], str(r["version"])) for r in written_rows(event, "registered_model_aliases")] == [("champion", "1")]
    else:
        assert [(r["name"], str(r["version"])) for r in written_rows(event, "model_versions")] == [(PROD_COPY, "1")]

    # the decision document
    decision = json.loads(content)
    assert canonical_json(decision) == content
    assert decision["kind"] == "promotion-decision"
    assert (decision["decision"], decision["allowed"], decision["missing"]) == ("allowed", True, [])
    assert (decision["model"], decision["version"], decision["target"], decision["target_kind"]) == (MODEL, "1", target, kind)
    assert decision["run_id"] == ids["run_id"]
    assert decision["policy"] == record["policy"]
    evidence = decision["evidence"]
    assert set(evidence) == EVERYTHING | {"policy"}, evidence
    run = c.get_run(ids["run_id"])
    assert evidence["environment"] == run.data.tags["provenance.env.digest"]
    assert len(evidence["training_data"]) == 1
    for digest_ in [evidence["environment"], *evidence["training_data"], evidence["evaluation"]]:
        assert DIGEST.match(digest_), digest_
        blob(uri, digest_)
    assert json.loads(blob(uri, evidence["training_data"][0])[0])["name"] == "wine-train"
    assert evidence["code"] and set(evidence["code"]) <= {"commit", "diff_sha256", "entry_point_sha256"}
    assert evidence["owner"] == OWNER
    assert evidence["integrity"] == "intact"
    assert decision["actor"] and decision["actor"] == event["body"]["actor"]
    when = dt.datetime.fromisoformat(decision["time"].replace("Z", "+00:00"))
    assert started - dt.timedelta(seconds=5) <= when <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    head = decision["ledger_head"]
    assert head["size"] == event["seq"] - 1  # judged on the ledger as it stood just before
    assert head["checkpoint"] is None or head["checkpoint"]["size"] <= head["size"]

    # signed by the store's key, over the domain-separated bytes
    key_id, _, signature_b64 = record["signature"].partition(":")
    key = public_key()
    assert key_id == key.key_id
    signature = base64.b64decode(signature_b64)
    key.verify(signature, SIGNED_PREFIX + content)
    with pytest.raises(SignatureError):
        key.verify(signature, content)
    with pytest.raises(SignatureError):
        key.verify(signature, SIGNED_PREFIX + content.replace(b'"owner":"' + OWNER.encode(), b'"owner":"mallory'))

    code, report = verify(uri)
    assert code == 0, report
    code, verdict = check(uri, f"models:/{MODEL}@champion" if path == "alias" else f"models:/{MODEL}/1", check_target)
    assert code == 0, verdict
    assert verdict["allowed"] is True and verdict["missing"] == []
    assert {k: verdict["evidence"][k] for k in ("environment", "training_data", "evaluation", "owner", "integrity")} == {
        k: evidence[k] for k in ("environment", "training_data", "evaluation", "owner", "integrity")}


def test_gate_refuses_then_allows_on_both_backends(store_uri: str, verify: Callable[..., tuple[int, dict[str, Any]]]) -> None:
    """SQLite and PostgreSQL: the owner is missing, then supplied; the decision verifies."""
    train(store_uri, owner=False)
    message = assert_only_missing(store_uri, "owner")
    assert f"set_registered_model_tag('{MODEL}', 'owner'" in message
    client(store_uri).set_model_version_tag(MODEL, "1", "owner", OWNER)  # a version tag counts too

    client(store_uri).transition_model_version_stage(MODEL, "1", "Production")

    ((event, record),) = records(store_uri, "promotion-decision")
    assert event["entity_type"] == "model_version" and event["entity_id"] == f"{MODEL}/1"
    content, _ = blob(store_uri, record["blob"])
    assert json.loads(content)["evidence"]["owner"] == OWNER
    key_id, _, signature = record["signature"].partition(":")
    public_key().verify(base64.b64decode(signature), SIGNED_PREFIX + content)
    assert gate_tags(client(store_uri).get_model_version(MODEL, "1")) == {GATE_TAG_PREFIX + "production": record["blob"]}
    code, report = verify(store_uri)
    assert code == 0, report
    assert check(store_uri, f"models:/{MODEL}/1", "Production")[0] == 0


# --- refused: an incomplete version ----------------------------------------------------------

_COPY_WRAPPED = (
    "copy_model_version into a protected model is gated only at create_model_version, after "
    "MLflow's AbstractStore.copy_model_version has already created the destination registered "
    "model (a write, and a ledger event) and before it wraps the refusal in "
    "MlflowException('Failed to create model version copy ...') with error_code INTERNAL_ERROR "
    "instead of the gate's own (registry_store.py: the gate wraps create_model_version only)"
)


@pytest.mark.parametrize("path", ["stage", "alias", "copy"])
def test_incomplete_version_is_refused_and_nothing_changes(sqlite_uri: str, path: str) -> None:
    uri = sqlite_uri
    bare_version(uri)
    c = client(uri)
    before = c.get_model_version("bare", "1")
    events = event_count(uri)

    with pytest.raises(MlflowException) as info:
        promote(uri, path, "bare")

    error = info.value
    assert error.error_code == REFUSED, (error.error_code, error.message)
    missing = refused_requirements(error.message)
    assert {"training_data", "evaluation", "owner"} <= set(missing), error.message
    assert f"{len(missing)} requirements are not met" in error.message
    assert "mlflow-provenance check models:/bare/1" in error.message
    assert event_count(uri) == events
    assert not records(uri, "promotion-decision")
    after = c.get_model_version("bare", "1")
    assert (after.current_stage, after.aliases, gate_tags(after)) == (before.current_stage, [], {})
    assert after.last_updated_timestamp == before.last_updated_timestamp
    assert [m.name for m in c.search_registered_models()] == ["bare"]

    model_uri, target = {"stage": ("models:/bare/1", "stage:Production"), "alias": ("models:/bare/1", "alias:champion"),
                         "copy": ("models:/bare/1", "stage:Production")}[path]
    code, verdict = check(uri, model_uri, target)
    assert code == 1
    assert verdict["allowed"] is False
    assert [m["requirement"] for m in verdict["missing"]] == missing
    assert all(m["fix"] for m in verdict["missing"])


def test_refused_copy_creates_no_version_and_no_decision(sqlite_uri: str) -> None:
    """A refused copy creates neither the version nor the destination model, and no decision."""
    uri = sqlite_uri
    bare_version(uri)
    with pytest.raises(MlflowException) as info:
        promote(uri, "copy", "bare")
    message = info.value.message
    assert "mlflow-provenance refused to copy model 'bare' version 1 into the protected model 'bare-prod'" in message
    assert {"training_data", "evaluation", "owner"} <= set(refused_requirements(message))
    assert not records(uri, "promotion-decision")
    assert query(uri, "SELECT COUNT(*) FROM model_versions WHERE name = ?", "bare-prod") == [(0,)]


def test_version_registered_directly_in_a_protected_model_is_gated(sqlite_uri: str) -> None:
    uri = sqlite_uri
    run_id = bare_version(uri)
    c = client(uri)
    c.create_registered_model("bare-prod")
    events = event_count(uri)
    with pytest.raises(MlflowException) as info:
        c.create_model_version("bare-prod", f"runs:/{run_id}/model", run_id=run_id)
    assert info.value.error_code == REFUSED
    assert "owner" in refused_requirements(info.value.message)
    assert event_count(uri) == events
    assert query(uri, "SELECT COUNT(*) FROM model_versions WHERE name = ?", "bare-prod") == [(0,)]
    # an unprotected model takes the same run
    assert str(c.create_model_version("bare", f"runs:/{run_id}/model", run_id=run_id).version) == "2"


# --- each missing item on its own ------------------------------------------------------------


def test_only_environment_missing_when_the_manifest_is_partial(sqlite_uri: str) -> None:
    def broken_git(start: Any) -> dict[str, Any]:
        raise code_probe.GitError("git status: simulated failure")

    with pytest.MonkeyPatch.context() as mp:  # only while training
        mp.setattr(code_probe, "git_info", broken_git)
        ids = train(sqlite_uri)
    assert client(sqlite_uri).get_run(ids["run_id"]).data.tags["provenance.env.status"] == "partial"
    message = assert_only_missing(sqlite_uri, "environment")
    assert "status partial" in message


def test_a_run_with_a_rejected_manifest_has_no_environment(sqlite_uri: str) -> None:
    """A manifest that arrives malformed (a broken transport part) is recorded as missing;
    with no manifest there is no code version either."""
    c = client(sqlite_uri)
    run = c.create_run("0", tags={"provenance.env.manifest.part.0000": "not base64 !"})
    assert c.get_run(run.info.run_id).data.tags["provenance.env.status"] == "missing"
    c.create_registered_model("bare")
    c.create_model_version("bare", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    error, missing = refuse(sqlite_uri, "alias", "bare")
    assert {"environment", "code"} <= set(missing)
    assert "status missing (the client's environment manifest was rejected" in error.message
    code, verdict = check(sqlite_uri, "models:/bare/1", "alias:champion")
    assert code == 1 and [m["requirement"] for m in verdict["missing"]] == missing


def test_only_code_missing_outside_git_without_a_script(sqlite_uri: str, tmp_path: Path) -> None:
    assert code_probe.git_info(tmp_path)["available"] is False  # cwd (tmp_path) is no work tree
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(code_probe, "entry_point", lambda argv=None: {"kind": "interactive", "path": None})
        train(sqlite_uri)
    message = assert_only_missing(sqlite_uri, "code")
    assert "records no code version" in message


CLEAN_COMMIT = """\
version: 1
stages:
  Production:
    require:
      environment: true
      code: clean-commit
      training_data: true
      evaluation: true
      integrity: true
      owner: true
"""


def test_clean_commit_refuses_a_dirty_tree_that_commit_or_digest_accepts(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text("print('v1')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "v1"]):
        subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
    script.write_text("print('v2, not committed')\n")
    diff = subprocess.run(["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], cwd=repo,
                          check=True, capture_output=True).stdout
    monkeypatch.setattr(code_probe, "entry_point", lambda argv=None: {
        "kind": "script", "path": str(script), "sha256": hashlib.sha256(script.read_bytes()).hexdigest()})
    policy = use_policy(tmp_path, monkeypatch, CLEAN_COMMIT)

    train(sqlite_uri)

    message = assert_only_missing(sqlite_uri, "code", policy=policy)
    assert "uncommitted changes" in message
    builtin = tmp_path / "builtin.yaml"
    builtin.write_text(DEFAULT_POLICY_YAML)
    code, verdict = check(sqlite_uri, f"models:/{MODEL}/1", "stage:Production", "--policy", str(builtin))
    assert code == 0, verdict
    assert verdict["evidence"]["code"]["diff_sha256"] == hashlib.sha256(diff).hexdigest()
    assert len(verdict["evidence"]["code"]["commit"]) == 40


@pytest.mark.parametrize("variant", ["unlicensed", "absent"])
def test_only_training_data_missing(sqlite_uri: str, variant: str) -> None:
    original = mlflow_provenance.log_dataset

    def log_dataset(data: Any, **kwargs: Any) -> Any:
        if kwargs.get("context", "training") == "training":
            if variant == "absent":
                return None
            kwargs.pop("license")
        return original(data, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlflow_provenance, "log_dataset", log_dataset)
        train(sqlite_uri)
    message = assert_only_missing(sqlite_uri, "training_data")
    assert ("'wine-train' has no license" if variant == "unlicensed" else "no training dataset recorded") in message


@pytest.mark.parametrize(("variant", "reason"), [
    ("absent", "none recorded"),
    ("on-training-data", "an evaluation used a training dataset"),
    ("threshold-unmet", "thresholds not met: test_final_accuracy"),
])
def test_only_evaluation_missing(sqlite_uri: str, variant: str, reason: str) -> None:
    log_dataset, log_evaluation = mlflow_provenance.log_dataset, mlflow_provenance.log_evaluation
    recorded: dict[str, Any] = {}

    def keep(data: Any, **kwargs: Any) -> Any:
        record = log_dataset(data, **kwargs)
        recorded[kwargs["name"]] = record
        return record

    def evaluate(metrics: Any, **kwargs: Any) -> Any:
        if variant == "absent":
            return None
        if variant == "on-training-data":
            kwargs["dataset"] = recorded["wine-train"]
        else:
            kwargs["thresholds"] = {"test_final_accuracy": 1.5}  # no accuracy reaches it
        return log_evaluation(metrics, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlflow_provenance, "log_dataset", keep)
        mp.setattr(mlflow_provenance, "log_evaluation", evaluate)
        train(sqlite_uri)
    message = assert_only_missing(sqlite_uri, "evaluation", path="alias")
    assert reason in message


def test_only_integrity_missing_after_a_param_is_edited(
    sqlite_uri: str, verify: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    ids = train(sqlite_uri)
    con = sqlite3.connect(inner_db_uri(sqlite_uri)[len("sqlite:///"):])
    with con:
        changed = con.execute("UPDATE params SET value = '0.5' WHERE run_uuid = ? AND key = 'alpha'", (ids["run_id"],))
        assert changed.rowcount == 1
    con.close()
    message = assert_only_missing(sqlite_uri, "integrity")
    assert f"mlflow-provenance verify --run-id {ids['run_id']}" in message
    assert verify(sqlite_uri)[0] == 1


def test_only_owner_missing_and_staging_does_not_need_one(sqlite_uri: str) -> None:
    train(sqlite_uri, owner=False)
    assert_only_missing(sqlite_uri, "owner", path="alias")
    # Staging (built-in: environment, code, training_data, integrity) lets the same version in
    client(sqlite_uri).transition_model_version_stage(MODEL, "1", "Staging")
    ((_, record),) = records(sqlite_uri, "promotion-decision")
    assert (record["target"], record["target_kind"]) == ("Staging", "stage")
    tags = gate_tags(client(sqlite_uri).get_model_version(MODEL, "1"))
    assert tags == {GATE_TAG_PREFIX + "staging": record["blob"]}


def test_a_custom_owner_tag_is_what_counts(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_policy(tmp_path, monkeypatch, "version: 1\naliases:\n  champion:\n    require:\n      owner: {tag: steward}\n")
    train(sqlite_uri)  # sets `owner`, not `steward`
    assert_only_missing(sqlite_uri, "owner", path="alias")
    client(sqlite_uri).set_registered_model_tag(MODEL, "steward", "data-office")
    client(sqlite_uri).set_registered_model_alias(MODEL, "champion", "1")
    ((_, record),) = records(sqlite_uri, "promotion-decision")
    assert json.loads(blob(sqlite_uri, record["blob"])[0])["evidence"] == {
        "policy": load_policy(os.environ[config.ENV_POLICY]).digest, "owner": "data-office"}
    # the custom policy does not gate the Production stage
    client(sqlite_uri).transition_model_version_stage(MODEL, "1", "Production")
    assert len(records(sqlite_uri, "promotion-decision")) == 1


# --- not gated -------------------------------------------------------------------------------


def test_ungated_targets_pass_through(sqlite_uri: str) -> None:
    uri = sqlite_uri
    bare_version(uri)
    c = client(uri)
    refuse(uri, "stage", "bare")  # the gate is on for this version...
    with pytest.raises(MlflowException):
        c.transition_model_version_stage("bare", "1", "Staging")
    c.set_registered_model_alias("bare", "dev", "1")  # ...but not for these
    c.transition_model_version_stage("bare", "1", "Archived")
    mv = c.get_model_version("bare", "1")
    assert (mv.current_stage, mv.aliases, gate_tags(mv)) == ("Archived", ["dev"], {})
    assert not records(uri, "promotion-decision")
    # check refuses to judge what the policy does not gate (a usage error, exit 2)
    assert run_cli("check", "models:/bare@dev", "--target", "alias:dev", "--tracking-uri", uri)[0] == 2
    assert run_cli("check", "models:/bare", "--tracking-uri", uri)[0] == 2


def test_prompts_are_not_gated(sqlite_uri: str) -> None:
    uri = sqlite_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}")
    assert query(uri, "SELECT value FROM registered_model_tags WHERE name = ? AND key = 'mlflow.prompt.is_prompt'",
                 "greeting") == [("true",)]
    mlflow.genai.set_prompt_alias("greeting", alias="champion", version=prompt.version)  # gated for models
    assert query(uri, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                 "greeting", "champion") == [(1,)]
    assert not records(uri, "promotion-decision")


# --- the policy in the ledger ----------------------------------------------------------------

OTHER_POLICY = "version: 1\naliases:\n  champion:\n    require: [owner]\n"


def test_policy_changes_are_ledger_events(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verify: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    uri = sqlite_uri

    def policy_records() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return records(uri, "policy")

    builtin = load_policy(None)
    ProvenanceRegistryStore(uri)
    ((event, record),) = policy_records()
    assert (event["op"], event["entity_type"], event["entity_id"]) == ("set_policy", "policy", "promotion")
    assert (record["blob"], record["origin"], record["media_type"]) == (builtin.digest, "built-in", POLICY_MEDIA_TYPE)
    assert blob(uri, builtin.digest) == (builtin.content, POLICY_MEDIA_TYPE)

    events = event_count(uri)
    ProvenanceRegistryStore(uri)  # restarted, same policy
    assert event_count(uri) == events
    client(uri).search_registered_models()  # MLflow's own store for the URI, same policy
    assert len(policy_records()) == 1

    path = use_policy(tmp_path, monkeypatch, OTHER_POLICY)
    other = load_policy(path)
    store = ProvenanceRegistryStore(uri)
    assert store.policy.digest == other.digest != builtin.digest
    assert [r["blob"] for _, r in policy_records()] == [builtin.digest, other.digest]
    assert policy_records()[-1][1]["origin"] == str(path)
    assert blob(uri, other.digest) == (other.content, POLICY_MEDIA_TYPE)
    ProvenanceRegistryStore(uri)
    assert len(policy_records()) == 2

    # MLflow keeps serving the store it built with the built-in policy until it is rebuilt
    assert client(uri)._get_registry_client().store.policy.digest == builtin.digest
    restart_registry_stores()
    assert client(uri)._get_registry_client().store.policy.digest == other.digest
    assert len(policy_records()) == 2

    monkeypatch.delenv(config.ENV_POLICY)
    ProvenanceRegistryStore(uri)  # back to the built-in: a change again
    assert [r["blob"] for _, r in policy_records()] == [builtin.digest, other.digest, builtin.digest]
    code, report = verify(uri)
    assert code == 0, report


def test_a_bad_policy_stops_the_registry_store(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    uri = sqlite_uri
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\naliases:\n  champion:\n    require: [owner, sign-off]\n")
    monkeypatch.setenv(config.ENV_POLICY, str(path))

    with pytest.raises(ConfigurationError) as info:
        client(uri).search_registered_models()
    assert not isinstance(info.value, MlflowException)
    message = str(info.value)
    assert str(path) in message and "line 4" in message and "'sign-off'" in message and "Fix: " in message
    with pytest.raises(ConfigurationError):
        ProvenanceRegistryStore(uri)
    tables = {r[0] for r in query(uri, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "prov_events" not in tables or not records(uri, "policy")

    path.write_text(OTHER_POLICY)  # fixed: the next attempt starts (MLflow did not cache the failure)
    assert client(uri).search_registered_models() == []
    assert [r["blob"] for _, r in records(uri, "policy")] == [load_policy(path).digest]
