"""Attack: a metric point is moved to another step (an early, better epoch relabelled as the last).

``step`` is part of MLflow's metric primary key, so the edited row no longer matches the
recorded one by key: the report must still name the run, the metric and the event.
"""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_edited_metric_step_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("metrics", run_uuid=w.run_id, key="test_accuracy", step=3)
    db.tamper(("UPDATE metrics SET step = 42 WHERE run_uuid = ? AND key = 'test_accuracy' AND step = 3",
               (w.run_id,)))
    report = assert_caught(verify, db.uri)
    missing = finding(report, "row-deleted", entity=run_entity(w.run_id), field="metrics", event=event)
    assert "test_accuracy" in missing["message"] and "step=3" in missing["message"]
    added = finding(report, "row-inserted", entity=run_entity(w.run_id), field="metrics")
    assert "step=42" in added["message"]
