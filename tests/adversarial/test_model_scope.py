"""``verify --model NAME/VERSION``: catches attacks on the version, on its run and on what the run used and produced."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def _scope(w, version=None):
    return ("--model", f"{w.model_name}/{version or w.version}")


def test_model_scope_catches_an_edited_version(db, verify):
    w = db.w
    assert_clean(verify, db.uri, *_scope(w))
    db.tamper(("UPDATE model_versions SET source = 's3://attacker/model' WHERE name = ? AND version = ?",
               (w.model_name, int(w.version))))
    report = assert_caught(verify, db.uri, *_scope(w))
    finding(report, "value-changed", entity=f"model_version {w.model_name}/{w.version}",
            field=f"model_versions.source[{w.model_name}]")


def test_model_scope_catches_an_edited_metric_of_its_run(db, verify):
    w = db.w
    assert_clean(verify, db.uri, *_scope(w))
    db.tamper(("UPDATE metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_f1_macro'", (w.run_id,)))
    report = assert_caught(verify, db.uri, *_scope(w))
    finding(report, "value-changed", entity=run_entity(w.run_id), field="metrics.value[test_f1_macro]")


def test_model_scope_does_not_report_other_versions(db, verify):
    w = db.w
    assert_clean(verify, db.uri, *_scope(w))
    db.tamper(("UPDATE model_versions SET source = 's3://attacker/model' WHERE name = ? AND version = ?",
               (w.model_name, int(w.second_version))))
    report = assert_caught(verify, db.uri, *_scope(w, w.second_version))
    assert {f["entity"] for f in report["findings"]} == {f"model_version {w.model_name}/{w.second_version}"}
    assert_clean(verify, db.uri, *_scope(w))


def test_model_scope_catches_a_removed_training_dataset(db, verify):
    """The version's lineage to its data: the run's dataset input is deleted."""
    w = db.w
    assert_clean(verify, db.uri, *_scope(w))
    db.tamper(("DELETE FROM inputs WHERE destination_id = ? AND source_type = 'DATASET'", (w.run_id,)))
    report = assert_caught(verify, db.uri, *_scope(w))
    finding(report, "row-deleted", entity=run_entity(w.run_id), field="inputs")


def test_model_scope_catches_redirected_weights(db, verify):
    """The version's source is ``models:/<model_id>``; the logged model's artifact location is moved."""
    w = db.w
    assert db.scalar("SELECT source FROM model_versions WHERE name = ? AND version = ?",
                     w.model_name, int(w.version)) == f"models:/{w.model_id}"
    assert_clean(verify, db.uri, *_scope(w))
    db.tamper(("UPDATE logged_models SET artifact_location = 's3://attacker/weights' WHERE model_id = ?",
               (w.model_id,)))
    report = assert_caught(verify, db.uri, *_scope(w))
    finding(report, "value-changed", entity=f"logged_model {w.model_id}",
            field="logged_models.artifact_location[model]")
