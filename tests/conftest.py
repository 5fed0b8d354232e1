"""Shared fixtures: an isolated provenance home per test, SQLite and PostgreSQL stores.

PostgreSQL tests need the server on 127.0.0.1:5432 (trust auth). Where it is not running
they skip with that reason — except in CI (``CI=true``), where its absence fails the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

PG_HOST = os.environ.get("PROVENANCE_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_URI = f"postgresql://postgres@{PG_HOST}:5432/postgres"


def postgres_or_skip() -> None:
    """Skip (fail in CI) when the test PostgreSQL server is not reachable."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URI)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL on {PG_HOST}:5432, but: {exc}")
        pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:5432 ({type(exc).__name__})")


@pytest.fixture(autouse=True)
def provenance_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own key, witness and MLflow state."""
    home = tmp_path / "provenance-home"
    monkeypatch.setenv("MLFLOW_PROVENANCE_HOME", str(home))
    for name in ("MLFLOW_PROVENANCE_KEY", "MLFLOW_PROVENANCE_KEYRING", "MLFLOW_PROVENANCE_POLICY",
                 "MLFLOW_PROVENANCE_MODE", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI",
                 "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield home
    try:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        import mlflow.tracking.fluent as fluent

        fluent._active_experiment_id = None  # mlflow.set_experiment() state must not leak
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database with MLflow's schema: migrations take seconds, a copy doesn't."""
    import sqlalchemy as sa
    from mlflow.store.db.utils import _initialize_tables

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    _initialize_tables(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_uri(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    """A provenance+sqlite URI on a database with MLflow's schema and nothing else yet."""
    import shutil

    shutil.copyfile(migrated_sqlite_template, tmp_path / "mlflow.db")
    return f"provenance+sqlite:///{tmp_path}/mlflow.db"


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "prov_test") -> Iterator[str]:
    """A new PostgreSQL database (plain SQLAlchemy URI), dropped afterwards."""
    postgres_or_skip()
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:5432/{name}"
    finally:
        from mlflow_provenance.adapters.binding import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database behind a provenance URI, dropped afterwards."""
    with fresh_postgres_database() as uri:
        yield "provenance+" + uri


MYSQL_ADMIN_URI = f"mysql+pymysql://root@{PG_HOST}:3306/test"


@pytest.fixture
def mysql_uri() -> Iterator[str]:
    """A fresh MySQL/MariaDB database, dropped afterwards (MariaDB runs on this machine kind)."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(MYSQL_ADMIN_URI, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires MySQL/MariaDB on {PG_HOST}:3306, but: {exc}")
        pytest.skip(f"MySQL/MariaDB is not reachable on {PG_HOST}:3306 ({type(exc).__name__})")
    name = f"prov_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    yield f"provenance+mysql+pymysql://root@{PG_HOST}:3306/{name}"
    from mlflow_provenance.adapters.binding import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest) -> str:
    """A provenance store URI, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_uri")
    return request.getfixturevalue("postgres_uri")


def inner_db_uri(store_uri: str) -> str:
    """The SQLAlchemy URI behind a provenance URI, for tampering behind MLflow's back."""
    return store_uri[len("provenance+"):]


def run_cli(*args: str) -> tuple[int, str]:
    """Run ``mlflow-provenance ARGS`` in-process; return (exit code, stdout)."""
    from mlflow_provenance.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture
def verify() -> Callable[..., tuple[int, dict[str, Any]]]:
    """``verify(uri, *extra_args)`` → (exit code, JSON report) via the real CLI."""

    def _verify(uri: str, *extra: str) -> tuple[int, dict[str, Any]]:
        code, out = run_cli("verify", "--tracking-uri", uri, "--json", *extra)
        return code, (json.loads(out) if out.strip() else {})

    return _verify


@pytest.fixture
def ungated_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A promotion policy that gates nothing ordinary tests do (one alias nobody sets).

    For tests of the store's recording and parity with MLflow, which move stages and
    aliases of versions without provenance; the gate itself is tested on its own."""
    policy = tmp_path / "ungated-policy.yaml"
    policy.write_text(UNGATED_POLICY)
    monkeypatch.setenv("MLFLOW_PROVENANCE_POLICY", str(policy))
    return policy


def ledger_rows(uri: str, sql: str, *params: object) -> list[tuple]:
    """Rows of a read query (``?`` placeholders) on the database behind a provenance URI."""
    import sqlalchemy as sa

    from mlflow_provenance.sql import query

    engine = sa.create_engine(inner_db_uri(uri))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in query(conn, sql, *params)]
    finally:
        engine.dispose()


_ISOLATED_ENV = (
    "MLFLOW_PROVENANCE_KEY", "MLFLOW_PROVENANCE_KEYRING", "MLFLOW_PROVENANCE_POLICY", "MLFLOW_PROVENANCE_MODE",
    "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID",
)
UNGATED_POLICY = "version: 1\naliases:\n  never-set-by-these-tests:\n    require: [owner]\n"


@contextlib.contextmanager
def isolated_env(root: Path, *, ungated: bool = False, quick_log_model: bool = False) -> Iterator[Path]:
    """Own provenance home, no provenance/MLflow variables, cwd ``root``: the module-scoped
    counterpart of the autouse ``provenance_home`` fixture, for databases built once per module.

    ``ungated``: a promotion policy that gates nothing (see ``ungated_policy``).
    ``quick_log_model``: ``log_model`` does not import the model in a subprocess to guess its
    requirements (seconds per model).
    """
    home = root / "provenance-home"
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("MLFLOW_PROVENANCE_HOME", str(home))
        for name in _ISOLATED_ENV:
            mp.delenv(name, raising=False)
        if ungated:
            (root / "ungated-policy.yaml").write_text(UNGATED_POLICY)
            mp.setenv("MLFLOW_PROVENANCE_POLICY", str(root / "ungated-policy.yaml"))
        if quick_log_model:
            from mlflow.utils import requirements_utils

            mp.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])
        mp.chdir(root)
        yield home
    finally:
        try:
            import mlflow
            import mlflow.tracking.fluent as fluent

            from mlflow_provenance.adapters.binding import dispose_engines

            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            fluent._active_experiment_id = None
            dispose_engines()
        finally:
            mp.undo()
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
