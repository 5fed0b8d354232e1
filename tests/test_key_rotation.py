"""Rotating the signing key keeps older checkpoints verifiable (DESIGN.md §5, Keys)."""

from __future__ import annotations

import datetime as dt
import time

import yaml

from mlflow_provenance.adapters.binding import dispose_engines
from mlflow_provenance.keys import load_signing_key
from tests.conftest import run_cli


def _log_a_finished_run(uri: str) -> None:
    from mlflow.entities import Metric, RunStatus

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    store = ProvenanceTrackingStore(uri)
    run = store.create_run("0", "alice", int(time.time() * 1000), [], "r")
    store.log_metric(run.info.run_id, Metric("acc", 0.5, 1, 0))
    store.update_run_info(run.info.run_id, RunStatus.FINISHED, 2, None)
    dispose_engines()  # the next store re-reads MLFLOW_PROVENANCE_KEY


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_rotated_keys_verify_within_their_windows(sqlite_uri, tmp_path, monkeypatch, verify):
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    run_cli("keygen", "--out", str(old))
    run_cli("keygen", "--out", str(new))
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(old))
    _log_a_finished_run(sqlite_uri)
    rotation = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(new))
    _log_a_finished_run(sqlite_uri)

    keyring = tmp_path / "keyring.yaml"
    keyring.write_text(yaml.safe_dump({"keys": [
        {"vkey": load_signing_key(old).public_key.vkey(), "not_before": None, "not_after": _iso(rotation)},
        {"vkey": load_signing_key(new).public_key.vkey(), "not_before": _iso(rotation), "not_after": None},
    ]}))
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEYRING", str(keyring))
    code, report = verify(sqlite_uri)
    assert code == 0, report["findings"]
    assert report["checkpoints"] >= 3

    # Only the new key trusted: the old checkpoints no longer verify.
    keyring.write_text(yaml.safe_dump({"keys": [{"vkey": load_signing_key(new).public_key.vkey()}]}))
    code, report = verify(sqlite_uri)
    assert code == 1
    assert {f["kind"] for f in report["findings"]} == {"checkpoint-signature"}


def test_a_key_used_outside_its_window_is_refused(sqlite_uri, tmp_path, monkeypatch, verify):
    key = tmp_path / "k.pem"
    run_cli("keygen", "--out", str(key))
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    _log_a_finished_run(sqlite_uri)
    retired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    keyring = tmp_path / "keyring.yaml"
    keyring.write_text(yaml.safe_dump({"keys": [
        {"vkey": load_signing_key(key).public_key.vkey(), "not_after": _iso(retired)}]}))
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEYRING", str(keyring))
    monkeypatch.delenv("MLFLOW_PROVENANCE_KEY")  # trust only the keyring
    code, report = verify(sqlite_uri)
    assert code == 1
    assert any(f["kind"] == "checkpoint-signature" for f in report["findings"])
