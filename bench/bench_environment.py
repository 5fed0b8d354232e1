#!/usr/bin/env python
"""Cost of the environment manifest (issue 3, DESIGN.md §8).

Targets: the first run of a process captures its manifest in at most 1 s; later runs in
at most 100 ms (the probes of what cannot change within a process are cached).

Measured:

    first_capture    ``capture_environment()`` in a fresh interpreter (``--processes`` of
                     them, each a new ``python`` started from this script's directory — a
                     git work tree — so the git probe runs too); the import of
                     ``mlflow_provenance.environment`` is not counted, the probes all are
    later_capture    the following ``--captures`` captures in one process
    create_run       ``MlflowClient.create_run`` + ``set_terminated`` on ``sqlite:///`` (plain
                     MLflow) and on ``provenance+sqlite:///`` (ledger + manifest + artifact),
                     alternating, same process; the ratio of medians is reported beside
                     the issue-2 overhead figures, which do not include the manifest

Also printed: the manifest's size, and how big the transport to a server is.

    python bench/bench_environment.py [--processes 7] [--captures 50] [--runs 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

_FIRST = """
import json, time
from mlflow_provenance.environment import capture_environment
t = time.perf_counter()
m = capture_environment()
first = time.perf_counter() - t
later = []
for _ in range({captures}):
    t = time.perf_counter()
    capture_environment()
    later.append(time.perf_counter() - t)
print(json.dumps({{"first": first, "later": later, "size": len(m.content), "status": m.status,
                   "errors": m.errors, "cached_after": capture_environment().document["capture"]["cached"]}}))
"""


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms (p90 {sorted(values)[int(len(values) * 0.9) - 1] * 1000:.1f})"


def bench_capture(processes: int, captures: int) -> dict:
    firsts, laters, info = [], [], {}
    for _ in range(processes):
        out = subprocess.run([sys.executable, "-c", _FIRST.format(captures=captures)], cwd=HERE,
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        firsts.append(result["first"])
        laters.extend(result["later"])
        info = result
    return {"first": firsts, "later": laters, "size": info["size"], "status": info["status"],
            "errors": info["errors"], "cached_after": info["cached_after"]}


def bench_create_run(runs: int) -> dict:
    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-env-"))
    os.environ.setdefault("MLFLOW_PROVENANCE_HOME", str(tmp / "home"))
    stores = {
        "plain": SqlAlchemyStore(f"sqlite:///{tmp}/plain.db", str(tmp / "plain-artifacts")),
        "provenance": ProvenanceTrackingStore(f"provenance+sqlite:///{tmp}/prov.db", str(tmp / "prov-artifacts")),
    }
    times: dict[str, list[float]] = {name: [] for name in stores}
    for round_ in range(runs + 3):
        for name in (("plain", "provenance") if round_ % 2 else ("provenance", "plain")):
            store = stores[name]
            t = time.perf_counter()
            run = store.create_run("0", "bench", int(time.time() * 1000), [], f"r{round_}")
            store.update_run_info(run.info.run_id, mlflow.entities.RunStatus.FINISHED, int(time.time() * 1000), None)
            if round_ >= 3:  # warm-up rounds not counted
                times[name].append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=7)
    parser.add_argument("--captures", type=int, default=50)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    capture = bench_capture(args.processes, args.captures)
    runs = bench_create_run(args.runs)
    ratio = statistics.median(runs["provenance"]) / statistics.median(runs["plain"])
    from mlflow_provenance.environment import capture_environment
    from mlflow_provenance.environment.manifest import transport_tags

    manifest = capture_environment()
    transport = sum(len(v) for v in transport_tags(manifest).values())
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(f"| first capture in a process (median of {args.processes} processes) | {_ms(capture['first'])} | ≤ 1 s |")
    print(f"| later captures (median of {len(capture['later'])}) | {_ms(capture['later'])} | ≤ 100 ms |")
    print(f"| create_run + end, plain MLflow sqlite | {_ms(runs['plain'])} | |")
    print(f"| create_run + end, provenance+sqlite (ledger, manifest, artifact) | {_ms(runs['provenance'])} | |")
    print(f"| ratio provenance / plain (create_run + end) | {ratio:.2f} | |")
    print(f"| manifest size | {capture['size']:,} bytes; transport {transport:,} chars in "
          f"{len(transport_tags(manifest)) - 1} tags | |")
    print(f"\nstatus {capture['status']}, errors {capture['errors']}, cached after first: {capture['cached_after']}")


if __name__ == "__main__":
    main()
