"""Attack: a run's manifest is swapped for another one, consistently — new document under its
own correct digest, and the run's digest tag pointed at it."""

from __future__ import annotations

import hashlib
import json

from mlflow_provenance.canonical import canonical_json

from .environment_manifest import DIGEST_TAG, manifest_of
from .findings import assert_caught, assert_clean, finding, run_entity


def test_swapped_environment_manifest_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    digest, event = manifest_of(db, w.run_id)
    document = json.loads(bytes(db.scalar("SELECT content FROM prov_blobs WHERE digest = ?", digest)))
    document["gpu"] = {"available": False, "reason": "no NVIDIA driver: (forged)"}
    forged = canonical_json(document)
    forged_digest = "sha256:" + hashlib.sha256(forged).hexdigest()
    db.tamper(
        ("INSERT INTO prov_blobs (digest, media_type, content) SELECT ?, media_type, ? FROM prov_blobs WHERE digest = ?",
         (forged_digest, forged, digest)),
        ("UPDATE tags SET value = ? WHERE run_uuid = ? AND key = ?", (forged_digest, w.run_id, DIGEST_TAG)),
    )
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=run_entity(w.run_id), field=f"tags.value[{DIGEST_TAG}]", event=event)
    finding(report, "blob-unreferenced")
