"""Every run a provenance store creates carries its environment manifest (issue 3).

Embedded stores, on SQLite and PostgreSQL: the manifest's canonical bytes are in the
ledger (``prov_blobs``, named by a record of the ``create_run`` event), its digest and
summaries are tags, and ``provenance/environment.json`` is a run artifact with exactly
those bytes — for ``mlflow.start_run`` and ``MlflowClient.create_run`` alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from mlflow_provenance.environment import collector, manifest as env
from tests.conftest import ledger_rows as _ledger

TAGS = ("provenance.env.digest", "provenance.env.status", "provenance.env.python", "provenance.env.os",
        "provenance.env.gpu", "provenance.env.image", "provenance.env.git_commit", "provenance.env.source")


@pytest.fixture
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> collector.Collector:
    """A collector with an empty cache, so probes patched by a test are really called."""
    fresh = collector.Collector()
    monkeypatch.setattr(collector, "_default", fresh)
    return fresh




def _create_run_record(uri: str, run_id: str) -> dict:
    (body,) = _ledger(uri, "SELECT body FROM prov_events WHERE entity_id = ? AND op = 'create_run'", run_id)[0]
    records = json.loads(body)["payload"]["records"]
    assert len(records) == 1
    return records[0]


def _artifact(client: mlflow.MlflowClient, run_id: str, path: str, tmp_path: Path) -> bytes:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_bytes()


def _check_recorded(uri: str, run_id: str, tmp_path: Path, source: str = "store") -> env.Manifest:
    client = mlflow.MlflowClient(tracking_uri=uri)
    tags = client.get_run(run_id).data.tags
    assert set(TAGS) <= set(tags), sorted(tags)
    assert not [k for k in tags if env.is_transport_tag(k)]
    digest = tags["provenance.env.digest"]
    artifact = _artifact(client, run_id, "provenance/environment.json", tmp_path)
    assert "sha256:" + hashlib.sha256(artifact).hexdigest() == digest
    ((stored, media_type),) = _ledger(uri, "SELECT content, media_type FROM prov_blobs WHERE digest = ?", digest)
    assert bytes(stored) == artifact and media_type == env.MEDIA_TYPE
    record = _create_run_record(uri, run_id)
    assert record == {"kind": "environment-manifest", "blob": digest, "media_type": env.MEDIA_TYPE,
                      "status": tags["provenance.env.status"], "source": source,
                      "errors": record["errors"]}
    manifest = env.Manifest.from_bytes(artifact, expected_digest=digest)
    env.validate(manifest.document)
    assert manifest.summary_tags() == {k: v for k, v in tags.items() if k in manifest.summary_tags()}
    assert tags["provenance.env.source"] == source
    return manifest


def test_fluent_run_carries_manifest_in_ledger_tags_and_artifact(store_uri, tmp_path, verify):
    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
    manifest = _check_recorded(store_uri, run.info.run_id, tmp_path)
    assert manifest.status == "complete", manifest.errors
    doc = manifest.document
    assert doc["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert any(d["name"].lower() == "mlflow" for d in doc["python"]["distributions"])
    assert doc["invocation"]["pid"] == os.getpid()
    code, report = verify(store_uri)
    assert code == 0, report["findings"]


def test_seeds_handed_to_the_api_are_in_the_manifest(sqlite_uri, tmp_path, monkeypatch):
    import mlflow_provenance
    from mlflow_provenance.environment import invocation

    monkeypatch.setattr(invocation, "_seeds", {})
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    mlflow_provenance.record_seed("numpy", 1234)
    with pytest.raises(ValueError, match="int or a string"):
        mlflow_provenance.record_seed("torch", 1.5)
    run = mlflow.MlflowClient(tracking_uri=sqlite_uri).create_run("0")
    seeds = _check_recorded(sqlite_uri, run.info.run_id, tmp_path).document["invocation"]["seeds"]
    assert seeds == {"PYTHONHASHSEED": "7", "api:numpy": 1234}


def test_client_create_run_carries_manifest_too(store_uri, tmp_path, verify):
    client = mlflow.MlflowClient(tracking_uri=store_uri)
    run = client.create_run("0", run_name="by-client", tags={"team": "audit"})
    _check_recorded(store_uri, run.info.run_id, tmp_path)
    assert client.get_run(run.info.run_id).data.tags["team"] == "audit"
    assert verify(store_uri)[0] == 0


def test_failing_probe_gives_partial_manifest_and_warning_not_an_error(
    sqlite_uri, tmp_path, fresh_collector, monkeypatch, caplog, verify
):
    from mlflow_provenance.environment import system

    def broken(root):
        raise PermissionError("/etc/os-release: permission denied")

    monkeypatch.setattr(system, "os_info", broken)
    mlflow.set_tracking_uri(sqlite_uri)
    with caplog.at_level(logging.WARNING), mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    manifest = _check_recorded(sqlite_uri, run.info.run_id, tmp_path)
    assert manifest.status == "partial"
    assert manifest.document["os"] == {"error": "PermissionError: /etc/os-release: permission denied"}
    assert manifest.errors == [{"probe": "os", "error": "PermissionError: /etc/os-release: permission denied"}]
    assert "environment probe os failed" in caplog.text
    assert _create_run_record(sqlite_uri, run.info.run_id)["errors"] == 1
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert verify(sqlite_uri)[0] == 0


def test_capture_crash_still_creates_the_run_marked_missing(sqlite_uri, monkeypatch, caplog, verify):
    from mlflow_provenance.adapters import run_environment

    def crash(**kwargs):
        raise RuntimeError("probe machinery broke")

    monkeypatch.setattr(run_environment, "capture_environment", crash)
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    with caplog.at_level(logging.WARNING):
        run = client.create_run("0")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["provenance.env.status"] == "missing"
    assert "probe machinery broke" in tags["provenance.env.error"]
    assert "provenance.env.digest" not in tags
    assert _create_run_record(sqlite_uri, run.info.run_id)["status"] == "missing"
    assert "without an environment manifest" in caplog.text
    assert verify(sqlite_uri)[0] == 0


def test_manifest_sent_in_transport_tags_is_taken_and_not_stored_as_tags(sqlite_uri, tmp_path, verify):
    sent = collector.Collector().capture()
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    run = client.create_run("0", tags=env.transport_tags(sent))
    manifest = _check_recorded(sqlite_uri, run.info.run_id, tmp_path, source="client")
    assert manifest.digest == sent.digest
    assert verify(sqlite_uri)[0] == 0


@pytest.mark.parametrize("damage", ["tampered part", "wrong digest", "missing part"])
def test_bad_transport_marks_run_missing_and_stores_nothing_of_it(sqlite_uri, damage, verify):
    tags = env.transport_tags(collector.Collector().capture())
    parts = sorted(k for k in tags if env.is_transport_tag(k))
    if damage == "tampered part":
        tags[parts[0]] = tags[parts[0]][:-8] + "AAAAAAAA"
    elif damage == "wrong digest":
        tags["provenance.env.digest"] = "sha256:" + "0" * 64
    else:
        assert len(parts) >= 2
        del tags[parts[0]]
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    run = client.create_run("0", tags=tags)
    stored = client.get_run(run.info.run_id).data.tags
    assert stored["provenance.env.status"] == "missing"
    assert stored["provenance.env.error"].startswith("the client's environment manifest was rejected")
    assert not [k for k in stored if env.is_transport_tag(k)]
    assert "provenance.env.digest" not in stored
    assert verify(sqlite_uri)[0] == 0


def test_server_mode_without_client_manifest_marks_run_missing(sqlite_uri, monkeypatch, verify):
    # A store in server mode cannot see the client's machine; it must not record its own.
    monkeypatch.setenv("MLFLOW_PROVENANCE_MODE", "server")
    key = Path(os.environ["MLFLOW_PROVENANCE_HOME"]).parent / "server.key"
    from tests.conftest import run_cli

    assert run_cli("keygen", "--out", str(key))[0] == 0
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    run = client.create_run("0")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["provenance.env.status"] == "missing"
    assert "client without mlflow-provenance" in tags["provenance.env.error"]
    assert verify(sqlite_uri)[0] == 0


def test_run_context_provider_only_speaks_to_remote_servers(monkeypatch):
    from mlflow_provenance.adapters.run_context import ProvenanceRunContext

    provider = ProvenanceRunContext()
    mlflow.set_tracking_uri("provenance+sqlite:///x.db")
    assert provider.in_context() is False
    mlflow.set_tracking_uri("sqlite:///x.db")
    assert provider.in_context() is False
    mlflow.set_tracking_uri("http://127.0.0.1:5000")
    assert provider.in_context() is True
    tags = provider.tags()
    assert all(len(v) <= 8000 for v in tags.values())
    received = env.from_transport(tags)
    assert received is not None and received.digest == tags["provenance.env.digest"]
    from mlflow.tracking.context.registry import _run_context_provider_registry

    assert any(isinstance(p, ProvenanceRunContext) for p in _run_context_provider_registry)


def test_dirty_git_work_tree_diff_becomes_an_artifact(tmp_path, sqlite_uri):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    script = repo / "train.py"
    script.write_text(
        "import sys, mlflow\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "with mlflow.start_run() as run:\n"
        "    pass\n"
        "print(run.info.run_id)\n"
    )
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=repo, check=True)
    script.write_text(script.read_text() + "# tuned by hand\n")
    diff = subprocess.run(["git", "diff", "HEAD", "--binary", "--no-color"], cwd=repo,
                          capture_output=True, check=True).stdout
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    done = subprocess.run([sys.executable, str(script), sqlite_uri], cwd=repo, capture_output=True,
                          text=True, timeout=120, env=os.environ)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1]
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    tags = client.get_run(run_id).data.tags
    assert tags["provenance.env.git_commit"] == f"{head} (dirty)"
    assert _artifact(client, run_id, "provenance/git.diff", tmp_path) == diff
    manifest = env.Manifest.from_bytes(_artifact(client, run_id, "provenance/environment.json", tmp_path / "m"))
    git_section = manifest.document["code"]["git"]
    assert git_section["diff"]["sha256"] == hashlib.sha256(diff).hexdigest()
    entry = manifest.document["code"]["entry_point"]
    assert entry["path"] == str(script) and entry["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()


@pytest.mark.parametrize("write", ["set_tag", "delete_tag", "log_batch"])
def test_manifest_tags_cannot_be_rewritten_through_the_api(sqlite_uri, write, verify):
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=sqlite_uri)
    run = client.create_run("0")
    before = client.get_run(run.info.run_id).data.tags
    calls = {
        "set_tag": lambda: client.set_tag(run.info.run_id, "provenance.env.digest", "sha256:" + "0" * 64),
        "delete_tag": lambda: client.delete_tag(run.info.run_id, "provenance.env.status"),
        "log_batch": lambda: client.log_batch(run.info.run_id, tags=[RunTag("ok", "1"), RunTag("provenance.env.gpu", "8 × H100")]),
    }
    with pytest.raises(MlflowException, match="set by mlflow-provenance when the run is created") as raised:
        calls[write]()
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.tags == before  # nothing half-written
    client.set_tag(run.info.run_id, "provenance_note", "other prefixes are fine")
    assert verify(sqlite_uri)[0] == 0
