"""Fixtures and helpers shared by the robustness tests.

Creating MLflow's schema on a fresh SQLite file runs all of MLflow's migrations (several
seconds). The tests here need many fresh databases, so a plain MLflow database is built
once per session and copied; opening a copy through ``provenance+sqlite`` creates the
ledger (with its own origin) and adopts the copied rows in the genesis event.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

WORKERS = Path(__file__).parent / "workers"


def plain_mlflow_db(path: Path) -> Path:
    """Create a plain MLflow SQLite database (no ledger) at ``path``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "artifacts"))
    store.engine.dispose()
    return path


@pytest.fixture(scope="session")
def plain_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain MLflow database, built once per session; copy it, never write to it."""
    return plain_mlflow_db(tmp_path_factory.mktemp("template") / "template.db")


def copy_template(template: Path, directory: Path, name: str = "mlflow.db") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    shutil.copyfile(template, target)
    return target


@pytest.fixture
def fresh_sqlite_db(plain_template: Path, tmp_path: Path) -> Path:
    """A copy of the plain template in this test's directory."""
    return copy_template(plain_template, tmp_path / "db")


def worker_command(script: str, *args: str) -> list[str]:
    return [sys.executable, "-u", str(WORKERS / script), *args]


def worker_env() -> dict[str, str]:
    """The environment for worker subprocesses (inherits MLFLOW_PROVENANCE_HOME)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ledger_facts(db_uri: str) -> dict[str, Any]:
    """Independent look at the ledger tables (not via ``verify``).

    Returns the event count, whether ``seq`` is exactly 1..N, the chain breaks found by
    recomputing each entity's ``prev`` links and hashes, and events per entity.
    """
    engine = sa.create_engine(db_uri)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT seq, entity_type, entity_id, hash, body FROM prov_events ORDER BY seq"
            ).fetchall()
            leftovers = conn.exec_driver_sql("SELECT COUNT(*) FROM prov_changes").scalar()
            log_size = conn.exec_driver_sql("SELECT size FROM prov_log WHERE id = 1").scalar()
    finally:
        engine.dispose()
    heads: dict[tuple[str, str], str] = {}
    per_entity: dict[tuple[str, str], int] = {}
    breaks = []
    for seq, etype, eid, digest, body in rows:
        doc = json.loads(body)
        key = (etype, eid)
        if hashlib.sha256(body.encode()).hexdigest() != digest:
            breaks.append((seq, "hash"))
        if doc.get("prev") != heads.get(key):
            breaks.append((seq, "prev"))
        heads[key] = digest
        per_entity[key] = per_entity.get(key, 0) + 1
    seqs = [r[0] for r in rows]
    return {
        "events": len(rows),
        "gap_free": seqs == list(range(1, len(rows) + 1)),
        "log_size": log_size,
        "chain_breaks": breaks,
        "leftover_changes": leftovers,
        "per_entity": per_entity,
    }


def stop(proc: subprocess.Popen) -> None:
    """Terminate a worker we started (by its own handle) if it is still running."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def inner_db_uri_of(store_uri: str) -> str:
    """The SQLAlchemy URI behind a ``provenance+`` URI."""
    prefix = "provenance+"
    return store_uri[len(prefix):] if store_uri.startswith(prefix) else store_uri
