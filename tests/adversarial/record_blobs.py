"""Finding the record documents (dataset, evaluation) that the ledger names for a run."""

from __future__ import annotations

from typing import Any


def record_of(db: Any, kind: str, **match: Any) -> tuple[str, int, dict[str, Any]]:
    """(blob digest, event seq, record summary) of the first event record of ``kind`` matching ``match``."""
    for event in db.events():
        for record in event["payload"].get("records", []):
            if record.get("kind") == kind and all(record.get(k) == v for k, v in match.items()):
                return record["blob"], event["seq"], record
    raise AssertionError(f"no {kind} record with {match} in the ledger")
