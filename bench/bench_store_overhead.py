#!/usr/bin/env python
"""Overhead of the provenance tracking store over MLflow's plain SQL store (DESIGN.md §8).

Two stores in one process, each on its own database of the same backend (the capture
triggers live in the database, so the plain store must not share it):

    plain        mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore
    provenance   mlflow_provenance.adapters.tracking_store.ProvenanceTrackingStore

Workloads, each timed per operation with ``time.perf_counter`` (and ``time.thread_time``):

    log_metric        one ``log_metric`` call (one metric, one transaction)
    log_batch_1k      ``log_batch`` of 1,000 metrics (50 keys x 20 steps)
    log_batch_100p    ``log_batch`` of 100 params, fresh keys every time
    create_end_run    ``create_run`` + ``update_run_info(FINISHED)`` (the end signs a checkpoint)

Runs alternate between the two stores: in every round each workload runs once on each
store, in an order drawn at random (seeded) per round and workload, so a drift in the
machine's load falls on both. Each round logs into fresh runs (untimed), so runs do not
grow across rounds. The garbage collector is off while timing (collected before each
timed block; everything alive after warm-up is frozen with ``gc.freeze()`` so that
collection is cheap) unless ``--keep-gc``.

Reported per workload: median and p90 wall time per operation for each store, the ratio
of the medians (provenance / plain, the figure held to the target), the median of the
per-round ratios (paired, more robust to load drift), and the ratio of the median CPU
time of the benchmark's thread (``time.thread_time``: the client side only, blind to I/O
waits and to the PostgreSQL server's work, but less disturbed by other processes).
Target: ratio of the medians <= 1.05 on every workload. A markdown table goes to stdout,
everything (with the raw timings) to ``bench/results/<timestamp>-<quick|full>.json``.

    python bench/bench_store_overhead.py [--backend sqlite|postgresql|both] [--rounds N] [--quick]

PostgreSQL: two fresh databases are created on ``--pg-admin-uri`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, or ``$PROVENANCE_BENCH_PG_ADMIN_URI``)
and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

TARGET_RATIO = 1.05
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_ADMIN_URI = os.environ.get(
    "PROVENANCE_BENCH_PG_ADMIN_URI", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORES = ("plain", "provenance")


@dataclass(frozen=True)
class Sizes:
    """Operations per store per round, for each workload."""

    log_metric: int
    log_batch_1k: int
    log_batch_100p: int
    create_end_run: int


FULL = Sizes(log_metric=200, log_batch_1k=5, log_batch_100p=10, create_end_run=10)
QUICK = Sizes(log_metric=25, log_batch_1k=2, log_batch_100p=3, create_end_run=3)


# --- workloads ----------------------------------------------------------------------------------


@dataclass
class StoreState:
    """One store and the runs it logs into during the current round."""

    name: str
    store: Any
    experiment_id: str = "0"
    runs: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def new_run(self, label: str) -> str:
        run = self.store.create_run(
            experiment_id=self.experiment_id,
            user_id="bench",
            start_time=_now_ms(),
            tags=[],
            run_name=f"bench-{label}",
        )
        return run.info.run_id

    def start_round(self) -> None:
        """Fresh runs for this round's logging workloads (untimed)."""
        self.runs = {label: self.new_run(label) for label in ("metric", "batch", "params")}


def _now_ms() -> int:
    return int(time.time() * 1000)


#: One timed operation: (wall seconds, CPU seconds of this thread).
Sample = tuple[float, float]


def _clock() -> Sample:
    return time.perf_counter(), time.thread_time()


def _since(start: Sample) -> Sample:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _timed(fn: Callable[[], Any]) -> Sample:
    start = _clock()
    fn()
    return _since(start)


def wl_log_metric(state: StoreState, n: int) -> dict[str, list[Sample]]:
    from mlflow.entities import Metric

    run_id, store = state.runs["metric"], state.store
    out = []
    for _ in range(n):
        step = state.next()
        metric = Metric("loss", random.random(), _now_ms(), step)
        out.append(_timed(lambda: store.log_metric(run_id, metric)))
    return {"log_metric": out}


