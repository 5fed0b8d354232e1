"""Attack: a metric's timestamp is rewritten (backdating a result)."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_edited_metric_timestamp_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    (timestamp,) = db.query(
        "SELECT timestamp FROM metrics WHERE run_uuid = ? AND key = 'test_f1_macro'", w.run_id
    )[0]
    event = db.last_writer("metrics", run_uuid=w.run_id, key="test_f1_macro")
    db.tamper(("UPDATE metrics SET timestamp = timestamp - 86400000 WHERE run_uuid = ? AND key = 'test_f1_macro'",
               (w.run_id,)))
    report = assert_caught(verify, db.uri)
    missing = finding(report, "row-deleted", entity=run_entity(w.run_id), field="metrics", event=event)
    assert "test_f1_macro" in missing["message"] and f"timestamp={timestamp}" in missing["message"]
    added = finding(report, "row-inserted", entity=run_entity(w.run_id), field="metrics")
    assert f"timestamp={timestamp - 86400000}" in added["message"]
