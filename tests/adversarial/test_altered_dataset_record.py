"""Attack: the dataset record kept in the ledger is rewritten — its parent removed, so the
training data no longer traces back to the raw source."""

from __future__ import annotations

import json

from mlflow_provenance.canonical import canonical_json

from .findings import assert_caught, assert_clean, finding, run_entity
from .record_blobs import record_of


def test_altered_dataset_record_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    blob, event, summary = record_of(db, "dataset", run_id=w.run_id, context="training")
    document = json.loads(bytes(db.scalar("SELECT content FROM prov_blobs WHERE digest = ?", blob)))
    assert document["name"] == "wine-train" and document["parents"]
    document["parents"] = []
    db.tamper(("UPDATE prov_blobs SET content = ? WHERE digest = ?", (canonical_json(document), blob)))
    report = assert_caught(verify, db.uri)
    finding(report, "blob-altered", entity=run_entity(w.run_id), event=event)
