"""Attack: a run is renamed, in the runs row and in MLflow's mirror tag ``mlflow.runName``."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_renamed_run_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper(
        ("UPDATE runs SET name = 'production-candidate' WHERE run_uuid = ?", (w.run_id,)),
        ("UPDATE tags SET value = 'production-candidate' WHERE run_uuid = ? AND key = 'mlflow.runName'", (w.run_id,)),
    )
    report = assert_caught(verify, db.uri)
    found = finding(report, "value-changed", entity=run_entity(w.run_id), field=f"runs.name[{w.run_name}]",
                    event=db.last_writer("runs", run_uuid=w.run_id))
    assert "production-candidate" in found["message"]
    finding(report, "value-changed", entity=run_entity(w.run_id), field="tags.value[mlflow.runName]",
            event=db.last_writer("tags", run_uuid=w.run_id, key="mlflow.runName"))
