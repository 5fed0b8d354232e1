"""Attack: a write through plain MLflow — ``SqlAlchemyStore`` on the inner URI, no provenance store."""

from __future__ import annotations

from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.time import get_current_time_millis

from tests.conftest import inner_db_uri

from .findings import assert_caught, assert_clean, finding, run_entity


def test_write_that_bypassed_the_ledger_is_caught(db, verify, tmp_path):
    w = db.w
    assert_clean(verify, db.uri)
    store = SqlAlchemyStore(inner_db_uri(db.uri), str(tmp_path / "artifacts"))
    assert type(store) is SqlAlchemyStore
    store.log_metric(w.run_id, Metric("test_accuracy", 1.0, get_current_time_millis(), 10))
    store.engine.dispose()
    report = assert_caught(verify, db.uri)
    finding(report, "write-bypassed-ledger", entity="ledger")
    inserted = finding(report, "row-inserted", entity=run_entity(w.run_id), field="metrics", event=None)
    assert "test_accuracy" in inserted["message"] and "step=10" in inserted["message"]
    finding(report, "value-changed", entity=run_entity(w.run_id), field="latest_metrics.step[test_accuracy]")
