"""``provenance/lineage.html`` at run end, and the quick chain check it shows (issue 6)."""

from __future__ import annotations

import sqlite3

import mlflow
import sqlalchemy as sa

from mlflow_provenance import config
from mlflow_provenance.adapters.lineage_artifact import wait_for_pending
from mlflow_provenance.verify import verify_chain
from tests.conftest import inner_db_uri


def test_ended_run_gets_its_lineage_page_with_a_verified_chain(sqlite_uri, tmp_path):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
    assert wait_for_pending(60)
    (tmp_path / "page").mkdir()
    page = mlflow.MlflowClient().download_artifacts(run.info.run_id, "provenance/lineage.html", str(tmp_path / "page"))
    text = open(page, encoding="utf-8").read()
    assert 'data-verification="ok"' in text
    assert "the run&#x27;s hash chain" in text and f"verify --run-id {run.info.run_id}" in text
    assert "<script" not in text.lower()


def test_chain_check_catches_an_edited_event_and_a_broken_link(sqlite_uri):
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("m", 1.0)
    assert wait_for_pending(60)
    run_id = run.info.run_id
    engine = sa.create_engine(inner_db_uri(sqlite_uri))
    with engine.connect() as conn:
        clean = verify_chain(conn, config.trusted_keyring(), "run", run_id)
    assert clean.ok and clean.events >= 3, [str(f) for f in clean.findings]

    path = inner_db_uri(sqlite_uri)[len("sqlite:///"):]
    con = sqlite3.connect(path)
    with con:
        seq, body = con.execute("SELECT seq, body FROM prov_events WHERE entity_id = ? AND op = 'log_param'",
                                (run_id,)).fetchone()
        con.execute("UPDATE prov_events SET body = ? WHERE seq = ?", (body.replace("0.5", "0.9"), seq))
    con.close()
    with engine.connect() as conn:
        report = verify_chain(conn, config.trusted_keyring(), "run", run_id)
    engine.dispose()
    assert not report.ok
    assert {f.kind for f in report.findings} >= {"event-altered"}
    assert any(f.event == seq for f in report.findings)
