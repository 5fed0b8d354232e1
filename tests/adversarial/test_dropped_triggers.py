"""Attack: the capture triggers are dropped (or gutted) so that later writes leave no trace."""

from __future__ import annotations

import mlflow
from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from tests.conftest import inner_db_uri

from .findings import assert_caught, assert_clean, finding, run_entity


def _metric_triggers(target):
    return [name for (name,) in target.query(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'metrics'")]


def test_dropped_triggers_are_caught(db, verify):
    assert_clean(verify, db.uri)
    triggers = _metric_triggers(db)
    assert len(triggers) == 3
    db.tamper(*(f'DROP TRIGGER "{name}"' for name in triggers))
    report = assert_caught(verify, db.uri)
    finding(report, "capture-disabled", entity="ledger")


def test_write_after_dropped_triggers_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper(*(f'DROP TRIGGER "{name}"' for name in _metric_triggers(db)))
    db.tamper(("UPDATE metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_f1_macro'", (w.run_id,)))
    report = assert_caught(verify, db.uri)
    finding(report, "capture-disabled", entity="ledger")
    finding(report, "value-changed", entity=run_entity(w.run_id), field="metrics.value[test_f1_macro]")


def test_write_after_gutted_triggers_is_caught(db, verify, tmp_path):
    """Triggers replaced by no-ops under their own names; then plain MLflow logs a metric."""
    w = db.w
    assert_clean(verify, db.uri)
    triggers = db.query("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'metrics'")
    statements = []
    for name, sql in triggers:
        head = sql.split(" FOR EACH ROW", 1)[0]
        statements += [f'DROP TRIGGER "{name}"', f"{head} FOR EACH ROW BEGIN SELECT 1; END"]
    db.tamper(*statements)
    store = SqlAlchemyStore(inner_db_uri(db.uri), str(tmp_path / "artifacts"))
    store.log_metric(w.run_id, Metric("test_accuracy", 1.0, mlflow.utils.time.get_current_time_millis(), 10))
    store.engine.dispose()
    report = assert_caught(verify, db.uri)
    finding(report, "row-inserted", entity=run_entity(w.run_id), field="metrics")
