"""Property: any sequence of MLflow API calls leaves a ledger that ``verify`` accepts.

Hypothesis draws sequences of up to 25 calls through ``MlflowClient`` — experiments,
runs, params, metrics (NaN, ±inf, -0.0, subnormals, huge steps), batches, tags, run
updates, deletions and restores, registered models, versions, aliases, stages. Each
example gets fresh copies of a plain MLflow database in its own temporary directory;
one copy is driven through ``provenance+sqlite`` and the other, in lockstep, through a
plain ``sqlite:///`` store. Calls MLflow rejects (``MlflowException``) are allowed, but:

* each call must have the same outcome on both stores — success, or a rejection with
  the same error code (the provenance store must behave exactly like MLflow's);
* after the sequence, ``mlflow-provenance verify`` exits 0 with no findings.

``PROVENANCE_PROPERTY_EXAMPLES=500`` explores more sequences than the default 25.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import copy_template

# Stages and aliases here are moved on versions without provenance: gate nothing
# (the promotion gate has its own tests).
pytestmark = pytest.mark.usefixtures("ungated_policy")

KEYS = ["a", "b", "loss", "x/y", "k.1", "with space", "bad*key"]
STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
STAGES = ["None", "Staging", "Production", "Archived"]
ALIASES = ["champion", "challenger"]
BOGUS = 6  # entity index meaning "an id that does not exist"

OPS = [
    "create_experiment",
    "create_run",
    "log_param",
    "log_metric",
    "log_batch",
    "set_tag",
    "delete_tag",
    "update_run",
    "set_terminated",
    "delete_run",
    "restore_run",
    "delete_experiment",
    "restore_experiment",
    "rename_experiment",
    "set_experiment_tag",
    "create_registered_model",
    "create_model_version",
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "transition_model_version_stage",
    "delete_model_version",
    "delete_registered_model",
]

TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from(["", "x" * 6001, "ü" * 2000, '"\\\u2028\x00\x7f']),
)
FLOATS = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, -1.7976931348623157e308, 0.1]),
)
INTS = st.one_of(st.integers(-10, 1000), st.integers(-(2**63), 2**63 - 1))
#: Writes to existing runs are the bulk of real traffic: draw them more often.
WEIGHTED_OPS = OPS + ["log_param", "log_metric", "log_metric", "log_batch", "set_tag", "create_run"]
STEP = st.tuples(
    st.sampled_from(WEIGHTED_OPS),
    st.integers(0, BOGUS),  # which entity (BOGUS: a missing one)
    st.sampled_from(KEYS),
    TEXT,
    FLOATS,
    INTS,  # metric step / timestamp, and a selector for status, stage, alias
    st.booleans(),
)


#: Every sequence starts with a run, a registered model and a version of it, so that
#: the drawn steps mostly reach MLflow's write paths instead of "not found".
PROLOGUE = [
    ("create_run", 0, "a", "first", 0.0, 0, False),
    ("create_registered_model", 0, "a", "", 0.0, 0, False),
    ("create_model_version", 0, "a", "", 0.0, 0, True),
]


class Driver:
    """Applies steps to one store, tracking the ids it created."""

    def __init__(self, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.experiments: list[str] = ["0"]
        self.runs: list[str] = []
        self.models: list[str] = []
        self.versions: list[tuple[str, str]] = []
        self.tags: list[tuple[str, str]] = []  # (run, key) set by set_tag
        self.deleted_runs: list[str] = []
        self.deleted_experiments: list[str] = []
        self.n = 0

    @staticmethod
    def pick(items: list[Any], index: int, bogus: Any) -> Any:
        if index == BOGUS or not items:
            return bogus
        return items[index % len(items)]

    def call(self, step: tuple) -> Callable[[], Any]:
        from mlflow.entities import Metric, Param, RunTag

        op, index, key, text, value, number, flag = step
        self.n += 1
        c = self.client
        run = self.pick(self.runs, index, "0" * 32)
        exp = self.pick(self.experiments, index, "987654")
        model = self.pick(self.models, index, "no-such-model")
        name, version = self.pick(self.versions, index, ("no-such-model", "99"))
        selector = abs(number)
        timestamp = None if flag else number

        if op == "create_experiment":
            return lambda: self.experiments.append(c.create_experiment(f"exp-{key}"))
        if op == "create_run":
            return lambda: self.runs.append(c.create_run(exp, run_name=text[:100] or None).info.run_id)
        if op == "log_param":
            return lambda: c.log_param(run, key, text)
        if op == "log_metric":
            return lambda: c.log_metric(run, key, value, timestamp=timestamp, step=number if flag else None)
        if op == "log_batch":
            ts = number if not flag else 1_700_000_000_000
            metrics = [Metric(key, value, ts, number), Metric("other", -value, ts, 0)]
            return lambda: c.log_batch(run, metrics=metrics, params=[Param(key, text)], tags=[RunTag(key, text)])
        if op == "set_tag":
            return lambda: (c.set_tag(run, key, text), self.tags.append((run, key)))
        if op == "delete_tag":
            tag_run, tag_key = self.pick(self.tags, index, (run, key))
            return lambda: c.delete_tag(tag_run, tag_key)
        if op == "update_run":
            status = STATUSES[selector % len(STATUSES)] if flag else None
            return lambda: c.update_run(run, status=status, name=text[:100] if not flag else None)
        if op == "set_terminated":
            return lambda: c.set_terminated(run, STATUSES[selector % len(STATUSES)])
        if op == "delete_run":
            return lambda: (c.delete_run(run), self.deleted_runs.append(run))
        if op == "restore_run":
            deleted = self.pick(self.deleted_runs, index, run)
            return lambda: c.restore_run(deleted)
        if op == "delete_experiment":
            return lambda: (c.delete_experiment(exp), self.deleted_experiments.append(exp))
        if op == "restore_experiment":
            deleted = self.pick(self.deleted_experiments, index, exp)
            return lambda: c.restore_experiment(deleted)
        if op == "rename_experiment":
            return lambda: c.rename_experiment(exp, f"renamed-{key}-{self.n}")
        if op == "set_experiment_tag":
            return lambda: c.set_experiment_tag(exp, key, text)
        if op == "create_registered_model":
            return lambda: self.models.append(c.create_registered_model(f"model-{key}").name)
        if op == "create_model_version":
            run_id = run if flag else None
            return lambda: self.versions.append(
                (model, c.create_model_version(model, f"file:///tmp/src/{self.n}", run_id=run_id).version)
            )
        if op == "set_registered_model_alias":
            return lambda: c.set_registered_model_alias(name, ALIASES[selector % 2], version)
        if op == "delete_registered_model_alias":
            return lambda: c.delete_registered_model_alias(name, ALIASES[selector % 2])
        if op == "transition_model_version_stage":
            stage = STAGES[selector % len(STAGES)]
            return lambda: c.transition_model_version_stage(name, version, stage, archive_existing_versions=flag)
        if op == "delete_model_version":
            return lambda: c.delete_model_version(name, version)
        if op == "delete_registered_model":
            return lambda: c.delete_registered_model(model)
        raise AssertionError(op)


def outcome(fn: Callable[[], Any]) -> str:
    """``ok``, or the error code of MLflow's rejection; anything else propagates."""
    from mlflow.exceptions import MlflowException

    try:
        fn()
    except MlflowException as exc:
        return exc.error_code
    return "ok"


