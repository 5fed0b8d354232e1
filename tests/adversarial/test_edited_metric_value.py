"""Attack: a metric's value is changed behind MLflow's back (test_accuracy made to look better)."""

from __future__ import annotations

import math

import pytest

from .findings import assert_caught, assert_clean, finding, run_entity

FINAL_STEP = 9


def _edit_final_accuracy(target, value_sql: str = "0.999") -> None:
    w = target.w
    target.tamper(
        (f"UPDATE metrics SET value = {value_sql} WHERE run_uuid = ? AND key = 'test_accuracy' AND step = ?",
         (w.run_id, FINAL_STEP)),
        (f"UPDATE latest_metrics SET value = {value_sql} WHERE run_uuid = ? AND key = 'test_accuracy'",
         (w.run_id,)),
    )


def _assert_named(target, report) -> None:
    w = target.w
    finding(report, "value-changed", entity=run_entity(w.run_id), field="metrics.value[test_accuracy]",
            event=target.last_writer("metrics", run_uuid=w.run_id, key="test_accuracy", step=FINAL_STEP))
    finding(report, "value-changed", entity=run_entity(w.run_id), field="latest_metrics.value[test_accuracy]",
            event=target.last_writer("latest_metrics", run_uuid=w.run_id, key="test_accuracy"))


def test_edited_metric_value_is_caught(db, verify):
    assert_clean(verify, db.uri)
    _edit_final_accuracy(db)
    _assert_named(db, assert_caught(verify, db.uri))


def test_metric_value_moved_by_one_ulp_is_caught(db, verify):
    """The smallest possible change of a double: SQLite's JSON keeps only 15 digits."""
    assert_clean(verify, db.uri)
    (value,) = db.query(
        "SELECT value FROM metrics WHERE run_uuid = ? AND key = 'test_accuracy' AND step = ?",
        db.w.run_id, FINAL_STEP,
    )[0]
    nudged = math.nextafter(value, 2.0)
    db.tamper(
        ("UPDATE metrics SET value = ? WHERE run_uuid = ? AND key = 'test_accuracy' AND step = ?",
         (nudged, db.w.run_id, FINAL_STEP)),
    )
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=run_entity(db.w.run_id), field="metrics.value[test_accuracy]")


@pytest.mark.postgres
def test_edited_metric_value_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    _edit_final_accuracy(pg_db)
    _assert_named(pg_db, assert_caught(verify, pg_db.uri))
