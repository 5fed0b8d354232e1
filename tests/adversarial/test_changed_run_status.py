"""Attack: a run's status is rewritten (a FINISHED run marked FAILED, a failed one passed off as FINISHED)."""

from __future__ import annotations

import pytest

from .findings import assert_caught, assert_clean, finding, run_entity


def _mark_failed(target):
    target.tamper(("UPDATE runs SET status = 'FAILED' WHERE run_uuid = ?", (target.w.run_id,)))


def _assert_named(target, report):
    w = target.w
    found = finding(report, "value-changed", entity=run_entity(w.run_id), field=f"runs.status[{w.run_name}]",
                    event=target.last_writer("runs", run_uuid=w.run_id))
    assert "FAILED" in found["message"] and "FINISHED" in found["message"]


def test_changed_run_status_is_caught(db, verify):
    assert_clean(verify, db.uri)
    _mark_failed(db)
    _assert_named(db, assert_caught(verify, db.uri))


@pytest.mark.postgres
def test_changed_run_status_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    _mark_failed(pg_db)
    _assert_named(pg_db, assert_caught(verify, pg_db.uri))
