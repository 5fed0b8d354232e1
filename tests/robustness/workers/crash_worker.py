"""Fork server for the crash-atomicity test.

Run as ``python crash_worker.py STORE_URI``. Importing MLflow and opening the store takes
seconds, so this process does it once (creating the ledger on first use), closes its
database connections, prints ``ready`` and then waits for commands on stdin:

``fork SEED``  fork a child that logs through the provenance store in an endless loop
               (seeded mix of create_run, log_metric, log_param, set_tag, log_batch,
               update_run, set_terminated), printing before each call
               ``try PID <json>`` and, after the call returned, ``ack PID <json>``.
               This process prints ``child PID`` first and ``exit PID STATUS`` once the
               child is gone (the test kills it with SIGKILL), so every line the child
               wrote precedes its ``exit`` line on stdout.

``fork SEED URI``  with ``--open-in-child``: the child opens the store at URI itself
               (so a kill may land while the ledger is being created), then logs as
               above. The server then opens no database at all.

EOF on stdin ends the server. Every line is flushed at once.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def dispose_all() -> None:
    from mlflow_provenance.adapters.binding import ENGINES, ENGINES_LOCK

    with ENGINES_LOCK:
        for engine in ENGINES.values():
            engine.dispose()


def child_loop(client, experiment_id: str, seed: int) -> None:  # noqa: ANN001
    from mlflow.entities import Metric, Param, RunTag

    # The parent closed its connections before forking; make sure none is reused.
    from mlflow_provenance.adapters.binding import ENGINES

    for engine in ENGINES.values():
        engine.dispose(close=False)

    rng = random.Random(seed)
    pid = os.getpid()
    n = 0

    def call(op: dict, fn) -> object:  # noqa: ANN001
        say(f"try {pid} " + json.dumps(op))
        result = fn()
        say(f"ack {pid} " + json.dumps(op))
        return result

    def new_run() -> str:
        run = client.create_run(experiment_id, run_name=f"crash-{pid}")
        say(f"ack {pid} " + json.dumps({"op": "create_run", "run": run.info.run_id}))
        return run.info.run_id

    run_id = new_run()
    while True:
        n += 1
        now = int(time.time() * 1000)
        choice = rng.random()
        if choice < 0.30:
            op = {"op": "log_metric", "run": run_id, "key": "m", "value": rng.random(), "step": n, "ts": now}
            call(op, lambda: client.log_metric(run_id, "m", op["value"], timestamp=now, step=n))
        elif choice < 0.48:
            op = {"op": "log_param", "run": run_id, "key": f"p{n}", "value": f"v{rng.randrange(10**6)}"}
            call(op, lambda: client.log_param(run_id, op["key"], op["value"]))
        elif choice < 0.63:
            op = {"op": "set_tag", "run": run_id, "key": f"t{n}", "value": f"x{rng.randrange(10**6)}"}
            call(op, lambda: client.set_tag(run_id, op["key"], op["value"]))
        elif choice < 0.83:
            k = rng.randint(1, 4)
            op = {
                "op": "log_batch",
                "run": run_id,
                "metrics": [[f"b{j}", rng.random(), now, n] for j in range(k)],
                "params": [[f"bp{n}_{j}", str(rng.random())] for j in range(rng.randint(0, 2))],
                "tags": [[f"bt{n}_{j}", str(rng.random())] for j in range(rng.randint(0, 2))],
            }
            call(
                op,
                lambda: client.log_batch(
                    run_id,
                    metrics=[Metric(k_, v, t, s) for k_, v, t, s in op["metrics"]],
                    params=[Param(k_, v) for k_, v in op["params"]],
                    tags=[RunTag(k_, v) for k_, v in op["tags"]],
                ),
            )
        elif choice < 0.93:
            op = {"op": "update_run", "run": run_id, "name": f"name-{pid}-{n}"}
            call(op, lambda: client.update_run(run_id, name=op["name"]))
        else:
            op = {"op": "set_terminated", "run": run_id, "status": "FINISHED"}
            call(op, lambda: client.set_terminated(run_id, "FINISHED"))
            run_id = new_run()


def open_store(uri: str):  # noqa: ANN201
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("crash")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("crash")
    client.search_runs([experiment_id], max_results=1)  # warm up lazy imports
    return client, experiment_id


def main() -> None:
    uri = sys.argv[1]
    open_in_child = "--open-in-child" in sys.argv[2:]
    if open_in_child:
        import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import mlflow.tracking  # noqa: F401
        import mlflow_provenance.adapters.registry_store  # noqa: F401
        import mlflow_provenance.adapters.tracking_store  # noqa: F401

        client = experiment_id = None
    else:
        client, experiment_id = open_store(uri)
        dispose_all()
    say(f"ready {experiment_id}")
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "fork":
            continue
        seed = int(parts[1])
        pid = os.fork()
        if pid == 0:  # child
            try:
                if open_in_child:
                    client, experiment_id = open_store(parts[2] if len(parts) > 2 else uri)
                child_loop(client, experiment_id, seed)
            except BaseException as exc:  # noqa: BLE001 - report, never return into the server loop
                say(f"error {os.getpid()} " + json.dumps({"error": repr(exc)}))
            finally:
                os._exit(3)
        say(f"child {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"exit {pid} {status}")


if __name__ == "__main__":
    main()
