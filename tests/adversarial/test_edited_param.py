"""Attack: a run's hyper-parameter is edited after the fact."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_edited_param_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("params", run_uuid=w.run_id, key="alpha")
    db.tamper(("UPDATE params SET value = '0.5' WHERE run_uuid = ? AND key = 'alpha'", (w.run_id,)))
    report = assert_caught(verify, db.uri)
    found = finding(report, "value-changed", entity=run_entity(w.run_id), field="params.value[alpha]", event=event)
    assert "0.5" in found["message"]
