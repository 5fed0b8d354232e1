"""``provenance/lineage.html``: the run's lineage as a self-contained page, written when the
run ends (issue 6) — by a background thread of the process, so that ending a run does not
wait for it (it re-verifies the run, which reads the whole ledger); a process waits for
pending pages at exit (up to :data:`EXIT_WAIT_S`).

From the ledger as committed at the run's end: the datasets the run used and their
ancestors with the transformations between them, the environment summary, evaluations,
the models the run produced, and a check of the run's hash chain and the newest signed
checkpoint (:func:`~mlflow_provenance.verify.verify_chain`), with the chain head. The page loads nothing from anywhere
(:mod:`mlflow_provenance.exports.lineage_html`), so it can be opened from MLflow's
artifact view, an export, or a file system.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import logging
import os
import queue
import tempfile
import threading
import time
from typing import Any

from mlflow_provenance import config

_logger = logging.getLogger(__name__)

ARTIFACT_PATH = "provenance"
ARTIFACT_NAME = "lineage.html"
#: The page re-verifies the run, which reads the whole ledger: above this many events it is
#: not written at run end (``mlflow-provenance lineage`` and the dashboard still work).
ENV_MAX_EVENTS = "MLFLOW_PROVENANCE_LINEAGE_MAX_EVENTS"
DEFAULT_MAX_EVENTS = 200_000


def render_run_lineage(engine: Any, run_id: str) -> str:
    """The lineage page of ``run_id`` as the ledger stands now.

    Raises:
        ConfigurationError: no ledger or checkpoint, or no such run.
    """
    from mlflow_provenance.exports.lineage_html import render
    from mlflow_provenance.exports.lineage_view import model_upstream
    from mlflow_provenance.exports.snapshot import take_snapshot
    from mlflow_provenance.lineage import load_graph
    from mlflow_provenance.verify import verify_chain

    keyring = config.trusted_keyring()
    snapshot = take_snapshot(engine, keyring, run_id=run_id, proofs=False)
    with engine.connect() as conn:
        graph = load_graph(conn)
        report = verify_chain(conn, keyring, "run", run_id)
    events = snapshot.events + snapshot.unsealed
    head = max((e for e in events if f'"id":"{run_id}"' in e["body"]), key=lambda e: e["seq"], default=None)
    verification = {
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        # What was checked when the page was written; the whole check is one command away.
        "scope": (f"the run's hash chain ({report.events} events re-hashed and linked) and the newest "
                  f"signed checkpoint; for the full check: mlflow-provenance verify --run-id {run_id}"),
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "chain_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        "checkpoint": {"size": snapshot.checkpoint["size"], "root": snapshot.checkpoint["root"]},
    }
    return render(model_upstream(graph, snapshot), verification)


def write_run_lineage(store: Any, run: Any) -> None:
    """Write ``provenance/lineage.html`` for a run that just ended. Never raises: the run has
    ended and committed; the ledger keeps everything the page shows."""
    from mlflow_provenance.adapters import artifacts

    try:
        limit = int(os.environ.get(ENV_MAX_EVENTS, DEFAULT_MAX_EVENTS))
        with store.engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT size FROM prov_log WHERE id = 1").scalar() or 0
        if size > limit:
            _logger.info("mlflow-provenance: ledger has %d events (> %s=%d): no %s/%s for run %s; "
                         "use `mlflow-provenance lineage` or the dashboard", size, ENV_MAX_EVENTS, limit,
                         ARTIFACT_PATH, ARTIFACT_NAME, run.info.run_id)
            return
        page = render_run_lineage(store.engine, run.info.run_id)
        with tempfile.TemporaryDirectory(prefix="mlflow-provenance-lineage-") as tmp:
            with open(os.path.join(tmp, ARTIFACT_NAME), "w", encoding="utf-8") as f:
                f.write(page)
            artifacts.log_directory(run.info.artifact_uri, tmp, ARTIFACT_PATH)
    except Exception as exc:  # noqa: BLE001 - boundary: never fail a committed run end
        _logger.warning("mlflow-provenance: could not write %s/%s for run %s: %s",
                        ARTIFACT_PATH, ARTIFACT_NAME, run.info.run_id, exc)


#: How long a process waits at exit for lineage pages still being written.
EXIT_WAIT_S = 60.0

_pending: "queue.Queue[tuple[Any, str]]" = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def schedule_run_lineage(store: Any, run_id: str) -> None:
    """Write the run's page in the background (one worker thread per process)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="mlflow-provenance-lineage", daemon=True)
            _worker.start()
    _pending.put((store, run_id))


def _work() -> None:
    while True:
        store, run_id = _pending.get()
        try:
            write_run_lineage(store, store.get_run(run_id))
        except Exception as exc:  # noqa: BLE001 - boundary: a background thread must not die
            _logger.warning("mlflow-provenance: lineage page for run %s failed: %s", run_id, exc)
        finally:
            _pending.task_done()


def wait_for_pending(timeout_s: float = EXIT_WAIT_S) -> bool:
    """Wait until the pages scheduled so far are written; False if ``timeout_s`` ran out."""
    deadline = time.monotonic() + timeout_s
    while _pending.unfinished_tasks:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@atexit.register
def _drain_at_exit() -> None:
    if _pending.unfinished_tasks and not wait_for_pending():
        _logger.warning("mlflow-provenance: exiting before every provenance/lineage.html was written")


def _after_fork() -> None:
    global _pending, _worker, _worker_lock
    _pending, _worker, _worker_lock = queue.Queue(), None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
