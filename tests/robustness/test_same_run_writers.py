"""Several threads appending to the same run's chain at once keep that chain linear.

(The chain head must be read after the log head is locked: read in the same statement, it
came from a snapshot taken before the lock wait, and two writers forked the chain.)
"""

from __future__ import annotations

import threading

import pytest


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_threads_logging_to_one_run_verify_clean(backend, request, verify):
    from mlflow.entities import Metric

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    uri = request.getfixturevalue("sqlite_uri" if backend == "sqlite" else "postgres_uri")
    store = ProvenanceTrackingStore(uri)
    run_id = store.create_run("0", "alice", 0, [], "shared").info.run_id
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            start.wait()
            for step in range(15):
                store.log_metric(run_id, Metric(f"m{n}", float(step), 1000 + step, step))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    code, report = verify(uri, "--run-id", run_id)
    assert code == 0, report["findings"]
    assert report["rows"] >= 6 * 15
