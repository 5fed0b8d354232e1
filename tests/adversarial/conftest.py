"""A golden database written by real MLflow calls, copied (SQLite) or cloned (PostgreSQL) per test.

The workload is ``plugin_examples/train_classifier.py`` — params, per-epoch metrics, tags,
a dataset input, a logged model, registered version 1 with alias ``candidate`` — plus the
MLflow calls some attacks need: version 2 of the model, a stage transition, a second
finished run and a soft-deleted third run. It is written once per session with a
signing key made by ``mlflow-provenance keygen``; every test gets a copy of the database
and of the witness the workload left behind, so each attack starts from the state an
auditor has already verified.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.register_assert_rewrite("tests.adversarial.findings", "adversarial.findings")

from tests.conftest import PG_ADMIN_URI, postgres_or_skip, inner_db_uri, run_cli

ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = ROOT / "plugin_examples" / "train_classifier.py"
_ENV_CLEARED = (
    "MLFLOW_PROVENANCE_KEYRING",
    "MLFLOW_PROVENANCE_POLICY",
    "MLFLOW_PROVENANCE_MODE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
)


@dataclass(frozen=True)
class Workload:
    """Ids of what the golden workload created."""

    run_id: str  # the training run (sgd-wine)
    run_name: str
    experiment_id: str
    model_name: str
    version: str  # registered from the training run; alias "candidate", stage Staging
    second_version: str  # registered from the same logged model, stage None
    model_id: str  # the logged model (m-…)
    baseline_run_id: str  # a second finished run in the same experiment
    deleted_run_id: str  # a third run, soft-deleted with mlflow.delete_run


def _load_train():
    spec = importlib.util.spec_from_file_location("plugin_examples_train_classifier", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train


def write_workload(uri: str) -> Workload:
    """Run the example and the extra MLflow calls on ``uri`` (a provenance+ URI)."""
    import mlflow

    ids = _load_train()(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(ids["run_id"])
    experiment_id = run.info.experiment_id
    model_id = ids["model_uri"].rsplit("/", 1)[-1]

    baseline = client.create_run(experiment_id, run_name="baseline")
    client.log_param(baseline.info.run_id, "alpha", "0.01")
    client.log_metric(baseline.info.run_id, "test_accuracy", 0.5, step=0)
    client.set_tag(baseline.info.run_id, "team", "ml-platform")
    client.set_terminated(baseline.info.run_id)

    mlflow.set_tracking_uri(uri)
    discarded = client.create_run(experiment_id, run_name="discarded")
    client.log_metric(discarded.info.run_id, "test_accuracy", 0.1, step=0)
    client.set_terminated(discarded.info.run_id)
    mlflow.delete_run(discarded.info.run_id)

    source = client.get_model_version(ids["model_name"], ids["version"]).source
    second = client.create_model_version(ids["model_name"], source, run_id=ids["run_id"])
    client.transition_model_version_stage(ids["model_name"], ids["version"], "Staging")
    return Workload(
        run_id=ids["run_id"],
        run_name=run.info.run_name,
        experiment_id=str(experiment_id),
        model_name=ids["model_name"],
        version=str(ids["version"]),
        second_version=str(second.version),
        model_id=model_id,
        baseline_run_id=baseline.info.run_id,
        deleted_run_id=discarded.info.run_id,
    )


@dataclass(frozen=True)
class Golden:
    """A database holding the workload, and the provenance home its writer left behind."""

    location: str  # SQLite file path, or PostgreSQL database name
    home: Path
    workload: Workload


def _quiet_requirement_inference(mp: pytest.MonkeyPatch) -> None:
    # log_model imports the model in a subprocess to guess pip requirements (~8 s).
    # The guess lands in an artifact file, never in the database: pin it.
    from mlflow.utils import requirements_utils

    mp.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])


def _build_golden(location: str, workdir: Path, uri: str, key: Path) -> Golden:
    """Write the workload on ``uri`` with ``key``, in a provenance home of its own under ``workdir``."""
    import mlflow
    from mlflow.tracking import fluent

    home = workdir / "provenance-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_PROVENANCE_HOME", str(home))
        mp.setenv("MLFLOW_PROVENANCE_KEY", str(key))
        for name in _ENV_CLEARED:
            mp.delenv(name, raising=False)
        mp.chdir(workdir)
        _quiet_requirement_inference(mp)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                workload = write_workload(uri)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            fluent._active_experiment_id = None
            from mlflow_provenance.adapters.binding import dispose_engines

            dispose_engines()
    return Golden(location=location, home=home, workload=workload)


@pytest.fixture(scope="session")
def legit_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment's real signing key, made with ``mlflow-provenance keygen``."""
    path = tmp_path_factory.mktemp("legit-key") / "provenance.key"
    code, out = run_cli("keygen", "--out", str(path))
    assert code == 0, out
    return path


