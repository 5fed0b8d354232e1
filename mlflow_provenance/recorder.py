"""Binding the ledger to SQLAlchemy transactions.

A :class:`Recorder` is attached to each session a provenance store opens. Just before
such a session commits, the recorder folds the rows its capture triggers wrote into
one ledger event and appends it, in the same transaction (:mod:`mlflow_provenance.capture`,
:mod:`mlflow_provenance.ledger`). A crash before the commit loses both the MLflow write
and its event; after it, both are durable.

Which operation is running (its name, for the event) comes from :func:`operation`, a
context manager the adapters wrap around every write method; the entity whose chain
the event extends is derived from the rows written.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from mlflow_provenance import capture
from mlflow_provenance.canonical import sha256_digest
from mlflow_provenance.entities import entity_of
from mlflow_provenance.ledger import Appended, LedgerWriter

_logger = logging.getLogger(__name__)

RECORDER_KEY = "mlflow_provenance.recorder"
_DIRTY = "mlflow_provenance.dirty"
_MARK = "mlflow_provenance.mark"
_PENDING = "mlflow_provenance.pending"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass(frozen=True)
class Operation:
    """The write method in progress: its name, and whether it ends with a checkpoint."""

    name: str
    checkpoint_reason: str | None = None


@dataclass(frozen=True)
class Blob:
    """A document stored content-addressed beside an event (``prov_blobs``)."""

    digest: str
    media_type: str
    content: bytes

    digest_of = staticmethod(sha256_digest)


@dataclass(frozen=True)
class Attachment:
    """A provenance record (and its blobs) to bind into the next event of this context.

    ``record`` lands in the event payload's ``records`` list; a record that references a
    blob names it in its ``blob`` field, and :mod:`mlflow_provenance.verify` checks the
    stored bytes against that digest.
    """

    record: dict[str, Any]
    blobs: tuple[Blob, ...] = ()


_attachments: contextvars.ContextVar[list[Attachment] | None] = contextvars.ContextVar(
    "mlflow_provenance_attachments", default=None
)


@contextlib.contextmanager
def attach(*attachments: Attachment) -> Iterator[None]:
    """Bind records into the event of the first transaction that commits writes in this block."""
    token = _attachments.set(list(attachments))
    try:
        yield
    finally:
        _attachments.reset(token)


_current: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "mlflow_provenance_operation", default=None
)


@contextlib.contextmanager
def operation(name: str, checkpoint_reason: str | None = None) -> Iterator[None]:
    """Name the write in progress; the outermost name wins for nested calls."""
    if _current.get() is not None:
        yield
        return
    token = _current.set(Operation(name, checkpoint_reason))
    try:
        yield
    finally:
        _current.reset(token)


class Recorder:
    """Folds each committing transaction's captured rows into a ledger event."""

    def __init__(
        self,
        engine: sa.engine.Engine,
        writer: LedgerWriter,
        actor: Callable[[], str],
        on_checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = capture.dialect_of(engine)
        self.writer = writer
        self._actor = actor
        self._on_checkpoint = on_checkpoint
        _install_listeners(engine)

    def attach(self, session: Session) -> None:
        session.info[RECORDER_KEY] = self

    def before_commit(self, session: Session) -> None:
        session.flush()
        transaction = session.get_transaction()
        if transaction is None or not transaction._connections:
            return  # nothing ran in this transaction (MLflow commits twice in some methods)
        conn = session.connection()
        if not conn.info.pop(_DIRTY, False):
            return
        changes = capture.fold_changes(conn, self.dialect, conn.info.pop(_MARK, None))
        op = _current.get() or Operation(_unnamed_operation(changes))
        if not changes and op.checkpoint_reason is None:
            return
        entity_type, entity_id = entity_of(op.name, changes)
        payload: dict[str, Any] = {"kind": "mlflow.write", "changes": [c.as_json() for c in changes]}
        pending = _attachments.get()
        if pending:
            attached, pending[:] = list(pending), []  # one event carries them; a rollback re-raises
            for attachment in attached:
                for blob in attachment.blobs:
                    self.writer.put_blob(conn, blob.digest, blob.media_type, blob.content)
            payload["records"] = [attachment.record for attachment in attached]
        appended = self.writer.append(
            conn,
            entity_type=entity_type,
            entity_id=entity_id,
            op=op.name,
            actor=self._actor(),
            payload=payload,
            checkpoint_reason=op.checkpoint_reason,
        )
        if appended.checkpoint_note is not None:
            session.info[_PENDING] = appended

    def after_commit(self, session: Session) -> None:
        appended: Appended | None = session.info.pop(_PENDING, None)
        if appended is not None and self._on_checkpoint is not None:
            try:
                self._on_checkpoint(appended.checkpoint_note)
            except Exception as exc:  # noqa: BLE001 - boundary: the write has committed
                # Raising here would report a committed write as failed (and invite a retry).
                _logger.warning("mlflow-provenance: could not update the witness file: %s", exc)


def _unnamed_operation(changes: list[capture.Change]) -> str:
    tables = sorted({c.table for c in changes})
    return "write:" + ",".join(tables[:4])


# --- SQLAlchemy listeners ---------------------------------------------------------------------

_LISTENING = "_mlflow_provenance_listening"


def _install_listeners(engine: sa.engine.Engine) -> None:
    if getattr(engine, _LISTENING, False):
        return
    setattr(engine, _LISTENING, True)
    dialect = capture.dialect_of(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _note_write(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        head = statement.lstrip()[:7].upper()
        if not head.startswith(_WRITE_VERBS) or _DIRTY in conn.info:
            return
        if "prov_" in statement[:40]:
            return
        if dialect == "sqlite":
            raw = cursor.connection
            if not raw.in_transaction:
                # Take the write lock before reading the mark, so no other writer can commit
                # change rows between the mark and our first write (they would be folded
                # into our event). pysqlite would only BEGIN (deferred) at the write itself.
                raw.execute("BEGIN IMMEDIATE")
            conn.info[_MARK] = raw.execute("SELECT COALESCE(MAX(id), 0) FROM prov_changes").fetchone()[0]
        conn.info[_DIRTY] = True

    @event.listens_for(engine, "rollback")
    def _clear_on_rollback(conn):  # noqa: ANN001
        conn.info.pop(_DIRTY, None)
        conn.info.pop(_MARK, None)

    @event.listens_for(engine, "commit")
    def _clear_on_commit(conn):  # noqa: ANN001
        conn.info.pop(_DIRTY, None)
        conn.info.pop(_MARK, None)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    recorder: Recorder | None = session.info.get(RECORDER_KEY)
    if recorder is not None:
        recorder.before_commit(session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    recorder: Recorder | None = session.info.get(RECORDER_KEY)
    if recorder is not None:
        recorder.after_commit(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
