"""One of several processes writing to one database at once (concurrency test).

Run as ``python concurrent_worker.py STORE_URI PROC THREADS WRITES OUT_JSON``. Opens the
store (``provenance+…`` or a plain MLflow URI: the same load serves as the baseline),
prints ``ready`` and waits for a line on stdin, so that all processes start writing
together. Then THREADS threads each create their own run and make WRITES writes to it
(cycling log_param, log_metric, set_tag, log_batch), then end it (set_terminated).

A write that fails with MLflow's own ``MlflowException`` (e.g. SQLite's "database is
locked") is retried up to ``MAX_ATTEMPTS`` times, identically for every store; each
retry is counted and its message kept. Any other exception, or running out of attempts,
is recorded as an error. The result goes to OUT_JSON; ``done`` is printed last.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback

MAX_ATTEMPTS = 20


def main() -> None:
    uri, proc, threads, writes, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.search_runs(["0"], max_results=1)
    print("ready", flush=True)
    sys.stdin.readline()

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
            run_holder: list = []
            attempt(lambda: run_holder.append(client.create_run("0", run_name=f"c{proc}-{thread}")))
            run_id = run_holder[-1].info.run_id
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
    print("done", flush=True)


if __name__ == "__main__":
    main()
