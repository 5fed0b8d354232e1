"""``provenance/lineage.html``: the run's lineage as a self-contained page, written when the
run ends (issue 6).

From the ledger as committed at the run's end: the datasets the run used and their
ancestors with the transformations between them, the environment summary, evaluations,
the models the run produced, and the verification of the run (``verify`` scoped to it)
with the chain head and the newest checkpoint. The page loads nothing from anywhere
(:mod:`mlflow_provenance.exports.lineage_html`), so it can be opened from MLflow's
artifact view, an export, or a file system.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import tempfile
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
    from mlflow_provenance.verify import Scope, verify_database

    keyring = config.trusted_keyring()
    snapshot = take_snapshot(engine, keyring, run_id=run_id)
    with engine.connect() as conn:
        graph = load_graph(conn)
    report = verify_database(engine, keyring, witness=config.read_witness(config.database_identity(engine.url)),
                             scope=Scope(run_id=run_id))
    events = snapshot.events + snapshot.unsealed
    head = max((e for e in events if f'"id":"{run_id}"' in e["body"]), key=lambda e: e["seq"], default=None)
    verification = {
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "chain_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        "checkpoint": {"size": snapshot.checkpoint["size"], "root": snapshot.checkpoint["root"]},
    }
    return render(model_upstream(graph, snapshot), verification)


def write_run_lineage(store: Any, run: Any) -> None:
    """Write ``provenance/lineage.html`` for a run that just ended. Never raises: the run has
    ended and committed; the ledger keeps everything the page shows."""
    from mlflow_provenance.adapters.run_environment import _artifact_destination

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
            repository, path = _artifact_destination(run.info.artifact_uri)
            repository.log_artifacts(tmp, path)
    except Exception as exc:  # noqa: BLE001 - boundary: never fail a committed run end
        _logger.warning("mlflow-provenance: could not write %s/%s for run %s: %s",
                        ARTIFACT_PATH, ARTIFACT_NAME, run.info.run_id, exc)
