"""Attack: a run's param row is deleted (hiding how the model was configured)."""

from __future__ import annotations

import pytest

from .findings import assert_caught, assert_clean, finding, run_entity


def _delete_seed(target):
    target.tamper(("DELETE FROM params WHERE run_uuid = ? AND key = 'seed'", (target.w.run_id,)))


def _assert_named(target, report):
    w = target.w
    found = finding(report, "row-deleted", entity=run_entity(w.run_id), field="params",
                    event=target.last_writer("params", run_uuid=w.run_id, key="seed"))
    assert "seed" in found["message"]


def test_deleted_param_is_caught(db, verify):
    assert_clean(verify, db.uri)
    _delete_seed(db)
    _assert_named(db, assert_caught(verify, db.uri))


@pytest.mark.postgres
def test_deleted_param_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    _delete_seed(pg_db)
    _assert_named(pg_db, assert_caught(verify, pg_db.uri))
