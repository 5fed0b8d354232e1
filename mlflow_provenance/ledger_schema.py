"""The ledger's tables, living beside MLflow's in the same database.

``prov_events``       one row per event: the canonical body (RFC 8785 JSON) and its SHA-256
``prov_log``          one row: the global log's size and compact Merkle range (RFC 9162)
``prov_checkpoints``  signed C2SP tlog-checkpoints
``prov_changes``      scratch rows written by capture triggers, emptied before each commit
``prov_blobs``        content-addressed documents (manifests, policies)
``prov_meta``         format version and the log's origin line

:func:`ensure_schema` creates them, installs the capture triggers and refuses a ledger
written by a newer format, all under a lock so concurrent workers can start together.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as _mysql

from mlflow_provenance import capture
from mlflow_provenance.errors import ConfigurationError

#: Version of the event body format and table layout this code writes and reads.
FORMAT_VERSION = 1

metadata = sa.MetaData()

_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LongText = sa.Text().with_variant(_mysql.LONGTEXT(), "mysql")

prov_meta = sa.Table(
    "prov_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

prov_events = sa.Table(
    "prov_events",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("op", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("body", _LongText, nullable=False),
    # "<key id>:<base64 Ed25519 signature>" over event_signing_message(origin, hash): it
    # authenticates the newest events, which no checkpoint covers yet.
    sa.Column("signature", sa.Text, nullable=False),
    sa.Index("prov_events_entity", "entity_type", "entity_id", "seq"),
)

prov_log = sa.Table(
    "prov_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", _BigInt, nullable=False),
    sa.Column("frontier", sa.Text, nullable=False),
)

prov_checkpoints = sa.Table(
    "prov_checkpoints",
    metadata,
    sa.Column("id", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("size", _BigInt, nullable=False),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(128), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

prov_changes = sa.Table(
    "prov_changes",
    metadata,
    sa.Column("id", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("txn", sa.BigInteger, nullable=True),
    sa.Column("tbl", sa.String(64), nullable=False),
    sa.Column("op", sa.String(1), nullable=False),
    sa.Column("old_row", _LongText, nullable=True),
    sa.Column("new_row", _LongText, nullable=True),
    # Each transaction deletes its own rows by txn: without an index, PostgreSQL scans every
    # dead row version the constant insert/delete churn leaves until vacuum.
    sa.Index("prov_changes_txn", "txn"),
)

prov_blobs = sa.Table(
    "prov_blobs",
    metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("media_type", sa.String(128), nullable=False),
    sa.Column("content", sa.LargeBinary().with_variant(_mysql.LONGBLOB(), "mysql")),
)


@contextlib.contextmanager
def schema_lock(conn: sa.engine.Connection) -> Iterator[None]:
    """Serialise schema setup between processes sharing one database."""
    dialect = capture.dialect_of(conn)
    if dialect == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(726571903)")
        yield
    elif dialect == "mysql":
        conn.exec_driver_sql("SELECT GET_LOCK('mlflow_provenance_schema', 60)")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT RELEASE_LOCK('mlflow_provenance_schema')")
    else:
        # SQLite: take the database's write lock up front (the driver has not begun yet).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


def read_meta(conn: sa.engine.Connection) -> dict[str, str]:
    """The ledger's metadata, or an empty dict where there is no ledger."""
    if not sa.inspect(conn).has_table("prov_meta"):
        return {}
    return {k: v for k, v in conn.execute(sa.select(prov_meta.c.key, prov_meta.c.value))}


def check_format(meta: dict[str, str]) -> None:
    """Refuse a ledger this code cannot read or extend.

    Raises:
        ConfigurationError: the ledger was written by a newer format version.
    """
    version = int(meta.get("format_version", FORMAT_VERSION))
    if version > FORMAT_VERSION:
        raise ConfigurationError(
            f"This database's provenance ledger has format version {version}, newer than "
            f"the {FORMAT_VERSION} this mlflow-provenance understands. Upgrade the package "
            f"(pip install -U mlflow-provenance) before writing to or verifying it; nothing "
            f"was written."
        )


def ensure_schema(engine: sa.engine.Engine) -> dict[str, str]:
    """Create the ledger tables and capture triggers if needed; return the ledger's metadata.

    Raises:
        ConfigurationError: unsupported database, or a ledger of a newer format version.
    """
    capture.dialect_of(engine)
    with engine.begin() as conn:
        meta = read_meta(conn)
        check_format(meta)
        tables = capture.captured_tables(conn)
        if meta and _triggers_complete(conn, tables):
            return meta
    with engine.begin() as conn:
        with schema_lock(conn):
            metadata.create_all(conn)
            meta = read_meta(conn)
            check_format(meta)
            if not meta:
                meta = {
                    "format_version": str(FORMAT_VERSION),
                    "origin": f"mlflow-provenance/{uuid.uuid4()}",
                }
                conn.execute(sa.insert(prov_meta), [{"key": k, "value": v} for k, v in meta.items()])
                conn.execute(sa.insert(prov_log).values(id=1, size=0, frontier="[]"))
            capture.install_triggers(conn, capture.captured_tables(conn))
    return meta


def _triggers_complete(conn: sa.engine.Connection, tables: list[capture.TableInfo]) -> bool:
    dialect = capture.dialect_of(conn)
    return capture.trigger_names(dialect, tables) == set(capture.existing_triggers(conn, dialect))
