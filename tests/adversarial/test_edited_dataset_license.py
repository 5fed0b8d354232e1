"""Attack: the training data's license is rewritten in MLflow's dataset row (its profile),
to make restricted data look redistributable."""

from __future__ import annotations

import json

from .findings import assert_caught, assert_clean, finding


def test_edited_dataset_license_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("datasets", name="wine-train")
    profile = json.loads(db.scalar("SELECT dataset_profile FROM datasets WHERE name = 'wine-train'"))
    assert profile["mlflow_provenance"]["license"]["expression"] == "CC-BY-4.0"
    profile["mlflow_provenance"]["license"] = {"expression": "CC0-1.0", "kind": "spdx"}
    db.tamper(("UPDATE datasets SET dataset_profile = ? WHERE name = 'wine-train'", (json.dumps(profile),)))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=f"experiment {w.experiment_id}",
            field="datasets.dataset_profile[wine-train]", event=event)
