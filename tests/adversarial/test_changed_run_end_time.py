"""Attack: a run's end time is moved (to fit it inside an approved window)."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_changed_run_end_time_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper(("UPDATE runs SET end_time = end_time + 3600000 WHERE run_uuid = ?", (w.run_id,)))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=run_entity(w.run_id), field=f"runs.end_time[{w.run_name}]",
            event=db.last_writer("runs", run_uuid=w.run_id))
