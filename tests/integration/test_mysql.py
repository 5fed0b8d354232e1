"""The same ledger on MySQL/MariaDB: capture triggers, verify, tamper detection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import inner_db_uri

pytestmark = pytest.mark.mysql


def test_mysql_store_records_and_verify_detects_a_tamper(mysql_uri, verify):
    import mlflow

    mlflow.set_tracking_uri(mysql_uri)
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metrics({"acc": 0.5, "loss": 1.25}, step=1)
        mlflow.set_tag("team", "audit")
    client = mlflow.MlflowClient()
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("m", "shadow", version.version)  # an ungated alias

    code, report = verify(mysql_uri)
    assert code == 0, report["findings"]
    assert report["runs"] == 1 and report["checkpoints"] >= 2

    engine = sa.create_engine(inner_db_uri(mysql_uri))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE metrics SET value = 0.75 WHERE `key` = 'acc'")
        conn.exec_driver_sql("UPDATE registered_model_aliases SET version = 7")
    engine.dispose()
    code, report = verify(mysql_uri)
    assert code == 1
    fields = {(f["entity"], f["field"]) for f in report["findings"]}
    assert (f"run {run.info.run_id}", "metrics.value[acc]") in fields
    assert any(field and field.startswith("registered_model_aliases.version") for _, field in fields)
