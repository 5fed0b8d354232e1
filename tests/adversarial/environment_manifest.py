"""Where a run's environment manifest sits, for the attacks on it."""

from __future__ import annotations

from typing import Any

DIGEST_TAG = "provenance.env.digest"


def manifest_of(db: Any, run_id: str) -> tuple[str, int]:
    """The run's manifest digest (from its tag) and the ledger event that recorded it."""
    digest = db.scalar("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", run_id, DIGEST_TAG)
    assert digest and digest.startswith("sha256:"), f"run {run_id} has no manifest digest tag"
    for event in db.events():
        for record in event["payload"].get("records", []):
            if record.get("blob") == digest:
                return digest, event["seq"]
    raise AssertionError(f"no ledger event names manifest {digest}")
