"""``verify --run-id``: still catches an attack on that run, and does not report other runs' rows."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, no_finding_about, run_entity


def _edit_accuracy(target, run_id):
    target.tamper(("UPDATE metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_accuracy'", (run_id,)),
                  ("UPDATE latest_metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_accuracy'", (run_id,)))


def test_run_scope_catches_an_attack_on_its_run(db, verify):
    w = db.w
    assert_clean(verify, db.uri, "--run-id", w.run_id)
    _edit_accuracy(db, w.run_id)
    report = assert_caught(verify, db.uri, "--run-id", w.run_id)
    assert report["scope"] == f"run {w.run_id}"
    finding(report, "value-changed", entity=run_entity(w.run_id), field="metrics.value[test_accuracy]")


def test_run_scope_catches_a_removed_dataset_input(db, verify):
    w = db.w
    assert_clean(verify, db.uri, "--run-id", w.run_id)
    db.tamper(("DELETE FROM inputs WHERE destination_id = ? AND source_type = 'DATASET'", (w.run_id,)))
    report = assert_caught(verify, db.uri, "--run-id", w.run_id)
    finding(report, "row-deleted", entity=run_entity(w.run_id), field="inputs")


def test_run_scope_does_not_report_other_runs(db, verify):
    w = db.w
    assert_clean(verify, db.uri, "--run-id", w.run_id)
    _edit_accuracy(db, w.baseline_run_id)
    assert_clean(verify, db.uri, "--run-id", w.run_id)


def test_run_scope_reports_only_its_run_when_several_are_attacked(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    _edit_accuracy(db, w.run_id)
    _edit_accuracy(db, w.baseline_run_id)
    db.tamper(("UPDATE params SET value = '0.9' WHERE run_uuid = ? AND key = 'alpha'", (w.baseline_run_id,)))
    report = assert_caught(verify, db.uri, "--run-id", w.baseline_run_id)
    finding(report, "value-changed", entity=run_entity(w.baseline_run_id), field="params.value[alpha]")
    no_finding_about(report, run_entity(w.run_id))
    assert {f["entity"] for f in report["findings"]} == {run_entity(w.baseline_run_id)}, report["findings"]


def test_run_scope_catches_its_run_deleted(db, verify):
    """The scoped run itself is gone: its recorded rows are still expected."""
    w = db.w
    assert_clean(verify, db.uri, "--run-id", w.baseline_run_id)
    db.tamper(*((f"DELETE FROM {table} WHERE run_uuid = ?", (w.baseline_run_id,))
                for table in ("metrics", "latest_metrics", "params", "tags", "runs")))
    report = assert_caught(verify, db.uri, "--run-id", w.baseline_run_id)
    finding(report, "row-deleted", entity=run_entity(w.baseline_run_id), field="runs")
