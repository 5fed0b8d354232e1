"""Appending events to the ledger (DESIGN.md §5).

An event is a canonical JSON object (RFC 8785)::

    {"v": 1, "seq": 42, "entity": {"type": "run", "id": "…"}, "op": "log_metric",
     "actor": "alice", "time": "2026-11-27T21:00:00.123456Z", "prev": "<hex>|null",
     "payload": {...}}

Its hash is SHA-256 over those bytes; ``prev`` is the hash of the previous event of the
same entity, so each run (model version, experiment…) has its own hash chain. ``seq``
numbers all events gap-free from 1; the canonical bytes of event ``seq`` are leaf
``seq - 1`` of the global RFC 9162 Merkle tree, whose compact range is kept in
``prov_log`` so that appending costs O(log n). Checkpoints sign the tree's root in the
C2SP tlog-checkpoint format.

:meth:`LedgerWriter.append` runs inside the caller's transaction: the event commits or
rolls back with the MLflow write it describes.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mlflow_provenance import merkle
from mlflow_provenance.canonical import canonical_json, sha256_digest
from mlflow_provenance.checkpoint import Checkpoint, sign_checkpoint
from mlflow_provenance.keys import SigningKey
from mlflow_provenance.ledger_schema import FORMAT_VERSION, prov_log


@dataclass(frozen=True)
class Appended:
    """What :meth:`LedgerWriter.append` wrote."""

    seq: int
    hash: str
    checkpoint_note: str | None = None


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds (``2026-11-27T21:00:00.123456Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


def _cursor(conn: sa.engine.Connection) -> Any:
    """A DBAPI cursor on ``conn``'s connection, inside its transaction.

    The ledger's few fixed statements skip SQLAlchemy's statement layer: on the write path
    of every MLflow call, its per-statement machinery cost more than the statements.
    """
    return conn.connection.driver_connection.cursor()


def event_body(
    *,
    seq: int,
    entity_type: str,
    entity_id: str,
    op: str,
    actor: str,
    time: str,
    prev: str | None,
    payload: dict[str, Any],
) -> bytes:
    """The canonical bytes of an event (the Merkle leaf data and the hashed document).

    A payload's ``changes`` — thousands of ``[table, op, old_row_text, new_row_text]``
    lists of strings for a large batch — is encoded by the C JSON encoder and spliced
    in: for lists of strings and nulls its output is exactly RFC 8785's (§3.2.2.2
    escapes only ``"``, ``\\`` and control characters, with lowercase ``\\u00xx``;
    ``ensure_ascii=False`` keeps everything else as UTF-8). Anything else falls back
    to :func:`canonical_json`.
    """
    envelope = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "entity": {"type": entity_type, "id": entity_id},
        "op": op,
        "actor": actor,
        "time": time,
        "prev": prev,
        "payload": payload,
    }
    changes = payload.get("changes")
    if not changes or not _all_string_rows(changes):
        return canonical_json(envelope)
    envelope["payload"] = {**payload, "changes": _SPLICE}
    head, tail = canonical_json(envelope).split(_SPLICE_JSON, 1)
    encoded = _json_dumps(changes, ensure_ascii=False, separators=(",", ":"))
    try:
        return head + encoded.encode("utf-8") + tail
    except UnicodeEncodeError:
        return canonical_json({**envelope, "payload": payload})  # raises the precise error


_SPLICE = "\x00mlflow-provenance:changes\x00"
_SPLICE_JSON = json.dumps(_SPLICE).encode()
_json_dumps = json.dumps


def _all_string_rows(changes: list[Any]) -> bool:
    for change in changes:
        if type(change) is not list:
            return False
        for item in change:
            if item is not None and type(item) is not str:
                return False
    return True


def event_signing_message(origin: str, event_hash: str) -> bytes:
    """What an event's own signature covers: domain, log and event hash (no cross-log replay)."""
    return f"mlflow-provenance/event/v1\n{origin}\n{event_hash}\n".encode()


#: ``signature`` of an event whose own transaction signed a checkpoint covering it.
COVERED_BY_CHECKPOINT = "checkpoint"


def sign_event(key: SigningKey, origin: str, event_hash: str) -> str:
    """The ``signature`` column of an event."""
    signature = key.sign(event_signing_message(origin, event_hash))
    return f"{key.public_key.key_id}:{base64.b64encode(signature).decode()}"


