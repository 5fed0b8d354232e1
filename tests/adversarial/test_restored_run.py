"""Attack: a run deleted with ``mlflow.delete_run`` is quietly brought back to life."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_restored_run_is_caught(db, verify):
    run_id = db.w.deleted_run_id
    assert_clean(verify, db.uri)
    assert db.scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", run_id) == "deleted"
    db.tamper(("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = ?", (run_id,)))
    report = assert_caught(verify, db.uri)
    delete_event = db.last_writer("runs", run_uuid=run_id)
    assert db.events()[delete_event - 1]["op"] == "delete_run"
    finding(report, "value-changed", entity=run_entity(run_id), field="runs.lifecycle_stage[discarded]",
            event=delete_event)
    finding(report, "value-changed", entity=run_entity(run_id), field="runs.deleted_time[discarded]",
            event=delete_event)
