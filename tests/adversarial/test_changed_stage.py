"""Attack: a model version is put in stage Production with SQL, skipping the registry (and its gate)."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding


def test_changed_stage_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    assert db.scalar("SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                     w.model_name, int(w.version)) == "Staging"
    event = db.last_writer("model_versions", name=w.model_name, version=w.version)
    assert db.events()[event - 1]["op"] == "transition_model_version_stage"
    db.tamper(("UPDATE model_versions SET current_stage = 'Production' WHERE name = ? AND version = ?",
               (w.model_name, int(w.version))))
    report = assert_caught(verify, db.uri)
    found = finding(report, "value-changed", entity=f"model_version {w.model_name}/{w.version}",
                    field=f"model_versions.current_stage[{w.model_name}]", event=event)
    assert "Production" in found["message"] and "Staging" in found["message"]