@pytest.fixture(scope="session")
def golden_sqlite(tmp_path_factory: pytest.TempPathFactory, legit_key: Path,
                  migrated_sqlite_template: Path) -> Golden:
    workdir = tmp_path_factory.mktemp("golden-sqlite")
    path = workdir / "mlflow.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return _build_golden(str(path), workdir, f"provenance+sqlite:///{path}", legit_key)


@pytest.fixture(scope="session")
def golden_postgres(tmp_path_factory: pytest.TempPathFactory, legit_key: Path) -> Iterator[Golden]:
    postgres_or_skip()
    import sqlalchemy as sa

    name = f"prov_golden_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    host_db = PG_ADMIN_URI.rsplit("/", 1)[0] + "/" + name
    try:
        workdir = tmp_path_factory.mktemp("golden-postgres")
        yield _build_golden(name, workdir, f"provenance+{host_db}", legit_key)
    finally:
        with admin.connect() as conn:
            _drop_connections(conn, name)
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def _drop_connections(conn: Any, name: str) -> None:
    conn.exec_driver_sql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )


# --- the database under attack ------------------------------------------------------------------


class Target:
    """One test's copy of the golden database, and the attacker's access to it.

    ``tamper`` runs SQL behind MLflow's back, then removes the rows the capture triggers
    copied into ``prov_changes`` — an attacker covers that track, so what catches the
    attack is the comparison of the tables with the ledger, not the leftover rows.
    SQL uses ``?`` placeholders on both backends.
    """

    dialect = ""

    def __init__(self, uri: str, workload: Workload) -> None:
        self.uri = uri
        self.w = workload

    def _run(self, statements: list[tuple[str, tuple]]) -> list[tuple]:
        """Run ``statements`` in one transaction; return the last one's rows."""
        raise NotImplementedError

    def tamper(self, *statements: str | tuple[str, tuple]) -> None:
        """Run SQL statements (text, or (text, params)) in one transaction, then cover the track."""
        steps = [s if isinstance(s, tuple) else (s, ()) for s in statements]
        self._run(steps + [("DELETE FROM prov_changes", ())])

    def query(self, sql: str, *params: Any) -> list[tuple]:
        return self._run([(sql, params)])

    def scalar(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None

    def row_text(self, table: str, where: str, *params: Any) -> str:
        """A row as the capture triggers render it (what an event body holds), via the product's own SQL."""
        import sqlalchemy as sa

        from mlflow_provenance import capture

        engine = sa.create_engine(inner_db_uri(self.uri))
        try:
            with engine.connect() as conn:
                info = next(t for t in capture.captured_tables(conn) if t.name == table)
                sql = f'SELECT {capture.row_json_sql(self.dialect, info, "t")} FROM "{table}" t WHERE {where}'
                if self.dialect != "sqlite":
                    sql = sql.replace("?", "%s")
                (text,) = conn.exec_driver_sql(sql, tuple(params)).one()
                return text
        finally:
            engine.dispose()

    def events(self) -> list[dict[str, Any]]:
        """Every ledger event's decoded body, in sequence order."""
        return [json.loads(body) for (body,) in self.query("SELECT body FROM prov_events ORDER BY seq")]

    def last_writer(self, table: str, **match: Any) -> int:
        """The seq of the last event whose captured changes wrote a ``table`` row matching ``match``."""
        found = None
        for doc in self.events():
            for tbl, _op, old, new in (doc.get("payload") or {}).get("changes") or []:
                if tbl != table:
                    continue
                for row in (_decoded(old), _decoded(new)):
                    if row and all(str(row.get(k)) == str(v) for k, v in match.items()):
                        found = doc["seq"]
        assert found is not None, f"no event wrote a {table} row matching {match}"
        return found


def _decoded(row: Any) -> dict[str, Any] | None:
    """A captured row: the database's JSON text in the event body (or an already decoded object)."""
    return json.loads(row) if isinstance(row, str) else row


class SqliteTarget(Target):
    dialect = "sqlite"

    def __init__(self, uri: str, path: Path, workload: Workload) -> None:
        super().__init__(uri, workload)
        self.path = path

    def connect(self) -> sqlite3.Connection:
        """A plain sqlite3 connection: no MLflow, no provenance store, foreign keys off."""
        return sqlite3.connect(self.path)

    def _run(self, statements: list[tuple[str, tuple]]) -> list[tuple]:
        con = self.connect()
        try:
            rows: list[tuple] = []
            for sql, params in statements:
                rows = con.execute(sql, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()


class PostgresTarget(Target):
    dialect = "postgresql"

    def _run(self, statements: list[tuple[str, tuple]]) -> list[tuple]:
        import sqlalchemy as sa

        engine = sa.create_engine(inner_db_uri(self.uri))
        try:
            with engine.begin() as conn:
                rows: list[tuple] = []
                for sql, params in statements:
                    result = conn.exec_driver_sql(sql.replace("?", "%s"), tuple(params))
                    rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
                return rows
        finally:
            engine.dispose()


def _copy_witness(golden: Golden, home: Path, target_uri: str) -> None:
    """Give the copy the golden database's witness, under the copy's own database identity
    (the witness is keyed by database, as an auditor's would be for the database they audit)."""
    import sqlalchemy as sa

    from mlflow_provenance import config

    (source,) = (golden.home / "witness").iterdir()
    witnessed = json.loads(source.read_text())
    database = config.database_identity(sa.engine.make_url(inner_db_uri(target_uri)))
    witnessed["database"] = database
    target = config.witness_path(database)
    assert target.parent == home / "witness"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(witnessed))


@pytest.fixture
def db(golden_sqlite: Golden, tmp_path: Path, provenance_home: Path, legit_key: Path,
       monkeypatch: pytest.MonkeyPatch) -> SqliteTarget:
    """A fresh copy of the golden SQLite database, the real key configured, the witness in place."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(golden_sqlite.location, path)
    _copy_witness(golden_sqlite, provenance_home, f"provenance+sqlite:///{path}")
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(legit_key))
    return SqliteTarget(f"provenance+sqlite:///{path}", path, golden_sqlite.workload)


@pytest.fixture
def pg_db(golden_postgres: Golden, postgres_uri: str, provenance_home: Path, legit_key: Path,
          monkeypatch: pytest.MonkeyPatch) -> PostgresTarget:
    """The ``postgres_uri`` database, re-created as a clone of the golden PostgreSQL database."""
    import sqlalchemy as sa

    name = postgres_uri.rsplit("/", 1)[-1]
    admin = sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            _drop_connections(conn, name)
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            _drop_connections(conn, golden_postgres.location)
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{golden_postgres.location}"')
    finally:
        admin.dispose()
    _copy_witness(golden_postgres, provenance_home, postgres_uri)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(legit_key))
    return PostgresTarget(postgres_uri, golden_postgres.workload)
