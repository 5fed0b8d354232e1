"""Attack: the stored environment manifest is rewritten (a package version made to look approved)."""

from __future__ import annotations

import json

from .environment_manifest import manifest_of
from .findings import assert_caught, assert_clean, finding, run_entity


def test_altered_environment_manifest_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    digest, event = manifest_of(db, w.run_id)
    content = db.scalar("SELECT content FROM prov_blobs WHERE digest = ?", digest)
    document = json.loads(bytes(content))
    document["python"]["version"] = "3.99.0"
    forged = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    db.tamper(("UPDATE prov_blobs SET content = ? WHERE digest = ?", (forged, digest)))
    report = assert_caught(verify, db.uri)
    finding(report, "blob-altered", entity=run_entity(w.run_id), event=event)
