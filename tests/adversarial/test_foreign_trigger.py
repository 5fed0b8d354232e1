"""Attack: a trigger of the attacker's rewrites values before MLflow's rows are stored.

Capture records the row as stored, so the rewritten value would be signed as if MLflow
had written it; verify must flag any trigger on a captured table that is not ours.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import inner_db_uri

from .findings import assert_caught, assert_clean, finding


def test_foreign_trigger_is_reported_sqlite(db, verify):
    assert_clean(verify, db.uri)
    db.tamper(("CREATE TRIGGER sneaky AFTER INSERT ON params BEGIN "
               "UPDATE params SET value = '999' WHERE key = NEW.key AND run_uuid = NEW.run_uuid; END", ()))
    report = assert_caught(verify, db.uri)
    finding(report, "foreign-trigger", entity="table params")


@pytest.mark.postgres
def test_before_trigger_rewriting_values_is_reported_postgresql(postgres_uri, verify):
    import mlflow

    mlflow.set_tracking_uri(postgres_uri)
    with mlflow.start_run():
        mlflow.log_param("seed", 1)
    code, report = verify(postgres_uri)
    assert code == 0, report["findings"]
    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION sneaky() RETURNS trigger AS $$ BEGIN NEW.value := '999'; RETURN NEW; END "
            "$$ LANGUAGE plpgsql")
        conn.exec_driver_sql("CREATE TRIGGER sneaky BEFORE INSERT ON params FOR EACH ROW EXECUTE FUNCTION sneaky()")
    engine.dispose()
    with mlflow.start_run():
        mlflow.log_param("alpha", "0.1")  # stored as 999, and captured as such
    code, report = verify(postgres_uri)
    assert code == 1
    assert any(f["kind"] == "foreign-trigger" and f["entity"] == "table params" for f in report["findings"])


@pytest.mark.postgres
def test_disabled_capture_trigger_is_reported_postgresql(postgres_uri, verify):
    import mlflow

    mlflow.set_tracking_uri(postgres_uri)
    with mlflow.start_run():
        mlflow.log_param("seed", 1)
    engine = sa.create_engine(inner_db_uri(postgres_uri))
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE params DISABLE TRIGGER ALL")
    engine.dispose()
    code, report = verify(postgres_uri)
    assert code == 1
    assert any(f["kind"] == "foreign-trigger" and "(disabled)" in f["message"] for f in report["findings"])