def wl_log_batch_1k(state: StoreState, n: int) -> dict[str, list[Sample]]:
    from mlflow.entities import Metric

    run_id, store = state.runs["batch"], state.store
    out = []
    for _ in range(n):
        base = state.next() * 20
        ts = _now_ms()
        metrics = [Metric(f"m{j % 50}", random.random(), ts, base + j // 50) for j in range(1000)]
        out.append(_timed(lambda: store.log_batch(run_id, metrics=metrics, params=[], tags=[])))
    return {"log_batch_1k": out}


def wl_log_batch_100p(state: StoreState, n: int) -> dict[str, list[Sample]]:
    from mlflow.entities import Param

    run_id, store = state.runs["params"], state.store
    out = []
    for _ in range(n):
        batch = state.next()
        params = [Param(f"p{batch}_{i}", f"value-{batch}-{i}") for i in range(100)]
        out.append(_timed(lambda: store.log_batch(run_id, metrics=[], params=params, tags=[])))
    return {"log_batch_100p": out}


def wl_create_end_run(state: StoreState, n: int) -> dict[str, list[Sample]]:
    from mlflow.entities import RunStatus

    store = state.store
    creates, ends, both = [], [], []
    for _ in range(n):
        t0 = _clock()
        run = store.create_run(
            experiment_id=state.experiment_id,
            user_id="bench",
            start_time=_now_ms(),
            tags=[],
            run_name=f"bench-run-{state.next()}",
        )
        created = _since(t0)
        t1 = _clock()
        store.update_run_info(run.info.run_id, RunStatus.FINISHED, _now_ms(), None)
        ended = _since(t1)
        creates.append(created)
        ends.append(ended)
        both.append((created[0] + ended[0], created[1] + ended[1]))
    return {"create_end_run": both, "create_run": creates, "end_run": ends}


WORKLOADS: dict[str, Callable[[StoreState, int], dict[str, list[Sample]]]] = {
    "log_metric": wl_log_metric,
    "log_batch_1k": wl_log_batch_1k,
    "log_batch_100p": wl_log_batch_100p,
    "create_end_run": wl_create_end_run,
}
#: Rows of the report, in order; the indented ones are parts of create_end_run.
SERIES = ("log_metric", "log_batch_1k", "log_batch_100p", "create_end_run", "create_run", "end_run")
TARGETED = ("log_metric", "log_batch_1k", "log_batch_100p", "create_end_run")


@contextlib.contextmanager
def gc_paused(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- backends -----------------------------------------------------------------------------------


class SqliteBackend:
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def uris(self) -> tuple[str, str]:
        return f"sqlite:///{self.workdir}/plain.db", f"provenance+sqlite:///{self.workdir}/prov.db"

    def server_version(self) -> str:
        return sqlite3.sqlite_version

    def teardown(self, plain_uri: str) -> None:
        _dispose(plain_uri)


class PostgresBackend:
    name = "postgresql"

    def __init__(self, admin_uri: str) -> None:
        import sqlalchemy as sa

        self.admin_uri = admin_uri
        self.admin = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
        tag = uuid.uuid4().hex[:10]
        self.dbs = (f"prov_bench_plain_{tag}", f"prov_bench_prov_{tag}")
        with self.admin.connect() as conn:
            for db in self.dbs:
                conn.exec_driver_sql(f'CREATE DATABASE "{db}"')

    def _db_uri(self, db: str) -> str:
        base, _, _ = self.admin_uri.rpartition("/")
        return f"{base}/{db}"

    def uris(self) -> tuple[str, str]:
        return self._db_uri(self.dbs[0]), "provenance+" + self._db_uri(self.dbs[1])

    def server_version(self) -> str:
        with self.admin.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        driver = self.admin.dialect.driver
        module = sys.modules.get(driver)
        driver_version = str(getattr(module, "__version__", "?")).split()[0]
        return f"{version}; driver {driver} {driver_version}"

    def teardown(self, plain_uri: str) -> None:
        _dispose(plain_uri)
        with self.admin.connect() as conn:
            for db in self.dbs:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (db,),
                )
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}"')
        self.admin.dispose()


def _dispose(plain_uri: str) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from mlflow_provenance.adapters.binding import dispose_engines

    engine = SqlAlchemyStore._engine_map.pop(plain_uri, None)
    if engine is not None:
        engine.dispose()
    dispose_engines()


# --- running ------------------------------------------------------------------------------------


def open_stores(plain_uri: str, prov_uri: str, artifacts: Path) -> dict[str, StoreState]:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    plain = SqlAlchemyStore(plain_uri, (artifacts / "plain").as_uri())
    prov = ProvenanceTrackingStore(prov_uri, (artifacts / "prov").as_uri())
    return {"plain": StoreState("plain", plain), "provenance": StoreState("provenance", prov)}


def warm_up(states: dict[str, StoreState], sizes: Sizes) -> None:
    for state in states.values():
        state.start_round()
        for name, fn in WORKLOADS.items():
            fn(state, max(2, getattr(sizes, name) // 5))


def bench_backend(backend: Any, args: argparse.Namespace, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    plain_uri, prov_uri = backend.uris()
    try:
        t_setup = time.perf_counter()
        states = open_stores(plain_uri, prov_uri, workdir / "artifacts")
        setup_s = time.perf_counter() - t_setup
    except BaseException:
        backend.teardown(plain_uri)  # drop the PostgreSQL databases even so
        raise
    rng = random.Random(args.seed)
    # series -> store -> one list of samples per round
    raw: dict[str, dict[str, list[list[Sample]]]] = {
        s: {store: [] for store in STORES} for s in SERIES
    }
    orders: list[dict[str, list[str]]] = []
    try:
        warm_up(states, sizes)
        if not args.keep_gc:
            # Move everything alive now (MLflow, SQLAlchemy, the stores) out of the
            # collector's reach, so the collect before each timed block stays cheap.
            gc.collect()
            gc.freeze()
        t_start = time.perf_counter()
        for rnd in range(args.rounds):
            for state in states.values():
                state.start_round()
            round_orders = {}
            for name, fn in WORKLOADS.items():
                order = list(STORES)
                rng.shuffle(order)
                round_orders[name] = order
                for store in order:
                    with gc_paused(not args.keep_gc):
                        timings = fn(states[store], getattr(sizes, name))
                    for series, values in timings.items():
                        raw[series][store].append(values)
            orders.append(round_orders)
            if args.verbose:
                print(f"  {backend.name}: round {rnd + 1}/{args.rounds} done", file=sys.stderr)
        timed_s = time.perf_counter() - t_start
        version = backend.server_version()
    finally:
        gc.unfreeze()
        states.clear()
        backend.teardown(plain_uri)
    return {
        "backend": backend.name,
        "server_version": version,
        "setup_s": round(setup_s, 3),
        "timed_s": round(timed_s, 3),
        "summary": {s: summarize(raw[s]) for s in SERIES},
        "orders": orders,
        # series -> store -> rounds -> [wall, cpu] seconds per operation
        "raw_seconds": {
            s: {
                store: [[[round(w, 7), round(c, 7)] for w, c in r] for r in rounds]
                for store, rounds in per.items()
            }
            for s, per in raw.items()
        },
    }


# --- statistics and report ----------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(per_store: dict[str, list[list[Sample]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for store, rounds in per_store.items():
        wall = [w for r in rounds for w, _ in r]
        cpu = [c for r in rounds for _, c in r]
        out[store] = {
            "n": len(wall),
            "median_ms": statistics.median(wall) * 1e3,
            "p90_ms": _quantile(wall, 0.9) * 1e3,
            "mean_ms": statistics.fmean(wall) * 1e3,
            "min_ms": min(wall) * 1e3,
            "cpu_median_ms": statistics.median(cpu) * 1e3,
        }
    out["ratio_median"] = out["provenance"]["median_ms"] / out["plain"]["median_ms"]
    out["ratio_p90"] = out["provenance"]["p90_ms"] / out["plain"]["p90_ms"]
    out["ratio_cpu_median"] = out["provenance"]["cpu_median_ms"] / out["plain"]["cpu_median_ms"]
    paired = [
        statistics.median(w for w, _ in p) / statistics.median(w for w, _ in q)
        for p, q in zip(per_store["provenance"], per_store["plain"])
    ]
    out["ratio_paired_rounds"] = statistics.median(paired)
    out["ratio_paired_rounds_min_max"] = [min(paired), max(paired)]
    return out


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"**{result['backend']}** ({result['server_version']})",
        "",
        "| workload | plain median ms | plain p90 ms | prov median ms | prov p90 ms "
        "| ratio (medians) | ratio (paired rounds) | client CPU ratio | ≤ 1.05 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for series in SERIES:
        s = result["summary"][series]
        label = series if series in TARGETED else f"&nbsp;&nbsp;↳ {series}"
        ok = ("yes" if s["ratio_median"] <= TARGET_RATIO else "**no**") if series in TARGETED else ""
        lines.append(
            f"| {label} | {s['plain']['median_ms']:.3f} | {s['plain']['p90_ms']:.3f} "
            f"| {s['provenance']['median_ms']:.3f} | {s['provenance']['p90_ms']:.3f} "
            f"| {s['ratio_median']:.3f} | {s['ratio_paired_rounds']:.3f} "
            f"| {s['ratio_cpu_median']:.3f} | {ok} |"
        )
    lines.append("")
    lines.append(
        "n per store: " + ", ".join(
            f"{series}={result['summary'][series]['plain']['n']}" for series in TARGETED
        )
        + f"; setup {result['setup_s']:.1f} s, timed {result['timed_s']:.1f} s"
    )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    import mlflow
    import sqlalchemy

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
    with contextlib.suppress(OSError):
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 20, quick 3)")
    parser.add_argument("--quick", action="store_true", help="few rounds and small blocks: a smoke check")
    parser.add_argument("--seed", type=int, default=8, help="seed of the per-round store order")
    parser.add_argument("--keep-gc", action="store_true", help="leave the garbage collector on while timing")
    parser.add_argument("--pg-admin-uri", default=DEFAULT_PG_ADMIN_URI)
    parser.add_argument("--tmpdir", default=None, help="where the SQLite files and key go")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 20
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="prov-bench-", dir=args.tmpdir))
    # Embedded mode with a throwaway key and witness, whatever the caller's environment says.
    os.environ["MLFLOW_PROVENANCE_HOME"] = str(workdir / "home")
    for name in ("MLFLOW_PROVENANCE_KEY", "MLFLOW_PROVENANCE_MODE"):
        os.environ.pop(name, None)
    info = machine_info()  # imports mlflow, which configures its own loggers
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)

    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(
        f"machine: {info['cpu_count']} CPUs ({info['cpu']}), {info['platform']}; python "
        f"{info['python']}, mlflow {info['mlflow']}, sqlalchemy {info['sqlalchemy']}, "
        f"sqlite {info['sqlite']}; loadavg {info.get('loadavg_start')}"
    )
    print(
        f"config: rounds={args.rounds}, per round per store {sizes}, gc "
        f"{'on' if args.keep_gc else 'off while timing'}, seed={args.seed}, workdir={workdir}\n"
    )
    results = []
    try:
        for name in backends:
            backend = (
                SqliteBackend(workdir) if name == "sqlite" else PostgresBackend(args.pg_admin_uri)
            )
            result = bench_backend(backend, args, sizes, workdir)
            results.append(result)
            print(markdown_table(result) + "\n", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(OSError):
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if "postgresql" in backends:
        info["postgresql"] = next(r["server_version"] for r in results if r["backend"] == "postgresql")
    print(f"loadavg start {info.get('loadavg_start')} end {info.get('loadavg_end')}")
    failing = [
        f"{r['backend']}/{s}"
        for r in results
        for s in TARGETED
        if r["summary"][s]["ratio_median"] > TARGET_RATIO
    ]
    print(f"over the {TARGET_RATIO:.2f} target: {', '.join(failing) or 'none'}")
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        path = RESULTS_DIR / f"{stamp}-{'quick' if args.quick else 'full'}.json"
        document = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "config": {
                "rounds": args.rounds,
                "sizes": sizes.__dict__,
                "quick": args.quick,
                "gc_disabled_while_timing": not args.keep_gc,
                "seed": args.seed,
                "target_ratio": TARGET_RATIO,
            },
            "results": results,
        }
        path.write_text(json.dumps(document, indent=1))
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
