"""Attack: the link from the training run to the model it produced (MLflow's run output) is deleted.

MLflow 3 records a logged model as an output of its run: an ``inputs`` row with
``source_type = 'RUN_OUTPUT'``. That row belongs to the run — its event belongs on the
run's chain, and ``verify --run-id`` must check it.
"""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity

DELETE_OUTPUT = "DELETE FROM inputs WHERE source_id = ? AND destination_id = ?"


def test_deleted_model_output_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper((DELETE_OUTPUT, (w.run_id, w.model_id)))
    report = assert_caught(verify, db.uri)
    finding(report, "row-deleted", field="inputs",
            event=db.last_writer("inputs", source_id=w.run_id, destination_id=w.model_id))


def test_deleted_model_output_is_named_by_its_run(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("inputs", source_id=w.run_id, destination_id=w.model_id)
    assert db.events()[event - 1]["entity"] == {"type": "run", "id": w.run_id}, "log_outputs is not on the run's chain"
    db.tamper((DELETE_OUTPUT, (w.run_id, w.model_id)))
    report = assert_caught(verify, db.uri)
    finding(report, "row-deleted", entity=run_entity(w.run_id), field="inputs", event=event)


def test_deleted_model_output_is_caught_by_run_scope(db, verify):
    w = db.w
    assert_clean(verify, db.uri, "--run-id", w.run_id)
    db.tamper((DELETE_OUTPUT, (w.run_id, w.model_id)))
    report = assert_caught(verify, db.uri, "--run-id", w.run_id)
    finding(report, "row-deleted", field="inputs")
