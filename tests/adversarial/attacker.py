"""What an attacker with write access to the database can do to the ledger itself.

The ledger's format is public (``mlflow_provenance/ledger.py``): canonical JSON event
bodies, SHA-256 hashes, per-entity ``prev`` links, an RFC 9162 Merkle log whose compact
range sits in ``prov_log``. An attacker who has the database but not the signing key can
therefore rewrite history so that every hash, link and the log head are consistent again;
only the signed checkpoints (and the witness an auditor keeps) stand in the way. With the
key as well (an insider), the checkpoints can be re-signed too, and only the witness is left.
These functions do exactly that, on a plain ``sqlite3`` connection.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any, Callable

from mlflow_provenance import merkle
from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from mlflow_provenance.keys import SigningKey
from mlflow_provenance.ledger import sign_event

Event = dict[str, Any]


def read_events(con: sqlite3.Connection) -> list[Event]:
    """Every event body, decoded, in sequence order."""
    return [json.loads(body) for (body,) in con.execute("SELECT body FROM prov_events ORDER BY seq")]


def origin_of(con: sqlite3.Connection) -> str:
    return con.execute("SELECT value FROM prov_meta WHERE key = 'origin'").fetchone()[0]


def write_history(
    con: sqlite3.Connection, events: list[Event], *, sign_with: SigningKey | None = None
) -> dict[int, bytes]:
    """Replace the ledger by ``events``: renumber 1..n, re-link every chain, re-hash, fix the log head.

    Each event's own signature is made with ``sign_with`` where given; otherwise the stored
    signature of an event with the same hash is kept (an attacker without the key can do
    no better). Returns the Merkle root after each event (by tree size). Checkpoints are
    left alone.
    """
    old_signatures = dict(con.execute("SELECT hash, signature FROM prov_events").fetchall())
    origin = origin_of(con)
    heads: dict[tuple[str, str], str] = {}
    tree = merkle.CompactRange()
    roots = {0: merkle.EMPTY_ROOT}
    con.execute("DELETE FROM prov_events")
    for seq, original in enumerate(events, 1):
        doc = dict(original)
        entity = (doc["entity"]["type"], doc["entity"]["id"])
        doc["seq"] = seq
        doc["prev"] = heads.get(entity)
        body = canonical_json(doc)
        digest = hashlib.sha256(body).hexdigest()
        heads[entity] = digest
        tree.append(merkle.leaf_hash(body))
        roots[seq] = tree.root()
        if sign_with is not None:
            signature = sign_event(sign_with, origin, digest)
        else:
            signature = old_signatures.get(digest) or next(iter(old_signatures.values()))
        con.execute(
            "INSERT INTO prov_events (seq, entity_type, entity_id, op, hash, body, signature) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, entity[0], entity[1], doc["op"], digest, body.decode("utf-8"), signature),
        )
    con.execute(
        "UPDATE prov_log SET size = ?, frontier = ? WHERE id = 1",
        (tree.size, json.dumps(tree.to_json())),
    )
    return roots


def rewrite_history(
    con: sqlite3.Connection,
    edit: Callable[[list[Event]], list[Event]],
    *,
    sign_with: SigningKey | None = None,
) -> None:
    """Rewrite the ledger with ``edit`` applied, consistently; re-sign checkpoints if given a key.

    With ``sign_with``, every checkpoint is replaced by one over the rewritten log at the
    same size (checkpoints beyond the new end are dropped), signed by that key.
    """
    roots = write_history(con, edit(read_events(con)), sign_with=sign_with)
    if sign_with is not None:
        resign_checkpoints(con, sign_with, roots)


def resign_checkpoints(
    con: sqlite3.Connection, key: SigningKey, roots: dict[int, bytes] | None = None
) -> None:
    """Replace each checkpoint's signature by ``key``'s (over ``roots[size]`` where given)."""
    origin = origin_of(con)
    for cid, note in con.execute("SELECT id, note FROM prov_checkpoints ORDER BY id").fetchall():
        checkpoint, _ = parse_checkpoint(note)
        root = checkpoint.root if roots is None else roots.get(checkpoint.size)
        if root is None:
            con.execute("DELETE FROM prov_checkpoints WHERE id = ?", (cid,))
            continue
        new_note = sign_checkpoint(Checkpoint(origin, checkpoint.size, root), key)
        con.execute(
            "UPDATE prov_checkpoints SET size = ?, root = ?, note = ? WHERE id = ?",
            (checkpoint.size, root.hex(), new_note, cid),
        )


def decoded(row: Any) -> dict[str, Any] | None:
    """A captured row: the database's JSON text inside the event (or an already decoded object)."""
    return json.loads(row) if isinstance(row, str) else row


def replace_row(event: Event, table: str, match: dict[str, Any], row_text: str) -> None:
    """Make ``event`` record ``row_text`` (the database's JSON of a row) where it wrote the ``table`` row matching ``match``."""
    hit = False
    for change in event["payload"]["changes"]:
        new = decoded(change[3])
        if change[0] == table and new and all(str(new.get(k)) == str(v) for k, v in match.items()):
            change[3] = row_text if isinstance(change[3], str) else json.loads(row_text)
            hit = True
    assert hit, f"event #{event['seq']} wrote no {table} row matching {match}"


def primary_key(con: sqlite3.Connection, table: str) -> list[str]:
    cols = con.execute(f'PRAGMA table_info("{table}")').fetchall()
    return [name for _, name, _, _, _, pk in sorted(cols, key=lambda c: c[5]) if pk]


def undo_writes(con: sqlite3.Connection, events: list[Event]) -> None:
    """Revert the MLflow tables to their state before ``events``, from the rows the ledger kept."""
    for event in reversed(events):
        for table, _op, old_row, new_row in reversed(event["payload"].get("changes") or []):
            old, new = decoded(old_row), decoded(new_row)
            key = primary_key(con, table)
            if new is not None:
                where = " AND ".join(f'"{c}" = ?' for c in key)
                con.execute(f'DELETE FROM "{table}" WHERE {where}', [new[c] for c in key])
            if old is not None:
                cols = list(old)
                con.execute(
                    f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                    f'VALUES ({", ".join("?" for _ in cols)})',
                    [old[c] for c in cols],
                )
    con.execute("DELETE FROM prov_changes")
