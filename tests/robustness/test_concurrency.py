"""Concurrent writers (DESIGN.md §5, §6): 4 processes × 4 threads on one database.

Each thread owns a run and makes ``WRITES`` writes to it (params, metrics, tags, batches),
then ends it, which signs a checkpoint. All processes open the store first and start
writing together. Afterwards ``verify`` exits 0 with no findings, the event sequence is
gap-free and every per-entity chain links (checked by ``verify`` and again independently),
each run's chain holds at least one event per write, and the metrics table holds exactly
the metric rows the workers logged.

Both databases start as plain MLflow databases without a ledger, so the four processes
also race to create the ledger schema and its genesis event.

``test_verify_while_writers_are_active_*`` run ``verify`` over and over *while* the same
load writes (an auditor checking a live server database): every run must pass.

A write failing with MLflow's ``MlflowException`` (e.g. SQLite's "database is locked") is
retried. If any write needed a retry on SQLite (or ``PROVENANCE_ROBUSTNESS_BASELINE=1``),
the same load runs again on a plain ``sqlite:///`` store (no plugin), retried the same
way, and the retry counts are printed side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from .conftest import copy_template, inner_db_uri_of, ledger_facts, stop, worker_command, worker_env

PROCESSES = 4
THREADS = 4
WRITES = 30


def run_workers(uri: str, out_dir: Path, during: Callable[[], None] | None = None) -> dict[str, Any]:
    """Start the workers, release them together, wait; return their merged results.

    ``during`` is called over and over while the workers write.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        worker_command("concurrent_worker.py", uri, str(PROCESSES), str(THREADS), str(WRITES), str(out_dir)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            _, err = proc.communicate(timeout=60)
            raise AssertionError(f"workers failed to start: {line!r}\n{err[-3000:]}")
        started = time.monotonic()
        if during is not None:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            while proc.poll() is None and time.monotonic() - started < 300:
                during()
            out, err = proc.communicate(timeout=300)
        else:
            out, err = proc.communicate("go\n", timeout=300)
        wall = time.monotonic() - started
        assert proc.returncode == 0, f"workers failed ({out.strip()}):\n{err[-4000:]}"
    finally:
        stop(proc)
    results = [json.loads((out_dir / f"w{p}.json").read_text()) for p in range(PROCESSES)]
    return {
        "runs": [r for res in results for r in res["runs"]],
        "errors": [e for res in results for e in res["errors"]],
        "retries": sum(res["retries"] for res in results),
        "retry_messages": [m for res in results for m in res["retry_messages"]],
        "wall_s": round(wall, 1),
    }


def metric_rows(db_uri: str) -> int:
    engine = sa.create_engine(db_uri)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM metrics").scalar()
    finally:
        engine.dispose()


def check_concurrent_ledger(uri: str, result: dict[str, Any], verify, label: str) -> dict[str, Any]:  # noqa: ANN001
    db_uri = inner_db_uri_of(uri)
    assert result["errors"] == [], f"{label}: writes failed: {result['errors'][:3]}"
    assert len(result["runs"]) == PROCESSES * THREADS
    code, report = verify(uri)
    assert code == 0 and report.get("findings") == [], f"{label}: verify after concurrent writes: {report}"
    facts = ledger_facts(db_uri)
    assert facts["gap_free"], f"{label}: event seq has gaps"
    assert facts["chain_breaks"] == [], f"{label}: chain breaks {facts['chain_breaks'][:5]}"
    assert facts["leftover_changes"] == 0
    assert facts["log_size"] == facts["events"] == report["events"]
    assert report["checkpoints"] >= 1 + PROCESSES * THREADS, "every run end signs a checkpoint"
    for run in result["runs"]:
        events = facts["per_entity"].get(("run", run["run_id"]), 0)
        assert events >= run["writes"] + 2, f"{label}: run {run['run_id']} chain has {events} events"
    logged = sum(r["metrics"] for r in result["runs"])
    assert metric_rows(db_uri) == logged, f"{label}: metrics table vs {logged} logged"
    return {
        "label": label,
        "events": report["events"],
        "checkpoints": report["checkpoints"],
        "metric_rows": logged,
        "retries": result["retries"],
        "wall_s": result["wall_s"],
    }


@pytest.mark.slow
def test_concurrent_writers_sqlite(
    fresh_sqlite_db: Path, plain_template: Path, tmp_path: Path, verify, capsys  # noqa: ANN001
) -> None:
    uri = f"provenance+sqlite:///{fresh_sqlite_db}"
    result = run_workers(uri, tmp_path / "out-prov")
    stats = check_concurrent_ledger(uri, result, verify, "provenance+sqlite")

    with capsys.disabled():
        print(f"\n[concurrency] {json.dumps(stats)}")
    if result["retries"] == 0 and not os.environ.get("PROVENANCE_ROBUSTNESS_BASELINE"):
        return

    # Writes needed retries (or a baseline was asked for): run the same load on plain
    # MLflow (no plugin), retried the same way, and put the two side by side.
    plain_db = copy_template(plain_template, tmp_path / "plain")
    plain = run_workers(f"sqlite:///{plain_db}", tmp_path / "out-plain")
    assert plain["errors"] == [], f"plain MLflow failed under the same load: {plain['errors'][:3]}"
    assert metric_rows(f"sqlite:///{plain_db}") == sum(r["metrics"] for r in plain["runs"])
    with capsys.disabled():
        print(
            f"[concurrency] sqlite retries on MlflowException: provenance {result['retries']}, "
            f"plain MLflow {plain['retries']} (wall {result['wall_s']} s vs {plain['wall_s']} s)"
        )
        for message in sorted(set(result["retry_messages"]))[:3]:
            print(f"[concurrency]   provenance retry: {message[:200]}")
        for message in sorted(set(plain["retry_messages"]))[:3]:
            print(f"[concurrency]   plain retry: {message[:200]}")


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_writers_postgresql(postgres_uri: str, tmp_path: Path, verify, capsys) -> None:  # noqa: ANN001
    # MLflow's own migrations first (plain store), so the workers race on the ledger only.
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(inner_db_uri_of(postgres_uri), str(tmp_path / "artifacts")).engine.dispose()
    result = run_workers(postgres_uri, tmp_path / "out")
    stats = check_concurrent_ledger(postgres_uri, result, verify, "provenance+postgresql")
    assert result["retries"] == 0, f"PostgreSQL writes needed retries: {result['retry_messages'][:3]}"
    with capsys.disabled():
        print(f"\n[concurrency] {json.dumps(stats)}")


def _verify_while_writing(uri: str, tmp_path: Path, verify, capsys) -> None:  # noqa: ANN001
    """Run ``verify`` again and again while the workers write; every run must pass."""
    outcomes: list[tuple[int, int, list[str]]] = []

    def verify_once() -> None:
        code, report = verify(uri)
        findings = [f"{f['kind']}: {f['message'][:160]}" for f in report.get("findings", [])]
        outcomes.append((code, report.get("events", 0), findings))

    result = run_workers(uri, tmp_path / "out", during=verify_once)
    assert result["errors"] == []
    failed = [o for o in outcomes if o[0] != 0]
    with capsys.disabled():
        print(f"\n[live-verify] {uri.split('://')[0]}: {len(outcomes)} verify runs during writes, {len(failed)} failed")
        for code, events, findings in failed[:2]:
            print(f"[live-verify]   exit {code} at {events} events: {findings[:3]}")
    code, report = verify(uri)
    assert code == 0, f"verify after the writers stopped: {report.get('findings')}"
    assert outcomes, "the writers finished before verify ran once"
    assert not failed, (
        f"{len(failed)} of {len(outcomes)} verify runs during concurrent writes reported findings on an "
        f"untouched database (false alarm), e.g. exit {failed[0][0]} at {failed[0][1]} events: {failed[0][2][:3]}"
    )


@pytest.mark.slow
def test_verify_while_writers_are_active_sqlite(fresh_sqlite_db: Path, tmp_path: Path, verify, capsys) -> None:  # noqa: ANN001
    """An auditor may run ``verify`` against a live database (DESIGN.md §6: silent with
    concurrent writers). Writes committing during the check must not look like tampering."""
    _verify_while_writing(f"provenance+sqlite:///{fresh_sqlite_db}", tmp_path, verify, capsys)


@pytest.mark.slow
@pytest.mark.postgres
def test_verify_while_writers_are_active_postgresql(postgres_uri: str, tmp_path: Path, verify, capsys) -> None:  # noqa: ANN001
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(inner_db_uri_of(postgres_uri), str(tmp_path / "artifacts")).engine.dispose()
    _verify_while_writing(postgres_uri, tmp_path, verify, capsys)
