"""Row-level change capture with database triggers.

Every row written to a captured table — by an ORM flush, a bulk ``query().delete()``,
an upsert, raw SQL or a foreign-key cascade — fires a trigger that copies the row
into ``prov_changes`` *inside the same transaction*. Before the transaction commits,
the ledger folds those rows into one signed-off event and deletes them
(:func:`fold_changes`). So the ledger holds exactly what the database holds, whatever
code path wrote it, and a write that bypassed the ledger leaves rows behind in
``prov_changes`` that ``verify`` reports.

Rows are serialised by the database's own JSON functions, with the same expression
at capture time and at verification time (:func:`row_json_sql`), so the two sides
always compare like with like. Floating-point columns are rendered with 17
significant digits on SQLite (its JSON functions keep only 15, which would hide a
change in the last digits of a metric).

This module knows SQL, not MLflow: which tables exist is read from the database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from mlflow_provenance.errors import ConfigurationError

#: Tables never captured: schema bookkeeping, schedulers and caches that MLflow
#: rewrites on its own, and secrets (their values must never reach the ledger).
#: Every other table is captured, so a table added by a future MLflow is covered
#: by default.
UNCAPTURED_TABLES = frozenset(
    {
        "alembic_version",
        "jobs",
        "job_locks",
        "scheduler_leases",
        "secrets",
        "sql_assessment_daily_rollups",
        "sql_span_cost_daily_rollups",
        "sql_trace_metric_daily_rollups",
        "sql_trace_rollup_rebuild_queue",
        "webhook_events",
    }
)
LEDGER_TABLE_PREFIX = "prov_"
TRIGGER_PREFIX = "prov_cap"

SUPPORTED_DIALECTS = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True)
class TableInfo:
    """A captured table: its columns (in database order) and primary key."""

    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    float_columns: frozenset[str] = frozenset()
    binary_columns: frozenset[str] = frozenset()

    @property
    def signature(self) -> str:
        """Short digest of the column layout; part of trigger names so a migration re-creates them."""
        text = "|".join(self.columns) + "#" + ",".join(sorted(self.float_columns | self.binary_columns))
        return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Change:
    """One captured row change.

    ``op`` is ``I``, ``U`` or ``D``; ``old_text``/``new_text`` are the rows as the
    database rendered them (JSON object text), kept verbatim: events store them as
    strings, which keeps canonical encoding cheap and the evidence byte-exact.
    """

    table: str
    op: str
    old_text: str | None
    new_text: str | None

    @property
    def old(self) -> dict[str, Any] | None:
        return json.loads(self.old_text) if self.old_text is not None else None

    @property
    def new(self) -> dict[str, Any] | None:
        return json.loads(self.new_text) if self.new_text is not None else None

    def as_json(self) -> list[Any]:
        return [self.table, self.op, self.old_text, self.new_text]


def dialect_of(bind: sa.engine.Engine | sa.engine.Connection) -> str:
    """The dialect family name (``sqlite``, ``postgresql`` or ``mysql``).

    Raises:
        ConfigurationError: for any other database.
    """
    name = bind.dialect.name
    if name == "mariadb":
        name = "mysql"
    if name not in SUPPORTED_DIALECTS:
        raise ConfigurationError(
            f"Database dialect {name!r} is not supported by mlflow-provenance; "
            f"use one of: {', '.join(SUPPORTED_DIALECTS)}."
        )
    return name


def captured_tables(bind: sa.engine.Engine | sa.engine.Connection) -> list[TableInfo]:
    """Inspect the database and describe every table whose writes are captured."""
    inspector = sa.inspect(bind)
    tables = []
    for name in sorted(inspector.get_table_names()):
        if name in UNCAPTURED_TABLES or name.startswith(LEDGER_TABLE_PREFIX):
            continue
        columns = inspector.get_columns(name)
        primary_key = tuple(inspector.get_pk_constraint(name)["constrained_columns"] or ())
        if not primary_key:
            primary_key = tuple(c["name"] for c in columns)
        floats = frozenset(c["name"] for c in columns if _is_float(c["type"]))
        binaries = frozenset(c["name"] for c in columns if isinstance(c["type"], sa.LargeBinary))
        tables.append(
            TableInfo(name, tuple(c["name"] for c in columns), primary_key, floats, binaries)
        )
    return tables


def _is_float(column_type: sa.types.TypeEngine) -> bool:
    return isinstance(column_type, (sa.Float, sa.REAL)) or (
        isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Integer)
    )


# --- SQL that renders a row as JSON ---------------------------------------------------------


def _sqlite_value(table: TableInfo, column: str, alias: str) -> str:
    ref = f'{alias}."{column}"'
    if column in table.float_columns:
        return f"iif(typeof({ref})='real', printf('%!.17g', {ref}), {ref})"
    if column in table.binary_columns:
        return f"iif(typeof({ref})='blob', hex({ref}), {ref})"
    return ref


def row_json_sql(dialect: str, table: TableInfo, alias: str) -> str:
    """SQL expression rendering the row ``alias`` of ``table`` as a JSON object text.

    ``alias`` is ``NEW``/``OLD`` inside a trigger, or a table alias in a query: the same
    expression serves capture and verification.
    """
    if dialect == "sqlite":
        args = ", ".join(f"'{c}', {_sqlite_value(table, c, alias)}" for c in table.columns)
        return f"json_object({args})"
    if dialect == "postgresql":
        return f"to_jsonb({alias})::text"
    if dialect == "mysql":
        args = ", ".join(f"'{c}', {alias}.`{c}`" for c in table.columns)
        return f"JSON_OBJECT({args})"
    raise ConfigurationError(f"unsupported dialect {dialect!r}")


def select_rows_sql(dialect: str, table: TableInfo) -> str:
    """A query returning every row of ``table`` as JSON text, in the capture encoding."""
    quoted = f"`{table.name}`" if dialect == "mysql" else f'"{table.name}"'
    return f"SELECT {row_json_sql(dialect, table, 't')} FROM {quoted} t"


# --- trigger DDL ------------------------------------------------------------------------------


def _trigger_name(table: TableInfo, op: str) -> str:
    return f"{TRIGGER_PREFIX}_{table.signature}_{op}_{table.name}"[:63]


def _row_triggers(dialect: str, table: TableInfo) -> list[tuple[str, str]]:
    """SQLite and MySQL: one AFTER trigger per operation, copying the row as JSON."""
    new = row_json_sql(dialect, table, "NEW")
    old = row_json_sql(dialect, table, "OLD")
    bodies = {
        "i": ("INSERT", f"'I', NULL, {new}"),
        "u": ("UPDATE", f"'U', {old}, {new}"),
        "d": ("DELETE", f"'D', {old}, NULL"),
    }
    ddl = []
    for op, (event, values) in bodies.items():
        name = _trigger_name(table, op)
        if dialect == "sqlite":
            statement = (
                f'CREATE TRIGGER IF NOT EXISTS "{name}" AFTER {event} ON "{table.name}" '
                f"FOR EACH ROW BEGIN INSERT INTO prov_changes (tbl, op, old_row, new_row) "
                f"VALUES ('{table.name}', {values}); END"
            )
        else:  # MySQL tags each row with its connection, as PostgreSQL does with its txid.
            statement = (
                f"CREATE TRIGGER `{name}` AFTER {event} ON `{table.name}` FOR EACH ROW "
                f"INSERT INTO prov_changes (txn, tbl, op, old_row, new_row) "
                f"VALUES (CONNECTION_ID(), '{table.name}', {values})"
            )
        ddl.append((name, statement))
    return ddl


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION prov_capture_row() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO prov_changes (txn, tbl, op, old_row, new_row)
      VALUES (txid_current(), TG_TABLE_NAME, 'I', NULL, to_jsonb(NEW)::text);
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO prov_changes (txn, tbl, op, old_row, new_row)
      VALUES (txid_current(), TG_TABLE_NAME, 'U', to_jsonb(OLD)::text, to_jsonb(NEW)::text);
  ELSE
    INSERT INTO prov_changes (txn, tbl, op, old_row, new_row)
      VALUES (txid_current(), TG_TABLE_NAME, 'D', to_jsonb(OLD)::text, NULL);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def _pg_triggers(table: TableInfo) -> list[tuple[str, str]]:
    name = _trigger_name(table, "a")
    return [
        (
            name,
            f'CREATE TRIGGER "{name}" AFTER INSERT OR UPDATE OR DELETE ON "{table.name}" '
            f"FOR EACH ROW EXECUTE FUNCTION prov_capture_row()",
        )
    ]


def trigger_names(dialect: str, tables: Sequence[TableInfo]) -> set[str]:
    """Names of the capture triggers ``tables`` need on ``dialect``."""
    ops = ("a",) if dialect == "postgresql" else ("i", "u", "d")
    return {_trigger_name(t, op) for t in tables for op in ops}


def foreign_triggers(
    conn: sa.engine.Connection, dialect: str, tables: Sequence[TableInfo]
) -> list[tuple[str, str]]:
    """Triggers (and PostgreSQL rules) on captured tables that are not ours, and our own
    PostgreSQL triggers that were disabled: (name, table) pairs.

    MLflow creates none, and one that rewrites a row before it is stored would have the
    altered value captured and signed as if MLflow had written it.
    """
    names = {t.name for t in tables}
    if dialect == "sqlite":
        sql = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    elif dialect == "postgresql":
        sql = (
            "SELECT t.tgname || CASE WHEN t.tgenabled = 'D' THEN ' (disabled)' ELSE '' END, "
            "c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND n.nspname = current_schema() "
            f"AND (left(t.tgname, {len(TRIGGER_PREFIX)}) <> '{TRIGGER_PREFIX}' OR t.tgenabled = 'D') "
            "UNION ALL SELECT 'rule ' || rulename, tablename FROM pg_rules "
            "WHERE schemaname = current_schema()"
        )
    else:
        sql = (
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA = DATABASE()"
        )
    found = []
    for name, table in conn.exec_driver_sql(sql).fetchall():
        ours = name.startswith(TRIGGER_PREFIX) and not name.endswith("(disabled)")
        if table in names and not ours:
            found.append((name, table))
    return found


def existing_triggers(conn: sa.engine.Connection, dialect: str) -> dict[str, str]:
    """Our triggers now in the database: trigger name -> table name."""
    if dialect == "sqlite":
        sql = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    elif dialect == "postgresql":
        sql = (
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
        )
    else:
        sql = (
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA = DATABASE()"
        )
    rows = conn.exec_driver_sql(sql).fetchall()
    return {name: table for name, table in rows if name.startswith(TRIGGER_PREFIX)}


def install_triggers(conn: sa.engine.Connection, tables: Sequence[TableInfo]) -> int:
    """Create missing capture triggers and drop stale ones; returns how many were created.

    Idempotent. Call inside a transaction that serialises concurrent installers
    (see :func:`mlflow_provenance.ledger_schema.schema_lock`).
    """
    dialect = dialect_of(conn)
    wanted: dict[str, tuple[str, str]] = {}
    for table in tables:
        ddl = _pg_triggers(table) if dialect == "postgresql" else _row_triggers(dialect, table)
        for name, statement in ddl:
            wanted[name] = (table.name, statement)
    existing = existing_triggers(conn, dialect)
    for name, table_name in existing.items():
        if name not in wanted:
            quoted = f"`{name}`" if dialect == "mysql" else f'"{name}"'
            on = "" if dialect != "postgresql" else f' ON "{table_name}"'
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {quoted}{on}")
    missing = [name for name in wanted if name not in existing]
    if missing and dialect == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
    for name in missing:
        conn.exec_driver_sql(wanted[name][1])
    return len(missing)


# --- folding a transaction's changes ----------------------------------------------------------


def fold_changes(conn: sa.engine.Connection, dialect: str, mark: int | None) -> list[Change]:
    """Remove and return this transaction's captured changes, in the order they happened."""
    cursor = conn.connection.driver_connection.cursor()
    if dialect == "sqlite":
        cursor.execute(
            "DELETE FROM prov_changes WHERE id > ? RETURNING id, tbl, op, old_row, new_row",
            (mark or 0,),
        )
        rows = cursor.fetchall()
    elif dialect == "postgresql":
        cursor.execute(
            "DELETE FROM prov_changes WHERE txn = txid_current() "
            "RETURNING id, tbl, op, old_row, new_row"
        )
        rows = cursor.fetchall()
    else:
        cursor.execute(
            "SELECT id, tbl, op, old_row, new_row FROM prov_changes "
            "WHERE txn = CONNECTION_ID() ORDER BY id"
        )
        rows = cursor.fetchall()
        if rows:
            cursor.execute("DELETE FROM prov_changes WHERE txn = CONNECTION_ID()")
    rows = sorted(rows, key=lambda r: r[0])
    return [Change(tbl, op, old, new) for _, tbl, op, old, new in rows]


def leftover_changes(conn: sa.engine.Connection) -> list[tuple[str, str]]:
    """Committed change rows nobody folded: writes that bypassed the provenance store."""
    return [
        (tbl, op)
        for tbl, op in conn.exec_driver_sql("SELECT tbl, op FROM prov_changes ORDER BY id").fetchall()
    ]


def read_table(conn: sa.engine.Connection, dialect: str, table: TableInfo) -> Iterable[dict[str, Any]]:
    """Every row of ``table`` decoded from the capture encoding."""
    loads = json.loads
    for (text,) in conn.exec_driver_sql(select_rows_sql(dialect, table)):
        yield loads(text)


def primary_key_of(table: TableInfo, row: dict[str, Any]) -> tuple[Any, ...]:
    """The primary-key tuple of a decoded row."""
    return tuple(row.get(column) for column in table.primary_key)
