"""Attack: the training data's lineage is altered — the dataset record edited, or the run's input removed."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_edited_dataset_source_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper(("UPDATE datasets SET dataset_source = '{\"uri\": \"s3://curated/wine-clean.parquet\"}' "
               "WHERE name = 'wine-train'", ()))
    report = assert_caught(verify, db.uri)
    found = finding(report, "value-changed", entity=f"experiment {w.experiment_id}",
                    field="datasets.dataset_source[wine-train]", event=db.last_writer("datasets", name="wine-train"))
    assert "s3://curated" in found["message"]


def test_edited_dataset_digest_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("datasets", name="wine-train")
    db.tamper(("UPDATE datasets SET digest = 'deadbeef' WHERE name = 'wine-train'", ()))
    report = assert_caught(verify, db.uri)
    missing = finding(report, "row-deleted", entity=f"experiment {w.experiment_id}", field="datasets", event=event)
    assert "wine-train" in missing["message"]
    finding(report, "row-inserted", entity=f"experiment {w.experiment_id}", field="datasets")


def test_deleted_dataset_input_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("inputs", destination_id=w.run_id, source_type="DATASET")
    db.tamper(
        ("DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE destination_id = ?)",
         (w.run_id,)),
        ("DELETE FROM inputs WHERE destination_id = ? AND source_type = 'DATASET'", (w.run_id,)),
    )
    report = assert_caught(verify, db.uri)
    finding(report, "row-deleted", entity=run_entity(w.run_id), field="inputs", event=event)
    finding(report, "row-deleted", field="input_tags", event=event)
