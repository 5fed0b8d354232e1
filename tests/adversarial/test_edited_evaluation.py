"""Attack: an evaluation result is improved after the fact — the metric row, or the
evaluation record (its value and the threshold verdict) kept in the ledger."""

from __future__ import annotations

import json

from mlflow_provenance.canonical import canonical_json

from .findings import assert_caught, assert_clean, finding, run_entity
from .record_blobs import record_of


def test_edited_evaluation_metric_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("metrics", run_uuid=w.run_id, key="test_final_accuracy")
    db.tamper(("UPDATE metrics SET value = 0.99 WHERE run_uuid = ? AND key = 'test_final_accuracy'", (w.run_id,)))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=run_entity(w.run_id), event=event)


def test_edited_evaluation_record_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    blob, event, _ = record_of(db, "evaluation", run_id=w.run_id)
    document = json.loads(bytes(db.scalar("SELECT content FROM prov_blobs WHERE digest = ?", blob)))
    document["metrics"]["test_final_accuracy"] = 0.99
    document["thresholds"]["test_final_accuracy"].update(met=True)
    document["thresholds_met"] = True
    db.tamper(("UPDATE prov_blobs SET content = ? WHERE digest = ?", (canonical_json(document), blob)))
    report = assert_caught(verify, db.uri)
    finding(report, "blob-altered", entity=run_entity(w.run_id), event=event)
