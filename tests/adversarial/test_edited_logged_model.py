"""Attack: the logged model row is edited — attributed to another run, and its status flipped."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding


def test_edited_logged_model_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("logged_models", model_id=w.model_id)
    db.tamper(("UPDATE logged_models SET source_run_id = ?, artifact_location = 's3://elsewhere/model' "
               "WHERE model_id = ?", (w.baseline_run_id, w.model_id)))
    report = assert_caught(verify, db.uri)
    entity = f"logged_model {w.model_id}"
    found = finding(report, "value-changed", entity=entity, field="logged_models.source_run_id[model]", event=event)
    assert w.baseline_run_id in found["message"] and w.run_id in found["message"]
    finding(report, "value-changed", entity=entity, field="logged_models.artifact_location[model]", event=event)
