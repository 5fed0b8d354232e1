"""Several processes writing to one database at once (concurrency test).

Run as ``python concurrent_worker.py STORE_URI PROCS THREADS WRITES OUT_DIR``. This
process imports MLflow once, then forks PROCS worker processes (importing MLflow in each
would take most of the test's time). Each worker opens the store itself — a
``provenance+…`` URI, or a plain MLflow URI for the baseline — and reports ``ready N``;
when every worker is ready this process prints ``ready``, waits for a line on stdin and
releases them all at once. Each worker then runs THREADS threads; each thread creates its
own run, makes WRITES writes to it (cycling log_param, log_metric, set_tag, log_batch)
and ends it (set_terminated). Worker N writes its result to ``OUT_DIR/wN.json``; this
process prints ``done`` after all workers exited, and exits non-zero if one failed.

A write that fails with MLflow's own ``MlflowException`` (e.g. SQLite's "database is
locked") is retried up to ``MAX_ATTEMPTS`` times, identically for every store; each
retry is counted and its message kept. Any other exception, or running out of attempts,
is recorded as an error.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback

MAX_ATTEMPTS = 20


def worker(uri: str, proc: int, threads: int, writes: int, out: str, ready_w: int, go_r: int) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.search_runs(["0"], max_results=1)
    os.write(ready_w, f"{proc}\n".encode())
    os.read(go_r, 1)

    lock = threading.Lock()
    result: dict = {"proc": proc, "runs": [], "retries": 0, "retry_messages": [], "errors": []}

    def attempt(fn) -> None:  # noqa: ANN001
        for i in range(MAX_ATTEMPTS):
            try:
                fn()
                return
            except MlflowException as exc:
                with lock:
                    result["retries"] += 1
                    if len(result["retry_messages"]) < 20:
                        result["retry_messages"].append(str(exc)[:300])
                if i == MAX_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    def work(thread: int) -> None:
        try:
            holder: list = []
            attempt(lambda: holder.append(client.create_run("0", run_name=f"c{proc}-{thread}")))
            run_id = holder[-1].info.run_id
            metrics = 0
            base = int(time.time() * 1000)
            for w in range(writes):
                kind = w % 4
                if kind == 0:
                    attempt(lambda: client.log_param(run_id, f"p{w}", f"{proc}-{thread}-{w}"))
                elif kind == 1:
                    attempt(lambda: client.log_metric(run_id, "m", w * 0.5, timestamp=base + w, step=w))
                    metrics += 1
                elif kind == 2:
                    attempt(lambda: client.set_tag(run_id, f"t{w}", str(w)))
                else:
                    batch = [Metric(f"b{j}", w + j / 10, base + w, w) for j in range(3)]
                    attempt(
                        lambda: client.log_batch(
                            run_id, metrics=batch, params=[Param(f"bp{w}", str(w))], tags=[RunTag(f"bt{w}", "x")]
                        )
                    )
                    metrics += len(batch)
            attempt(lambda: client.set_terminated(run_id, "FINISHED"))
            with lock:
                result["runs"].append({"run_id": run_id, "metrics": metrics, "writes": writes})
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                result["errors"].append(f"thread {thread}: {exc!r}\n{traceback.format_exc()[-2000:]}")

    started = time.monotonic()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    result["seconds"] = round(time.monotonic() - started, 2)
    with open(out, "w") as fh:
        json.dump(result, fh)


def main() -> None:
    uri, procs, threads, writes, out_dir = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    # Import everything heavy before forking; open no database here.
    import mlflow.entities  # noqa: F401
    import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import mlflow.tracking  # noqa: F401
    import mlflow_provenance.adapters.registry_store  # noqa: F401
    import mlflow_provenance.adapters.tracking_store  # noqa: F401

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    children = []
    for proc in range(procs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(ready_r)
                os.close(go_w)
                worker(uri, proc, threads, writes, os.path.join(out_dir, f"w{proc}.json"), ready_w, go_r)
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    os.close(ready_w)
    os.close(go_r)
    with os.fdopen(ready_r) as ready:
        for _ in range(procs):
            if not ready.readline():
                print("a worker died before it was ready", flush=True)
                break
        else:
            print("ready", flush=True)
            sys.stdin.readline()
            os.write(go_w, b"g" * procs)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    print("done" if not failed else f"failed {failed}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
