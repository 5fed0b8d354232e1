"""Verifying a ledger against the database it describes (DESIGN.md §6).

Checks, in one pass over the events:

1. sequence — event numbers run 1, 2, 3… without gap, repeat or reordering;
2. hashes — each stored hash is SHA-256 of the stored canonical body, and the body's
   own ``seq``/entity/op agree with the row;
3. chains — each event's ``prev`` is the hash of its entity's previous event;
4. Merkle log — the RFC 9162 tree over all event bodies reproduces the root of every
   signed checkpoint, the stored log head, and the last checkpoint this user witnessed
   (so a log rolled back or forked behind a checkpoint is caught);
5. signatures — every checkpoint is a C2SP signed note verified by a trusted key valid
   at the checkpoint's time;
6. state — replaying the events' captured rows gives exactly the rows in MLflow's tables:
   an edited value, an inserted or deleted row is reported with its entity, column and
   the event that last wrote it;
7. bypass — no captured change was left behind by a write that skipped the ledger, and
   the capture triggers are all in place.

Findings are collected, not raised: an auditor gets the whole picture in one report.
``ConfigurationError`` is raised only when the check itself cannot run.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from mlflow_provenance import capture, ledger_schema, merkle
from mlflow_provenance.canonical import sha256_digest
from mlflow_provenance.checkpoint import open_checkpoint
from mlflow_provenance.entities import entity_of_row
from mlflow_provenance.errors import ConfigurationError, IntegrityError, ProvenanceError
from mlflow_provenance.keys import Keyring
from mlflow_provenance.findings import Finding
from mlflow_provenance.sql import query


@dataclass
class Report:
    """The outcome of :func:`verify_database`."""

    origin: str = ""
    events: int = 0
    checkpoints: int = 0
    runs: int = 0
    rows: int = 0
    signed_size: int = 0
    scope: str = "database"
    latest_checkpoint: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(kind, message, **where))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["unsigned_events"] = self.events - self.signed_size
        return data

    def summary(self) -> str:
        status = "OK" if self.ok else f"FAILED: {len(self.findings)} finding(s)"
        tail = self.events - self.signed_size
        lines = [
            f"{status} — ledger {self.origin}, scope {self.scope}",
            f"  {self.events} events, {self.checkpoints} signed checkpoints, {self.runs} runs, "
            f"{self.rows} rows checked"
            + (f"; {tail} newest events not yet under a checkpoint" if tail else ""),
        ]
        lines += [f"  - {finding}" for finding in self.findings]
        return "\n".join(lines)


@dataclass(frozen=True)
class Scope:
    """Restrict the state comparison to one run or one model version (chains stay global)."""

    run_id: str | None = None
    model: tuple[str, str] | None = None

    def describe(self) -> str:
        if self.run_id:
            return f"run {self.run_id}"
        if self.model:
            return f"model {self.model[0]}/{self.model[1]}"
        return "database"


def _entity_label(table: str, row: dict[str, Any]) -> str:
    entity = entity_of_row(table, row)
    return f"{entity[0]} {entity[1]}" if entity else f"table {table}"


def verify_database(
    engine: sa.engine.Engine | sa.engine.Connection,
    keyring: Keyring,
    *,
    witness: dict[str, Any] | None = None,
    scope: Scope = Scope(),
) -> Report:
    """Check the ledger of the database behind ``engine``; return a report of findings.

    Raises:
        ConfigurationError: the database has no ledger, or one of a newer format.
    """
    if isinstance(engine, sa.engine.Connection):
        return _verify(engine, keyring, witness, scope)
    with engine.connect() as conn, read_snapshot(conn):
        return _verify(conn, keyring, witness, scope)


@contextlib.contextmanager
def read_snapshot(conn: sa.engine.Connection) -> Iterator[sa.engine.Connection]:
    """Run the enclosed reads in one consistent, read-only snapshot of the database.

    Verification reads many tables; a write committed between two of those reads would
    otherwise look like tampering. PostgreSQL and MySQL get REPEATABLE READ snapshots and
    do not block writers. SQLite gets one read transaction: with MLflow's default
    rollback journal, writers wait (up to MLflow's 20 s busy timeout) until it ends; in WAL
    mode they do not.
    """
    dialect = capture.dialect_of(conn)
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()
        return
    conn.execution_options(isolation_level="REPEATABLE READ")
    with conn.begin() as transaction:
        if dialect == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn
        transaction.rollback()


def _verify(conn: sa.engine.Connection, keyring: Keyring, witness: dict | None, scope: Scope) -> Report:
    meta = ledger_schema.read_meta(conn)
    if not meta:
        raise ConfigurationError(
            "This database has no provenance ledger (no prov_meta table). Was it written "
            "through a provenance+ tracking URI? Point --tracking-uri at the database the "
            "provenance store wrote."
        )
    ledger_schema.check_format(meta)
    dialect = capture.dialect_of(conn)
    report = Report(origin=meta.get("origin", ""), scope=scope.describe())
    tables = {t.name: t for t in capture.captured_tables(conn)}

    checkpoints = conn.execute(
        sa.select(
            ledger_schema.prov_checkpoints.c.id,
            ledger_schema.prov_checkpoints.c.size,
            ledger_schema.prov_checkpoints.c.root,
            ledger_schema.prov_checkpoints.c.note,
        ).order_by(ledger_schema.prov_checkpoints.c.id)
    ).all()
    wanted_sizes = {row.size for row in checkpoints}
    if witness:
        wanted_sizes.add(int(witness["size"]))

    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    times: dict[int, str] = {}
    expected: dict[str, dict[tuple, tuple[dict[str, Any], int]]] = {name: {} for name in tables}
    covered = _provisionally_signed_size(checkpoints, keyring, report.origin)
    tail_check = _TailSignatures(keyring, report, covered)
    blobs: dict[str, tuple[int, str]] = {}
    tree = _replay_events(conn, report, tables, expected, wanted_sizes, roots, times, tail_check, blobs)

    _check_checkpoints(report, checkpoints, keyring, roots, times, tree.size)
    _check_signed(report)
    _check_head(conn, report, tree)
    _check_witness(report, witness, roots, tree.size)
    _check_state(conn, dialect, report, tables, expected, scope)
    if (scope.run_id or scope.model) and report.rows == 0 and not report.findings:
        raise ConfigurationError(
            f"{scope.describe()} is neither in the ledger nor in the database: check the id."
        )
    _check_bypass(conn, dialect, report, list(tables.values()))
    _check_blobs(conn, report, blobs, whole_database=not (scope.run_id or scope.model))
    return report


def _replay_events(
    conn: sa.engine.Connection,
    report: Report,
    tables: dict[str, capture.TableInfo],
    expected: dict[str, dict[tuple, tuple[dict[str, Any], int]]],
    wanted_sizes: set[int],
    roots: dict[int, bytes],
    times: dict[int, str],
    tail_check: "_TailSignatures",
    blobs: dict[str, tuple[int, str]],
) -> merkle.CompactRange:
    """One pass over all events: sequence, hashes, chains, Merkle tree, tail signatures, replay.

    This loop is verification's hot path (DESIGN.md §8: hash-bound), so it reads rows
    in batches and builds report labels only when something is wrong.
    """
    heads: dict[tuple[str, str], str] = {}
    tree = merkle.CompactRange()
    sha256 = hashlib.sha256
    leaf_hash = merkle.leaf_hash
    append = tree.append
    loads = json.loads
    covered = tail_check.covered
    # Streamed (a server-side cursor where the driver has one): a ledger need not fit in memory.
    result = conn.execution_options(stream_results=True, yield_per=5000).exec_driver_sql(
        "SELECT seq, entity_type, entity_id, op, hash, body, signature FROM prov_events ORDER BY seq"
    )
    last_seq = 0
    for batch in result.partitions():
        for seq, entity_type, entity_id, op, stored_hash, text, signature in batch:
            if seq != last_seq + 1:
                # Rows come ordered by their primary key, so only a gap is possible here; a
                # reordering shows up as bodies that disagree with their rows and chains.
                missing = f"#{last_seq + 1}" if seq == last_seq + 2 else f"#{last_seq + 1}..#{seq - 1}"
                report.add("events-missing", f"event(s) {missing} are gone", event=last_seq + 1,
                           entity=f"{entity_type} {entity_id}")
            last_seq = seq
            body = text.encode("utf-8")
            digest = sha256(body).hexdigest()
            if digest != stored_hash:
                report.add("event-altered", "stored hash does not match the event body", event=seq,
                           entity=f"{entity_type} {entity_id}")
            try:
                doc = loads(text)
                entity = doc["entity"]
                key = (entity["type"], entity["id"])
                claimed = (doc["seq"], key[0], key[1], doc["op"])
            except (ValueError, KeyError, TypeError):
                report.add("event-malformed", "event body is not a ledger event", event=seq,
                           entity=f"{entity_type} {entity_id}")
                append(leaf_hash(body))
                continue
            if claimed != (seq, entity_type, entity_id, op):
                report.add("event-altered", "event row disagrees with its signed body", event=seq,
                           entity=f"{entity_type} {entity_id}")
            if doc.get("prev") != heads.get(key):
                report.add("chain-broken", "event does not link to the previous event of its entity",
                           event=seq, entity=f"{key[0]} {key[1]}")
            heads[key] = digest
            append(leaf_hash(body))
            size = tree.size
            if seq > covered:
                tail_check.check(seq, digest, signature, doc.get("time", ""), f"{entity_type} {entity_id}")
            if size in wanted_sizes:
                roots[size] = tree.root()
                times[size] = doc.get("time", "")
            payload = doc.get("payload")
            if isinstance(payload, dict) and payload.get("kind") == "mlflow.write":
                try:
                    _apply_changes(report, tables, expected, payload.get("changes") or [], seq)
                except (ValueError, TypeError, AttributeError):
                    report.add("event-malformed", "event's captured rows are not well formed",
                               event=seq, entity=f"{entity_type} {entity_id}")
            if isinstance(payload, dict) and isinstance(payload.get("records"), list):
                for record in payload["records"]:
                    if isinstance(record, dict) and isinstance(record.get("blob"), str):
                        blobs.setdefault(record["blob"], (seq, f"{entity_type} {entity_id}"))
        report.events += len(batch)
    return tree


def _apply_changes(
    report: Report,
    tables: dict[str, capture.TableInfo],
    expected: dict[str, dict[tuple, tuple[dict[str, Any], int]]],
    changes: Iterable[list[Any]],
    seq: int,
) -> None:
    loads = json.loads
    for table_name, op, old_text, new_text in changes:
        old = loads(old_text) if old_text is not None else None
        new = loads(new_text) if new_text is not None else None
        table = tables.get(table_name)
        if table is None:
            report.add("table-missing", f"table {table_name} written by the ledger no longer exists", event=seq)
            tables[table_name] = table = capture.TableInfo(table_name, (), ())
            expected[table_name] = {}
        rows = expected[table_name]
        if old is not None:
            rows.pop(capture.primary_key_of(table, old), None)
        if new is not None:
            rows[capture.primary_key_of(table, new)] = (new, seq)


def _provisionally_signed_size(checkpoints: list[Any], keyring: Keyring, origin: str) -> int:
    """The largest tree size any checkpoint signs with a trusted key (validity windows are
    applied later, once event times are known). Events beyond it must carry their own
    valid signature."""
    size = 0
    for row in checkpoints:
        try:
            size = max(size, open_checkpoint(row.note, keyring, origin=origin).size)
        except (IntegrityError, ConfigurationError):
            continue
    return size


class _TailSignatures:
    """Checks the own signature of each event that no checkpoint covers."""

    def __init__(self, keyring: Keyring, report: Report, covered: int) -> None:
        self.keyring = keyring
        self.report = report
        self.covered = covered

    def check(self, seq: int, event_hash: str, signature: str | None, time: str, label: str) -> None:
        from mlflow_provenance.ledger import event_signing_message

        key_id, _, encoded = (signature or "").partition(":")
        entry = self.keyring.entry_for_key_id(key_id) if key_id else None
        try:
            if entry is None:
                raise IntegrityError(f"signed by unknown key {key_id[:16] or '(none)'}")
            when = _checkpoint_time({0: time}, 0)
            if when is not None and not self.keyring.valid_at(entry, when):
                raise IntegrityError(f"key {key_id[:16]} was not valid at {time}")
            entry.public_key.verify(
                base64.b64decode(encoded, validate=True),
                event_signing_message(self.report.origin, event_hash),
            )
        except (IntegrityError, ValueError) as exc:
            self.report.add(
                "event-signature",
                f"event #{seq}, newer than every checkpoint, has no valid signature: {exc}",
                event=seq,
                entity=label,
            )


def _checkpoint_time(times: dict[int, str], size: int) -> _dt.datetime | None:
    text = times.get(size)
    try:
        return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        return None  # no usable time: validity windows cannot apply, signatures still must


def _check_checkpoints(
    report: Report,
    checkpoints: list[Any],
    keyring: Keyring,
    roots: dict[int, bytes],
    times: dict[int, str],
    log_size: int,
) -> None:
    previous = 0
    for row in checkpoints:
        report.checkpoints += 1
        where = f"checkpoint {row.id} (size {row.size})"
        try:
            cp = open_checkpoint(row.note, keyring, origin=report.origin, at=_checkpoint_time(times, row.size))
        except IntegrityError as exc:
            report.add("checkpoint-signature", f"{where}: {exc}", entity="ledger")
            continue
        except ConfigurationError as exc:
            report.add("checkpoint-malformed", f"{where}: {exc}", entity="ledger")
            continue
        if cp.size != row.size or cp.root.hex() != row.root:
            report.add("checkpoint-altered", f"{where}: row disagrees with its signed note", entity="ledger")
        if cp.size < previous:
            report.add(
                "checkpoint-rollback",
                f"{where}: signed tree size {cp.size} is smaller than an earlier checkpoint's {previous}",
                entity="ledger",
            )
        previous = max(previous, cp.size)
        if cp.size > log_size:
            report.add(
                "log-truncated",
                f"{where}: signed a log of {cp.size} events but only {log_size} remain",
                entity="ledger",
                event=log_size + 1,
            )
        elif roots.get(cp.size) != cp.root:
            report.add(
                "log-altered",
                f"{where}: events 1..{cp.size} no longer hash to the signed Merkle root",
                entity="ledger",
                event=cp.size,
            )
        elif cp.size >= report.signed_size:
            report.signed_size = cp.size
            report.latest_checkpoint = {"size": cp.size, "root": cp.root.hex(), "note": row.note}


def _check_signed(report: Report) -> None:
    """Every ledger starts with a signed genesis checkpoint: events with none trusted are forged."""
    if report.events and report.signed_size == 0:
        report.add(
            "no-trusted-checkpoint",
            f"{report.events} events but no checkpoint signed by a trusted key covers any of them "
            f"(checkpoints deleted, or the ledger replaced)",
            entity="ledger",
        )


def _check_head(conn: sa.engine.Connection, report: Report, tree: merkle.CompactRange) -> None:
    log = ledger_schema.prov_log
    head = conn.execute(sa.select(log.c.size, log.c.frontier).where(log.c.id == 1)).first()
    if head is None:
        report.add("log-head-missing", "the ledger's head row is gone", entity="ledger")
        return
    if head.size != tree.size:
        report.add(
            "log-head-mismatch",
            f"the log head records {head.size} events but {tree.size} are present",
            entity="ledger",
            event=min(head.size, tree.size) + 1,
        )
    elif json.loads(head.frontier) != tree.to_json():
        report.add("log-head-mismatch", "the log head's Merkle range does not match the events", entity="ledger")


def _check_witness(report: Report, witness: dict | None, roots: dict[int, bytes], log_size: int) -> None:
    if not witness:
        return
    if witness.get("origin") != report.origin:
        report.add(
            "log-replaced",
            f"this database's ledger was {witness.get('origin')} (witnessed at {witness.get('size')} "
            f"events) and is now {report.origin}: the ledger was wiped and started anew",
            entity="ledger",
        )
        return
    size = int(witness["size"])
    if size > log_size:
        report.add(
            "log-rolled-back",
            f"a checkpoint of {size} events was seen before, but the log now has {log_size}",
            entity="ledger",
            event=log_size + 1,
        )
    elif roots.get(size, b"").hex() != witness["root"]:
        report.add(
            "log-forked",
            f"events 1..{size} differ from the checkpoint witnessed earlier",
            entity="ledger",
            event=size,
        )


def _in_scope(
    table: str, row: dict[str, Any], scope: Scope, model_runs: set[str], model_ids: set[str] = frozenset()
) -> bool:
    if scope.run_id:
        if table == "inputs":
            return entity_of_row(table, row) == ("run", scope.run_id)
        return row.get("run_uuid") == scope.run_id
    if scope.model:
        name, version = scope.model
        if table in ("model_versions", "model_version_tags"):
            return row.get("name") == name and str(row.get("version")) == version
        if table in ("registered_models", "registered_model_tags", "registered_model_aliases"):
            return row.get("name") == name
        if table == "inputs":
            entity = entity_of_row(table, row)
            return entity is not None and entity[1] in model_runs or row.get("destination_id") in model_ids
        if "model_id" in row and table.startswith("logged_model"):
            return row.get("model_id") in model_ids
        return row.get("run_uuid") in model_runs
    return True


def _identity(table: capture.TableInfo, row: dict[str, Any]) -> tuple:
    """Primary key without value columns, to pair a missing row with its edited twin."""
    return tuple(
        row.get(c) for c in table.primary_key if c not in table.float_columns and c != "is_nan"
    )


def _check_state(
    conn: sa.engine.Connection,
    dialect: str,
    report: Report,
    tables: dict[str, capture.TableInfo],
    expected: dict[str, dict[tuple, tuple[dict[str, Any], int]]],
    scope: Scope,
) -> None:
    model_runs: set[str] = set()
    model_ids: set[str] = set()
    if scope.model:
        for row, _ in expected.get("model_versions", {}).values():
            if row.get("name") == scope.model[0] and str(row.get("version")) == scope.model[1]:
                model_runs.add(str(row.get("run_id")))
                source = str(row.get("source") or "")
                for candidate in (row.get("model_id"), source.split("/")[-1] if source.startswith("models:/") else None):
                    if candidate:
                        model_ids.add(str(candidate))
    for name, table in tables.items():
        if not table.columns:
            continue
        want = {pk: v for pk, v in expected.get(name, {}).items() if _in_scope(name, v[0], scope, model_runs, model_ids)}
        have = {}
        for row in capture.read_table(conn, dialect, table):
            if _in_scope(name, row, scope, model_runs, model_ids):
                have[capture.primary_key_of(table, row)] = row
        report.rows += len(have)
        if name == "runs":
            report.runs = len(have)
        missing = {pk: want[pk] for pk in want.keys() - have.keys()}
        extra = {pk: have[pk] for pk in have.keys() - want.keys()}
        twins = {_identity(table, row): pk for pk, row in extra.items()}
        for pk, (row, seq) in sorted(missing.items(), key=lambda item: item[1][1]):
            twin = twins.pop(_identity(table, row), None) if len(table.primary_key) > 1 else None
            if twin is not None and twin in extra:
                _report_changed(report, name, row, extra.pop(twin), seq)
            else:
                report.add(
                    "row-deleted",
                    f"{name} row {_pk_text(table, row)} recorded by the ledger is missing",
                    entity=_entity_label(name, row),
                    field=name,
                    event=seq,
                )
        for pk, row in extra.items():
            report.add(
                "row-inserted",
                f"{name} row {_pk_text(table, row)} is not in the ledger",
                entity=_entity_label(name, row),
                field=name,
            )
        for pk in want.keys() & have.keys():
            row, seq = want[pk]
            if row != have[pk]:
                _report_changed(report, name, row, have[pk], seq)


def _pk_text(table: capture.TableInfo, row: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{c}={row.get(c)!r}" for c in table.primary_key) + ")"


def _report_changed(report: Report, table: str, want: dict[str, Any], have: dict[str, Any], seq: int) -> None:
    for column in sorted(set(want) | set(have)):
        if want.get(column) != have.get(column):
            key = want.get("alias") or want.get("key") or want.get("name")
            label = f"{table}.{column}" + (f"[{key}]" if key is not None and column != "key" else "")
            report.add(
                "value-changed",
                f"{label} is {have.get(column)!r}, the ledger recorded {want.get(column)!r}",
                entity=_entity_label(table, want),
                field=label,
                event=seq,
            )


def _check_bypass(
    conn: sa.engine.Connection, dialect: str, report: Report, tables: list[capture.TableInfo]
) -> None:
    leftovers = capture.leftover_changes(conn)
    if leftovers:
        kinds = sorted({f"{op} {tbl}" for tbl, op in leftovers})
        report.add(
            "write-bypassed-ledger",
            f"{len(leftovers)} captured change(s) were committed without a ledger event: "
            + ", ".join(kinds[:8]),
            entity="ledger",
        )
    for name, table in capture.foreign_triggers(conn, dialect, tables):
        report.add(
            "foreign-trigger",
            f"trigger {name} on {table} is not mlflow-provenance's: it can rewrite rows before "
            f"they are captured",
            entity=f"table {table}",
        )
    missing = capture.trigger_names(dialect, tables) - set(capture.existing_triggers(conn, dialect))
    if missing:
        report.add(
            "capture-disabled",
            f"{len(missing)} capture trigger(s) are missing, e.g. {sorted(missing)[0]}",
            entity="ledger",
        )


def _check_blobs(
    conn: sa.engine.Connection, report: Report, referenced: dict[str, tuple[int, str]], *, whole_database: bool
) -> None:
    """Documents stored beside events (manifests, policies) must hash to the digest the
    events name; a stored document no event names was written behind the ledger."""
    stored = set()
    rows = conn.execute(sa.select(ledger_schema.prov_blobs.c.digest, ledger_schema.prov_blobs.c.content))
    for digest, content in rows:
        stored.add(digest)
        if digest not in referenced:
            if whole_database:
                report.add("blob-unreferenced", f"document {digest} is named by no ledger event")
            continue
        seq, entity = referenced[digest]
        actual = sha256_digest(bytes(content or b""))
        if actual != digest:
            report.add("blob-altered", f"document {digest} no longer has that digest (now {actual})",
                       event=seq, entity=entity)
    for digest, (seq, entity) in referenced.items():
        if digest not in stored:
            report.add("blob-missing", f"document {digest} named by the ledger is gone", event=seq, entity=entity)


def verify_chain(conn: sa.engine.Connection, keyring: Keyring, entity_type: str, entity_id: str) -> Report:
    """A quick check of one entity's chain, cheap enough to run at every run end.

    Re-hashes and links the entity's events, checks the newest checkpoint's signature, and
    the own signature of its events newer than that checkpoint. It does not replay the
    ledger against MLflow's rows nor rebuild the Merkle tree: that is :func:`verify_database`.

    Raises:
        ConfigurationError: the database has no ledger, or one of a newer format.
    """
    meta = ledger_schema.read_meta(conn)
    if not meta:
        raise ConfigurationError("This database has no provenance ledger (no prov_meta table).")
    ledger_schema.check_format(meta)
    report = Report(origin=meta.get("origin", ""), scope=f"{entity_type} {entity_id} (chain)")
    label = f"{entity_type} {entity_id}"
    covered = 0
    note = conn.execute(
        sa.select(ledger_schema.prov_checkpoints.c.note).order_by(ledger_schema.prov_checkpoints.c.id.desc()).limit(1)
    ).scalar()
    if note is not None:
        try:
            covered = open_checkpoint(note, keyring, origin=report.origin).size
        except (ProvenanceError, ValueError) as exc:
            report.add("checkpoint-signature", f"the newest checkpoint does not verify: {exc}", entity="ledger")
    tail = _TailSignatures(keyring, report, covered)
    rows = query(conn, "SELECT seq, hash, body, signature FROM prov_events "
                       "WHERE entity_type = ? AND entity_id = ? ORDER BY seq", entity_type, entity_id)
    previous = None
    for seq, stored_hash, text, signature in rows:
        report.events += 1
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != stored_hash:
            report.add("event-altered", "stored hash does not match the event body", event=seq, entity=label)
        try:
            doc = json.loads(text)
        except ValueError:
            report.add("event-malformed", "event body is not a ledger event", event=seq, entity=label)
            continue
        if doc.get("prev") != previous:
            report.add("chain-broken", "event does not link to the previous event of its entity", event=seq, entity=label)
        previous = stored_hash
        if seq > covered:
            tail.check(seq, stored_hash, signature, doc.get("time", ""), label)
    return report
