"""Attack: a registered model version is pointed at other weights, or at another run."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding


def _version_entity(w):
    return f"model_version {w.model_name}/{w.version}"


def test_edited_model_version_source_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("model_versions", name=w.model_name, version=w.version)
    db.tamper(("UPDATE model_versions SET source = 's3://attacker/model' WHERE name = ? AND version = ?",
               (w.model_name, int(w.version))))
    report = assert_caught(verify, db.uri)
    found = finding(report, "value-changed", entity=_version_entity(w), field=f"model_versions.source[{w.model_name}]",
                    event=event)
    assert "s3://attacker/model" in found["message"]


def test_edited_model_version_run_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("model_versions", name=w.model_name, version=w.version)
    db.tamper(("UPDATE model_versions SET run_id = ? WHERE name = ? AND version = ?",
               (w.baseline_run_id, w.model_name, int(w.version))))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=_version_entity(w), field=f"model_versions.run_id[{w.model_name}]",
            event=event)
