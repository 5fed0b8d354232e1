"""How fast does ``verify`` check a ledger? (DESIGN.md §8: hash-bound, 10^5+ events/s/core)

    python bench/bench_verify.py [--events 100000]

Builds a SQLite ledger of N log_metric-sized events (two captured rows each, as MLflow's
``log_metric`` writes: the metric and its latest value) with the real ledger writer, then
times the event pass of verification (hash, chain, Merkle tree, replay) and the full
``verify_database`` including signatures and the table comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import sqlalchemy as sa

from mlflow_provenance import ledger_schema
from mlflow_provenance.keys import Keyring, generate_signing_key
from mlflow_provenance.ledger import LedgerWriter
from mlflow_provenance.verify import verify_database


def build(path: str, events: int) -> tuple[sa.engine.Engine, Keyring]:
    engine = sa.create_engine(f"sqlite:///{path}")
    meta = ledger_schema.ensure_schema(engine)
    key = generate_signing_key()
    writer = LedgerWriter(meta["origin"], key)
    with engine.begin() as conn:
        for i in range(events):
            run = f"run{i % 100:04d}"
            metric = json.dumps({"key": "acc", "value": f"{i / events:.17g}", "timestamp": i, "step": i,
                                 "is_nan": 0, "run_uuid": run})
            payload = {"kind": "bench", "changes": [["metrics", "I", None, metric],
                                                    ["latest_metrics", "I", None, metric]]}
            writer.append(conn, entity_type="run", entity_id=run, op="log_metric", actor="bench",
                          payload=payload, checkpoint_reason="bench" if i == events - 1 else None)
    return engine, Keyring.from_signing_key(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine, keyring = build(os.path.join(tmp, "ledger.db"), args.events)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify_database(engine, keyring)
        elapsed = time.perf_counter() - t0
    assert report.ok, report.summary()
    print(f"python {sys.version.split()[0]}; {args.events} events built in {built:.1f} s")
    print(f"verify_database: {elapsed:.2f} s = {args.events / elapsed:,.0f} events/s (one core)")


if __name__ == "__main__":
    main()