def _close_plain_engine(db_uri: str) -> None:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for cls in (TrackingStore, RegistryStore):
        engine_map = getattr(cls, "_engine_map", None)
        if isinstance(engine_map, dict):
            engine = engine_map.pop(db_uri, None)
            if engine is not None:
                engine.dispose()


def test_random_api_sequences_keep_the_ledger_verifiable(plain_template: Path, tmp_path: Path, verify, capsys) -> None:  # noqa: ANN001
    from mlflow_provenance.adapters.binding import dispose_engines

    stats: Counter[str] = Counter()

    @settings(
        max_examples=int(os.environ.get("PROVENANCE_PROPERTY_EXAMPLES", "25")),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=st.lists(STEP, min_size=5, max_size=25))
    def check(steps: list[tuple]) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="example-", dir=tmp_path))
        prov_uri = f"provenance+sqlite:///{copy_template(plain_template, workdir, 'prov.db')}"
        plain_uri = f"sqlite:///{copy_template(plain_template, workdir, 'plain.db')}"
        try:
            prov, plain = Driver(prov_uri), Driver(plain_uri)
            for i, step in enumerate(PROLOGUE + steps):
                got, want = outcome(prov.call(step)), outcome(plain.call(step))
                assert got == want, f"step {i} {step[0]}: provenance store gave {got}, plain MLflow {want}"
                stats["steps"] += 1
                stats["ok" if got == "ok" else "rejected"] += 1
                stats[f"{step[0]}:{got}"] += 1
            code, report = verify(prov_uri)
            assert code == 0 and report.get("findings") == [], (
                f"verify after {len(steps)} steps: exit {code}, findings {report.get('findings')}"
            )
            stats["examples"] += 1
            stats["events"] += report["events"]
        finally:
            dispose_engines()
            _close_plain_engine(plain_uri)
            shutil.rmtree(workdir, ignore_errors=True)

    check()
    with capsys.disabled():
        summary = {k: stats[k] for k in ("examples", "steps", "ok", "rejected", "events")}
        print(f"\n[property] {json.dumps(summary)}")
        never_ok = sorted({k.split(":")[0] for k in stats if ":" in k} - {k.split(":")[0] for k in stats if k.endswith(":ok")})
        print(f"[property] ops never accepted in this run: {never_ok}")