class _Statements:
    """The writer's SQL, written once per dialect: building SQLAlchemy constructs on
    every append cost more than executing them (the write path runs on every MLflow write)."""

    def __init__(self, conn: sa.engine.Connection) -> None:
        p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        dialect = conn.dialect.name
        lock = "" if dialect == "sqlite" else " FOR UPDATE"
        # Lock the log head first; only then read the entity's chain head, in a statement of
        # its own: a subquery in the locking statement would read the chain from a snapshot
        # taken before the lock wait (PostgreSQL rechecks only the locked row), and fork the
        # chain when two writers append to the same run. On MySQL the read must itself lock
        # to see the newest committed row under REPEATABLE READ.
        self.head = f"SELECT size, frontier FROM prov_log WHERE id = 1{lock}"
        share = " LOCK IN SHARE MODE" if dialect == "mysql" else ""
        self.prev = (
            f"SELECT hash FROM prov_events WHERE entity_type = {p} AND entity_id = {p} "
            f"ORDER BY seq DESC LIMIT 1{share}"
        )
        self.insert_event = (
            f"INSERT INTO prov_events (seq, entity_type, entity_id, op, hash, body, signature) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self.update_head = f"UPDATE prov_log SET size = {p}, frontier = {p} WHERE id = 1"
        # PostgreSQL takes both writes in one statement (one round trip instead of two).
        self.insert_event_and_update_head = (
            f"WITH event AS ({self.insert_event}) {self.update_head}"
            if conn.dialect.name == "postgresql"
            else None
        )
        self.insert_checkpoint = (
            f"INSERT INTO prov_checkpoints (size, root, reason, note) VALUES ({p}, {p}, {p}, {p})"
        )
        # Content-addressed: a blob that is already there is the same bytes.
        blob = f"prov_blobs (digest, media_type, content) VALUES ({p}, {p}, {p})"
        self.insert_blob = {
            "sqlite": f"INSERT OR IGNORE INTO {blob}",
            "mysql": f"INSERT IGNORE INTO {blob}",
        }.get(dialect, f"INSERT INTO {blob} ON CONFLICT (digest) DO NOTHING")


#: A checkpoint is signed at least every this many events, so long runs (or a server that
#: never ends runs) keep the unsigned tail short.
CHECKPOINT_EVERY = 1000


class LedgerWriter:
    """Appends events and checkpoints for one ledger (one database)."""

    def __init__(self, origin: str, signing_key: SigningKey, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.origin = origin
        self._key = signing_key
        self._checkpoint_every = checkpoint_every
        self._sql: dict[str, _Statements] = {}

    def _statements(self, conn: sa.engine.Connection) -> _Statements:
        sql = self._sql.get(conn.dialect.name)
        if sql is None:
            sql = self._sql[conn.dialect.name] = _Statements(conn)
        return sql

    def append(
        self,
        conn: sa.engine.Connection,
        *,
        entity_type: str,
        entity_id: str,
        op: str,
        actor: str,
        payload: dict[str, Any],
        checkpoint_reason: str | None = None,
    ) -> Appended:
        """Append one event (and optionally a signed checkpoint) in ``conn``'s transaction.

        Concurrent appenders are serialised by a row lock on ``prov_log`` (on SQLite the
        caller already holds the database's write lock), so ``seq`` is gap-free and each
        chain is linear.

        Raises:
            CanonicalizationError: the payload is not encodable as canonical JSON.
        """
        sql = self._statements(conn)
        cursor = _cursor(conn)
        cursor.execute(sql.head)
        size, frontier = cursor.fetchone()
        cursor.execute(sql.prev, (entity_type, entity_id))
        row = cursor.fetchone()
        prev = row[0] if row else None
        tree = merkle.CompactRange.from_json(size, json.loads(frontier))
        seq = size + 1
        body = event_body(
            seq=seq,
            entity_type=entity_type,
            entity_id=entity_id,
            op=op,
            actor=actor,
            time=utc_now(),
            prev=prev,
            payload=payload,
        )
        digest = hashlib.sha256(body).hexdigest()
        tree.append(merkle.leaf_hash(body))
        if not checkpoint_reason and seq % self._checkpoint_every == 0:
            checkpoint_reason = "periodic"
        # An event sealed by a checkpoint in its own transaction needs no signature of its
        # own (one Ed25519 signature saved per run end); should that checkpoint be deleted,
        # verify finds the event unsigned.
        signature = COVERED_BY_CHECKPOINT if checkpoint_reason else sign_event(self._key, self.origin, digest)
        event_row = (seq, entity_type, entity_id, op, digest, body.decode("utf-8"), signature)
        head_row = (seq, json.dumps(tree.to_json()))
        if sql.insert_event_and_update_head:
            cursor.execute(sql.insert_event_and_update_head, event_row + head_row)
        else:
            cursor.execute(sql.insert_event, event_row)
            cursor.execute(sql.update_head, head_row)
        note = None
        if checkpoint_reason:
            note = self._checkpoint(conn, sql, tree, checkpoint_reason)
        return Appended(seq, digest, note)

    def put_blob(self, conn: sa.engine.Connection, digest: str, media_type: str, content: bytes) -> None:
        """Store a document under its digest (``sha256:<hex>`` of ``content``), in ``conn``'s
        transaction; the event that references it commits with it.

        Raises:
            ValueError: ``digest`` is not the SHA-256 of ``content``.
        """
        if digest != sha256_digest(content):
            raise ValueError(f"blob digest {digest} does not match its content")
        _cursor(conn).execute(self._statements(conn).insert_blob, (digest, media_type, content))

    def _checkpoint(
        self, conn: sa.engine.Connection, sql: _Statements, tree: merkle.CompactRange, reason: str
    ) -> str:
        root = tree.root()
        note = sign_checkpoint(Checkpoint(self.origin, tree.size, root), self._key)
        _cursor(conn).execute(sql.insert_checkpoint, (tree.size, root.hex(), reason[:128], note))
        return note


def append_genesis(conn: sa.engine.Connection, writer: LedgerWriter, actor: str) -> Appended | None:
    """Start an empty log with a snapshot of every captured row already in the database.

    MLflow's migrations (or an older, unwrapped MLflow) may have written rows before the
    ledger existed; the genesis event adopts them, so ``verify`` expects them. A log that
    already has events is left alone (returns None).
    """
    from mlflow_provenance import capture

    size = conn.execute(
        sa.select(prov_log.c.size).where(prov_log.c.id == 1).with_for_update()
    ).scalar()
    if size:
        return None
    dialect = capture.dialect_of(conn)
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in capture.captured_tables(conn):
        table_rows = list(capture.read_table(conn, dialect, table))
        if table_rows:
            rows[table.name] = table_rows
    changes = [
        [name, "I", None, json.dumps(row, separators=(",", ":"))]
        for name, table_rows in rows.items()
        for row in table_rows
    ]
    return writer.append(
        conn,
        entity_type="database",
        entity_id="-",
        op="genesis",
        actor=actor,
        payload={"kind": "mlflow.write", "changes": changes},
        checkpoint_reason="genesis",
    )
