"""Attack: the environment manifest of a run is deleted (the run's environment disowned)."""

from __future__ import annotations

from .environment_manifest import manifest_of
from .findings import assert_caught, assert_clean, finding, run_entity


def test_deleted_environment_manifest_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    digest, event = manifest_of(db, w.run_id)
    db.tamper(("DELETE FROM prov_blobs WHERE digest = ?", (digest,)))
    report = assert_caught(verify, db.uri)
    finding(report, "blob-missing", entity=run_entity(w.run_id), event=event)
