"""Helpers for the adapter tests: module-scoped isolated environments, a template MLflow
SQLite database (migrating a fresh SQLite database takes ~7 s; copying one takes ms),
PostgreSQL databases that outlive one test, and ledger queries.

The autouse ``provenance_home`` fixture of ``tests/conftest.py`` is function-scoped; the
module-scoped scenarios here run all their writes and their ``verify`` inside their own
fixture, under their own isolated ``MLFLOW_PROVENANCE_HOME`` (``tests.conftest.isolated_env``), so the
key that signs is the key that verifies.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_postgres_database  # noqa: E402

def pg_database() -> contextlib.AbstractContextManager[str]:
    """A fresh PostgreSQL database (plain SQLAlchemy URI), dropped afterwards."""
    return fresh_postgres_database("prov_adapt")


@pytest.fixture(scope="session")
def sqlite_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with MLflow's full schema and no rows (copy it; never write it).

    The suite-wide ``migrated_sqlite_template`` of ``tests/conftest.py`` where there is
    one (one migration per session), else our own.
    """
    try:
        return request.getfixturevalue("migrated_sqlite_template")
    except pytest.FixtureLookupError:
        pass
    import sqlalchemy as sa
    from mlflow.store.db.utils import _initialize_tables

    path = tmp_path_factory.mktemp("adapters-template") / "mlflow.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    _initialize_tables(engine)
    engine.dispose()
    return path


def copy_template(template: Path, dest: Path) -> Path:
    """Copy the template database to ``dest``; returns ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return dest


def inner(uri: str) -> str:
    """The SQLAlchemy URI behind a ``provenance+`` URI (or the URI itself)."""
    return uri[len("provenance+"):] if uri.startswith("provenance+") else uri


@dataclass(frozen=True)
class Event:
    seq: int
    op: str
    entity_type: str
    entity_id: str
    body: dict[str, Any]

    @property
    def entity(self) -> tuple[str, str]:
        return (self.entity_type, self.entity_id)

    def changes(self) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """``(table, op, old row, new row)`` of each captured change, rows decoded."""
        out = []
        for table, op, old, new in (self.body.get("payload") or {}).get("changes") or []:
            out.append((table, op, _row(old), _row(new)))
        return out


def _row(value: Any) -> dict[str, Any] | None:
    # Rows are stored as JSON objects, or verbatim as the database's JSON text.
    return json.loads(value) if isinstance(value, str) else value


class Ledger:
    """Reads ``prov_events`` of a provenance database directly (not through the store)."""

    def __init__(self, uri: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(inner(uri))

    def events(self, after: int = 0) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT seq, op, entity_type, entity_id, body FROM prov_events "
                f"WHERE seq > {int(after)} ORDER BY seq"
            ).fetchall()
        return [Event(int(s), op, et, eid, json.loads(body)) for s, op, et, eid, body in rows]

    def head(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COALESCE(MAX(seq), 0) FROM prov_events").scalar())

    def leftover_changes(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM prov_changes").scalar())

    def close(self) -> None:
        self.engine.dispose()


def run_verify(uri: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``mlflow-provenance verify --json`` in-process, under the current environment."""
    from mlflow_provenance.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["verify", "--tracking-uri", uri, "--json", *extra])
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else {})


def findings(report: dict[str, Any]) -> list[str]:
    return [f"[{f.get('kind')}] {f.get('message')} ({f.get('entity')}, event {f.get('event')})"
            for f in report.get("findings", [])]
