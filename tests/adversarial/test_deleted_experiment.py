"""Attack: a whole experiment is deleted, with everything in it, children first (foreign keys on)."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity

RUNS = "(SELECT run_uuid FROM runs WHERE experiment_id = ?)"
MODELS = "(SELECT model_id FROM logged_models WHERE experiment_id = ?)"
DELETE_EXPERIMENT = (
    f"DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE destination_id IN {RUNS} OR source_id IN {RUNS})",
    f"DELETE FROM inputs WHERE destination_id IN {RUNS} OR source_id IN {RUNS}",
    f"DELETE FROM metrics WHERE run_uuid IN {RUNS}",
    f"DELETE FROM latest_metrics WHERE run_uuid IN {RUNS}",
    f"DELETE FROM params WHERE run_uuid IN {RUNS}",
    f"DELETE FROM tags WHERE run_uuid IN {RUNS}",
    f"DELETE FROM logged_model_metrics WHERE model_id IN {MODELS}",
    f"DELETE FROM logged_model_params WHERE model_id IN {MODELS}",
    f"DELETE FROM logged_model_tags WHERE model_id IN {MODELS}",
    "DELETE FROM logged_models WHERE experiment_id = ?",
    "DELETE FROM runs WHERE experiment_id = ?",
    "DELETE FROM datasets WHERE experiment_id = ?",
    "DELETE FROM experiment_tags WHERE experiment_id = ?",
    "DELETE FROM experiments WHERE experiment_id = ?",
)


def test_deleted_experiment_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper("PRAGMA foreign_keys = ON",
              *((sql, (int(w.experiment_id),) * sql.count("?")) for sql in DELETE_EXPERIMENT))
    assert db.scalar("SELECT COUNT(*) FROM experiments WHERE experiment_id = ?", int(w.experiment_id)) == 0
    assert db.scalar("SELECT COUNT(*) FROM runs") == 0
    report = assert_caught(verify, db.uri)
    finding(report, "row-deleted", entity=f"experiment {w.experiment_id}", field="experiments",
            event=db.last_writer("experiments", experiment_id=w.experiment_id))
    for run_id in (w.run_id, w.baseline_run_id, w.deleted_run_id):
        finding(report, "row-deleted", entity=run_entity(run_id), field="runs",
                event=db.last_writer("runs", run_uuid=run_id))
    finding(report, "row-deleted", entity=f"logged_model {w.model_id}", field="logged_models",
            event=db.last_writer("logged_models", model_id=w.model_id))
