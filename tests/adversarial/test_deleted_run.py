"""Attack: a run is deleted outright, its params, metrics, tags and inputs first (foreign keys on)."""

from __future__ import annotations

import pytest

from .findings import assert_caught, assert_clean, finding, run_entity

CHILDREN = (
    "DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE destination_id = ?)",
    "DELETE FROM inputs WHERE destination_id = ? OR source_id = ?",
    "DELETE FROM metrics WHERE run_uuid = ?",
    "DELETE FROM latest_metrics WHERE run_uuid = ?",
    "DELETE FROM params WHERE run_uuid = ?",
    "DELETE FROM tags WHERE run_uuid = ?",
    "DELETE FROM runs WHERE run_uuid = ?",
)


def _delete_run(target, *pragma):
    run_id = target.w.baseline_run_id
    target.tamper(*pragma, *((sql, (run_id,) * sql.count("?")) for sql in CHILDREN))


def _assert_named(target, report):
    run_id = target.w.baseline_run_id
    finding(report, "row-deleted", entity=run_entity(run_id), field="runs",
            event=target.last_writer("runs", run_uuid=run_id))
    finding(report, "row-deleted", entity=run_entity(run_id), field="metrics",
            event=target.last_writer("metrics", run_uuid=run_id))
    finding(report, "row-deleted", entity=run_entity(run_id), field="params",
            event=target.last_writer("params", run_uuid=run_id))


def test_deleted_run_is_caught(db, verify):
    assert_clean(verify, db.uri)
    assert db.scalar("SELECT COUNT(*) FROM runs WHERE run_uuid = ?", db.w.baseline_run_id) == 1
    _delete_run(db, "PRAGMA foreign_keys = ON")
    assert db.scalar("SELECT COUNT(*) FROM runs WHERE run_uuid = ?", db.w.baseline_run_id) == 0
    _assert_named(db, assert_caught(verify, db.uri))


@pytest.mark.postgres
def test_deleted_run_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    _delete_run(pg_db)
    assert pg_db.scalar("SELECT COUNT(*) FROM runs WHERE run_uuid = ?", pg_db.w.baseline_run_id) == 0
    _assert_named(pg_db, assert_caught(verify, pg_db.uri))
