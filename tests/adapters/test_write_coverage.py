"""Every write of MLflow's SQL stores is recorded in the ledger under its own name.

Two halves:

* **Static coverage** — by introspection of MLflow's tracking and registry
  ``SqlAlchemyStore``: every public write method is wrapped on our subclasses, and an
  independent read/write classification written here (not the product's) fails the
  moment MLflow grows a public method that is neither an obvious read nor wrapped.
* **Behavioural coverage** — one scripted session per backend (SQLite, PostgreSQL) calls
  each write the provenance design names, including async logging, datasets, logged
  models, the model registry and ``mlflow gc`` hard deletes (the real CLI, in a
  subprocess). For each call we read ``prov_events`` directly and require a new event
  whose ``op`` is the method's name, on the right entity's chain; ``verify`` must be clean
  after every step.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as MlflowRegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as MlflowTrackingStore

from mlflow_provenance.adapters.binding import is_write_method, public_write_methods
from mlflow_provenance.adapters.registry_store import ProvenanceRegistryStore
from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

from tests.conftest import isolated_env

from .conftest import Event, Ledger, copy_template, findings, pg_database, run_verify


PAIRS = [
    pytest.param(MlflowTrackingStore, ProvenanceTrackingStore, id="tracking"),
    pytest.param(MlflowRegistryStore, ProvenanceRegistryStore, id="registry"),
]

# --------------------------------------------------------------------------------------------
# Static coverage
# --------------------------------------------------------------------------------------------

#: This test's own notion of "only reads", independent of the product's list.
READ_PREFIXES = (
    "get_",
    "search_",
    "list_",
    "count_",
    "find_",
    "batch_get_",
    "query_",
    "calculate_",
    "resolve_",
    "supports_",
)
#: Public methods with a read-like name that write (checked below by source inspection).
WRITES_DESPITE_READ_NAME = {"get_or_create_user_queue"}
#: Public methods that touch no database at all (pure helpers); checked by source inspection.
NON_DATABASE_HELPERS = {"sanitize_metric_value"}

_SESSION_WRITE = re.compile(
    r"session\.(?:add|add_all|merge|delete|bulk_\w+)\(|\.delete\(|\.update\(|\binsert\("
)


def _public_callables(cls: type) -> dict[str, Any]:
    """Public methods of ``cls`` (functions, static and class methods; not properties or constants)."""
    found = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
            found[name] = raw
    return found


def _looks_like_read(name: str) -> bool:
    return name.startswith(READ_PREFIXES) and name not in WRITES_DESPITE_READ_NAME


def _wrapped_op(cls: type, name: str) -> str | None:
    return getattr(inspect.getattr_static(cls, name, None), "__provenance_op__", None)


@pytest.mark.parametrize(("base", "ours"), PAIRS)
def test_product_introspection_finds_writes(base: type, ours: type) -> None:
    names = public_write_methods(base)
    # Sanity: the introspection sees the well-known writes (an empty list would pass vacuously).
    must = (
        {"create_experiment", "create_run", "log_batch", "log_metric", "delete_run", "log_inputs",
         "log_outputs", "create_logged_model", "log_metric_async", "update_run_info"}
        if base is MlflowTrackingStore
        else {"create_registered_model", "create_model_version", "transition_model_version_stage",
              "set_registered_model_alias", "copy_model_version", "delete_model_version"}
    )
    assert must <= set(names), must - set(names)
    for name in names:
        assert is_write_method(name)
        assert not name.startswith("_")


@pytest.mark.parametrize(("base", "ours"), PAIRS)
def test_every_public_write_method_is_wrapped(base: type, ours: type) -> None:
    unwrapped, misnamed = [], []
    for name in public_write_methods(base):
        op = _wrapped_op(ours, name)
        if op is None:
            unwrapped.append(name)
        elif op != name:
            misnamed.append(f"{name} -> {op}")
    assert not unwrapped, f"public write methods not wrapped on {ours.__name__}: {unwrapped}"
    assert not misnamed, f"wrapped under another name: {misnamed}"


@pytest.mark.parametrize(("base", "ours"), PAIRS)
def test_independent_classification_leaves_no_write_unwrapped(base: type, ours: type) -> None:
    """Every public method of MLflow's class is a read by this test's list, or wrapped."""
    reads, writes, neither = [], [], []
    for name, raw in sorted(_public_callables(base).items()):
        if _looks_like_read(name):
            reads.append(name)
        elif name in NON_DATABASE_HELPERS:
            source = inspect.getsource(raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw)
            assert not re.search(r"session|engine|self\.[a-z]\w*\(", source), (
                f"{name} is no longer a pure helper; it must be recorded"
            )
        elif _wrapped_op(ours, name) == name:
            writes.append(name)
        else:
            neither.append(name)
    assert not neither, (
        f"{base.__module__}.{base.__name__} has public methods that are neither reads "
        f"(prefixes {READ_PREFIXES}) nor recorded by {ours.__name__}: {neither}"
    )
    assert reads and writes


@pytest.mark.parametrize(("base", "ours"), PAIRS)
def test_read_named_methods_do_not_write(base: type, ours: type) -> None:
    """A read by name that mutates a session, or calls one of the store's writes, must be wrapped."""
    suspicious = []
    publics = _public_callables(base)
    for name, raw in sorted(publics.items()):
        if not name.startswith(READ_PREFIXES):
            continue
        func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            continue
        calls_write = any(
            callee in publics and not callee.startswith(READ_PREFIXES)
            for callee in re.findall(r"self\.([a-z]\w*)\(", source)
        )
        if (calls_write or _SESSION_WRITE.search(source)) and _wrapped_op(ours, name) != name:
            suspicious.append(name)
    assert not suspicious, f"read-named methods that write but are not recorded: {suspicious}"
    # The heuristic does see the one known case (so it is not vacuous).
    if base is MlflowTrackingStore and "get_or_create_user_queue" in publics:
        assert _wrapped_op(ours, "get_or_create_user_queue") == "get_or_create_user_queue"


@pytest.mark.parametrize(("base", "ours"), PAIRS)
def test_wrappers_keep_signatures_and_docs(base: type, ours: type) -> None:
    for name in public_write_methods(base):
        original = getattr(base, name)
        wrapped = getattr(ours, name)
        assert wrapped is not original
        assert inspect.signature(wrapped) == inspect.signature(original), name
        assert wrapped.__doc__ == original.__doc__, name
        assert wrapped.__name__ == name


def test_gc_private_hard_deletes_are_wrapped() -> None:
    """``mlflow gc`` calls these private methods directly; they must carry their names."""
    for name in ("_hard_delete_run", "_hard_delete_experiment", "_hard_delete_logged_model"):
        assert hasattr(MlflowTrackingStore, name), name
        assert _wrapped_op(ProvenanceTrackingStore, name) == name


# --------------------------------------------------------------------------------------------
# Behavioural coverage: a scripted session per backend
# --------------------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time() * 1000)


@dataclass
class Ctx:
    uri: str
    root: Path
    t: Any
    r: Any
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One scripted call: ``ops`` must each appear as a new event; ``allowed`` may too."""

    id: str
    call: Callable[[Ctx], Any]
    ops: tuple[str, ...]
    entity: Callable[[Ctx], tuple[str, str]] | None = None
    allowed: tuple[str, ...] = ()
    #: alternative op names accepted in place of ops[0] (async writes land in a worker thread)
    alternatives: tuple[str, ...] = ()


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    verify_findings: list[str] = field(default_factory=list)
    verify_code: int | None = None


# --- the calls -------------------------------------------------------------------------------


def _entities():
    import mlflow.entities.model_registry
    from mlflow import entities

    return entities


def _create_experiment(c: Ctx) -> None:
    c.ids["exp"] = c.t.create_experiment("cov-exp", tags=[_entities().ExperimentTag("k0", "v0")])


def _create_run(c: Ctx, key: str = "run", exp: str = "exp") -> None:
    e = _entities()
    run = c.t.create_run(c.ids[exp], "cov-user", _now(), [e.RunTag("t0", "v0")], f"cov-{key}")
    c.ids[key] = run.info.run_id


def _log_metric_async(c: Ctx) -> None:
    e = _entities()
    c.t.log_metric_async(c.ids["run"], e.Metric("am", 1.5, _now(), 3))
    c.t.flush_async_logging()


def _log_batch_async(c: Ctx) -> None:
    e = _entities()
    ops = c.t.log_batch_async(
        c.ids["run"], [e.Metric("bm", 2.5, _now(), 4)], [e.Param("bp", "x")], [e.RunTag("bt", "y")]
    )
    ops.wait()


def _log_param_async(c: Ctx) -> None:
    c.t.log_param_async(c.ids["run"], _entities().Param("ap", "1")).wait()


def _set_tag_async(c: Ctx) -> None:
    c.t.set_tag_async(c.ids["run"], _entities().RunTag("at", "1")).wait()


def _fluent_async(c: Ctx) -> None:
    import mlflow

    mlflow.set_tracking_uri(c.uri)
    with mlflow.start_run(experiment_id=c.ids["exp"], run_name="cov-fluent") as run:
        mlflow.log_metric("fluent_async", 7.0, step=1, synchronous=False).wait()
    c.ids["fluent_run"] = run.info.run_id


def _log_inputs(c: Ctx) -> None:
    e = _entities()
    ds = e.Dataset("cov-ds", "d1g3st", "local", '{"uri": "file:///data.csv"}', '{"cols": 3}', '{"rows": 10}')
    c.t.log_inputs(c.ids["run"], datasets=[e.DatasetInput(ds, [e.InputTag("mlflow.data.context", "train")])])


def _create_logged_model(c: Ctx) -> None:
    e = _entities()
    model = c.t.create_logged_model(
        c.ids["exp"], "cov-model", c.ids["run"], tags=[e.LoggedModelTag("mt0", "v")],
        params=[e.LoggedModelParameter("mp0", "1")],
    )
    c.ids["model"] = model.model_id


def _record_logged_model(c: Ctx) -> None:
    from mlflow.models import Model

    c.t.record_logged_model(c.ids["run"], Model(artifact_path="model", run_id=c.ids["run"]))


def _copy_model_version(c: Ctx) -> None:
    c.r.create_registered_model("cov-rm-copy")
    src = c.r.get_model_version("cov-rm", c.ids["v1"])
    copied = c.r.copy_model_version(src, "cov-rm-copy")
    c.ids["copy_version"] = copied.version


def _transition(c: Ctx) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.r.transition_model_version_stage("cov-rm", c.ids["v1"], "Staging", False)


def _gc(c: Ctx) -> None:
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = c.uri
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", c.uri],
        capture_output=True, text=True, env=env, cwd=c.root, timeout=120,
    )
    c.ids["gc"] = proc
    if proc.returncode != 0:
        raise RuntimeError(f"mlflow gc exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}")


def _run(key: str = "run") -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: ("run", c.ids[key])


def _exp(key: str = "exp") -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: ("experiment", str(c.ids[key]))


def _lm(key: str = "model") -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: ("logged_model", c.ids[key])


def _rm(name: str) -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: ("registered_model", name)


def _mv(name: str, key: str) -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: ("model_version", f"{name}/{c.ids[key]}")


def _e():
    return _entities()


STEPS: list[Step] = [
    # experiments
    Step("create_experiment", _create_experiment, ("create_experiment",), _exp()),
    Step("rename_experiment", lambda c: c.t.rename_experiment(c.ids["exp"], "cov-exp-renamed"),
         ("rename_experiment",), _exp()),
    Step("set_experiment_tag", lambda c: c.t.set_experiment_tag(c.ids["exp"], _e().ExperimentTag("team", "a")),
         ("set_experiment_tag",), _exp()),
    Step("delete_experiment_tag", lambda c: c.t.delete_experiment_tag(c.ids["exp"], "team"),
         ("delete_experiment_tag",), _exp()),
    # runs and their data
    Step("create_run", _create_run, ("create_run",), _run()),
    Step("log_param", lambda c: c.t.log_param(c.ids["run"], _e().Param("p", "1")), ("log_param",), _run()),
    Step("log_metric", lambda c: c.t.log_metric(c.ids["run"], _e().Metric("m", 0.5, _now(), 0)),
         ("log_metric",), _run()),
    Step("set_tag", lambda c: c.t.set_tag(c.ids["run"], _e().RunTag("t", "v")), ("set_tag",), _run()),
    Step("delete_tag", lambda c: c.t.delete_tag(c.ids["run"], "t"), ("delete_tag",), _run()),
    Step("log_batch", lambda c: c.t.log_batch(
        c.ids["run"], [_e().Metric("m", 0.25, _now(), 1), _e().Metric("m2", 3.0, _now(), 0)],
        [_e().Param("p2", "two")], [_e().RunTag("t2", "x")]), ("log_batch",), _run()),
    # async logging: the queue's worker thread performs the write as log_batch
    Step("log_metric_async", _log_metric_async, ("log_metric_async",), _run(),
         alternatives=("log_batch",), allowed=("flush_async_logging",)),
    Step("log_batch_async", _log_batch_async, ("log_batch_async",), _run(),
         alternatives=("log_batch",), allowed=("flush_async_logging",)),
    Step("log_param_async", _log_param_async, ("log_param_async",), _run(), alternatives=("log_batch",)),
    Step("set_tag_async", _set_tag_async, ("set_tag_async",), _run(), alternatives=("log_batch",)),
    Step("fluent log_metric(synchronous=False)", _fluent_async, ("log_metric_async",), _run("fluent_run"),
         alternatives=("log_batch",), allowed=("create_run", "update_run_info", "set_tag", "log_batch")),
    Step("update_run_info", lambda c: c.t.update_run_info(
        c.ids["run"], _e().RunStatus.FINISHED, _now(), "cov-run-done"),
         ("update_run_info",), _run()),
    # datasets, logged models, outputs
    Step("log_inputs", _log_inputs, ("log_inputs",), _run()),
    Step("create_logged_model", _create_logged_model, ("create_logged_model",), _lm()),
    Step("log_logged_model_params", lambda c: c.t.log_logged_model_params(
        c.ids["model"], [_e().LoggedModelParameter("mp1", "2")]), ("log_logged_model_params",), _lm()),
    Step("set_logged_model_tags", lambda c: c.t.set_logged_model_tags(
        c.ids["model"], [_e().LoggedModelTag("mt1", "x")]), ("set_logged_model_tags",), _lm()),
    Step("delete_logged_model_tag", lambda c: c.t.delete_logged_model_tag(c.ids["model"], "mt1"),
         ("delete_logged_model_tag",), _lm()),
    Step("finalize_logged_model", lambda c: c.t.finalize_logged_model(
        c.ids["model"], _e().LoggedModelStatus.READY), ("finalize_logged_model",), _lm()),
    # an output (run -> logged model) belongs on the run's chain (entities.py says so)
    Step("log_outputs", lambda c: c.t.log_outputs(c.ids["run"], [_e().LoggedModelOutput(c.ids["model"], 5)]),
         ("log_outputs",), _run()),
    Step("record_logged_model", _record_logged_model, ("record_logged_model",), _run()),
    # registry
    Step("create_registered_model", lambda c: c.r.create_registered_model(
        "cov-rm", tags=[_e().model_registry.RegisteredModelTag("rt0", "v")], description="d0"),
         ("create_registered_model",), _rm("cov-rm")),
    Step("update_registered_model", lambda c: c.r.update_registered_model("cov-rm", "d1"),
         ("update_registered_model",), _rm("cov-rm")),
    Step("set_registered_model_tag", lambda c: c.r.set_registered_model_tag(
        "cov-rm", _e().model_registry.RegisteredModelTag("rt", "v")), ("set_registered_model_tag",),
         _rm("cov-rm")),
    Step("delete_registered_model_tag", lambda c: c.r.delete_registered_model_tag("cov-rm", "rt"),
         ("delete_registered_model_tag",), _rm("cov-rm")),
    Step("create_model_version (logged model)", lambda c: c.ids.__setitem__("v1", c.r.create_model_version(
        "cov-rm", f"models:/{c.ids['model']}", c.ids["run"], model_id=c.ids["model"]).version),
         ("create_model_version",), _mv("cov-rm", "v1")),
    Step("create_model_version (runs:/)", lambda c: c.ids.__setitem__("v2", c.r.create_model_version(
        "cov-rm", f"runs:/{c.ids['run']}/model", c.ids["run"]).version),
         ("create_model_version",), _mv("cov-rm", "v2")),
    Step("update_model_version", lambda c: c.r.update_model_version("cov-rm", c.ids["v1"], "mv-d"),
         ("update_model_version",), _mv("cov-rm", "v1")),
    Step("set_model_version_tag", lambda c: c.r.set_model_version_tag(
        "cov-rm", c.ids["v1"], _e().model_registry.ModelVersionTag("vt", "1")), ("set_model_version_tag",),
         _mv("cov-rm", "v1")),
    Step("delete_model_version_tag", lambda c: c.r.delete_model_version_tag("cov-rm", c.ids["v1"], "vt"),
         ("delete_model_version_tag",), _mv("cov-rm", "v1")),
    Step("set_registered_model_alias", lambda c: c.r.set_registered_model_alias(
        "cov-rm", "champion", c.ids["v1"]), ("set_registered_model_alias",), _rm("cov-rm")),
    Step("delete_registered_model_alias", lambda c: c.r.delete_registered_model_alias("cov-rm", "champion"),
         ("delete_registered_model_alias",), _rm("cov-rm")),
    Step("transition_model_version_stage", _transition, ("transition_model_version_stage",),
         _mv("cov-rm", "v1")),
    Step("copy_model_version", _copy_model_version, ("copy_model_version",), _mv("cov-rm-copy", "copy_version"),
         allowed=("create_registered_model",)),
    Step("delete_model_version", lambda c: c.r.delete_model_version("cov-rm", c.ids["v2"]),
         ("delete_model_version",), _mv("cov-rm", "v2")),
    Step("rename_registered_model", lambda c: c.r.rename_registered_model("cov-rm-copy", "cov-rm-copy2"),
         ("rename_registered_model",), _rm("cov-rm-copy2")),
    Step("delete_registered_model", lambda c: c.r.delete_registered_model("cov-rm-copy2"),
         ("delete_registered_model",), _rm("cov-rm-copy2")),
    # soft deletes and restores; then the objects gc hard-deletes
    Step("delete_run", lambda c: (_create_run(c, "run2"), c.t.log_metric(
        c.ids["run2"], _e().Metric("gm", 1.0, _now(), 0)), c.t.delete_run(c.ids["run2"])),
         ("delete_run",), _run("run2"), allowed=("create_run", "log_metric")),
    Step("restore_run", lambda c: c.t.restore_run(c.ids["run2"]), ("restore_run",), _run("run2")),
    Step("delete_run (again, for gc)", lambda c: c.t.delete_run(c.ids["run2"]), ("delete_run",), _run("run2")),
    Step("delete_experiment", lambda c: (
        c.ids.__setitem__("exp2", c.t.create_experiment("cov-exp2")), _create_run(c, "run3", "exp2"),
        c.t.log_param(c.ids["run3"], _e().Param("gp", "1")), c.t.delete_experiment(c.ids["exp2"])),
         ("delete_experiment",), _exp("exp2"), allowed=("create_experiment", "create_run", "log_param")),
    Step("restore_experiment", lambda c: c.t.restore_experiment(c.ids["exp2"]), ("restore_experiment",),
         _exp("exp2")),
    Step("delete_experiment (again, for gc)", lambda c: c.t.delete_experiment(c.ids["exp2"]),
         ("delete_experiment",), _exp("exp2")),
    Step("delete_logged_model", lambda c: (
        c.ids.__setitem__("model2", c.t.create_logged_model(c.ids["exp"], "cov-model2").model_id),
        c.t.delete_logged_model(c.ids["model2"])),
         ("delete_logged_model",), _lm("model2"), allowed=("create_logged_model",)),
    Step("mlflow gc", _gc, ("_hard_delete_run", "_hard_delete_experiment", "_hard_delete_logged_model"),
         None),
]
STEP_IDS = [s.id for s in STEPS]
STEPS_BY_ID = {s.id: s for s in STEPS}

#: The writes the provenance issue names; each must be behaviourally exercised above.
NAMED_WRITES = {
    "create_experiment", "rename_experiment", "delete_experiment", "restore_experiment",
    "set_experiment_tag", "delete_experiment_tag", "create_run", "update_run_info", "delete_run",
    "restore_run", "log_param", "log_metric", "set_tag", "delete_tag", "log_batch", "log_metric_async",
    "log_batch_async", "log_inputs", "log_outputs", "create_logged_model", "log_logged_model_params",
    "set_logged_model_tags", "delete_logged_model_tag", "finalize_logged_model", "delete_logged_model",
    "create_registered_model", "rename_registered_model", "update_registered_model",
    "delete_registered_model", "create_model_version", "update_model_version", "delete_model_version",
    "set_registered_model_tag", "delete_registered_model_tag", "set_model_version_tag",
    "delete_model_version_tag", "set_registered_model_alias", "delete_registered_model_alias",
    "transition_model_version_stage", "copy_model_version", "_hard_delete_run",
    "_hard_delete_experiment", "_hard_delete_logged_model",
}


@dataclass
class Scenario:
    uri: str
    ctx: Ctx
    outcomes: dict[str, Outcome]
    final_code: int
    final_report: dict[str, Any]
    tables_after_gc: dict[str, int]


#: Where the PostgreSQL scenario runs verify (about a second each there); SQLite verifies
#: after every step.
VERIFY_AFTER = {
    "delete_experiment_tag", "update_run_info", "finalize_logged_model", "record_logged_model",
    "delete_registered_model", "delete_logged_model", "mlflow gc",
}


def _run_scenario(uri: str, root: Path, verify_each: bool) -> Scenario:
    import mlflow
    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    ctx = Ctx(uri, root, tracking_store(uri), registry_store(uri))
    assert isinstance(ctx.t, ProvenanceTrackingStore) and isinstance(ctx.r, ProvenanceRegistryStore)
    ledger = Ledger(uri)
    outcomes: dict[str, Outcome] = {}
    try:
        for step in STEPS:
            before = ledger.head()
            outcome = Outcome()
            try:
                step.call(ctx)
            except Exception as exc:  # noqa: BLE001 - recorded, asserted per step
                outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.events = ledger.events(after=before)
            if verify_each or step.id in VERIFY_AFTER or outcome.error is not None:
                outcome.verify_code, report = run_verify(uri)
                outcome.verify_findings = findings(report)
            outcomes[step.id] = outcome
        final_code, final_report = run_verify(uri)
        tables = {}
        with ledger.engine.connect() as conn:
            for table, col, key in (("runs", "run_uuid", "run2"), ("runs", "run_uuid", "run3"),
                                    ("experiments", "experiment_id", "exp2"),
                                    ("logged_models", "model_id", "model2"), ("metrics", "run_uuid", "run2"),
                                    ("params", "run_uuid", "run3")):
                if key in ctx.ids:
                    tables[f"{table}:{key}"] = conn.exec_driver_sql(
                        f"SELECT COUNT(*) FROM {table} WHERE {col} = '{ctx.ids[key]}'").scalar()
    finally:
        ledger.close()
    return Scenario(uri, ctx, outcomes, final_code, final_report, tables)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(f"coverage-{request.param}")
    # Stages and aliases are moved on versions without provenance: a policy that gates
    # nothing (the promotion gate has its own tests).
    with isolated_env(root, ungated=True):
        if request.param == "sqlite":
            # MLflow's schema, no rows yet: the store writes the default experiment itself
            db = copy_template(request.getfixturevalue("sqlite_template"), root / "mlflow.db")
            yield _run_scenario(f"provenance+sqlite:///{db}", root, verify_each=True)
        else:
            # an empty database: the store migrates it and writes the default experiment
            with pg_database() as db:
                yield _run_scenario(f"provenance+{db}", root, verify_each=False)


def _describe(events: list[Event]) -> str:
    return ", ".join(f"#{e.seq} {e.op} on {e.entity_type} {e.entity_id}" for e in events) or "no events"


@pytest.mark.parametrize("step_id", STEP_IDS)
def test_write_recorded_under_its_name(scenario: Scenario, step_id: str) -> None:
    step = STEPS_BY_ID[step_id]
    outcome = scenario.outcomes[step_id]
    assert outcome.error is None, f"{step_id} failed: {outcome.error}"
    ops = [e.op for e in outcome.events]
    for i, name in enumerate(step.ops):
        accepted = {name, *step.alternatives} if i == 0 else {name}
        assert accepted & set(ops), f"{step_id}: no new event with op {sorted(accepted)}; got {_describe(outcome.events)}"
    permitted = set(step.ops) | set(step.alternatives) | set(step.allowed)
    stray = [e for e in outcome.events if e.op not in permitted]
    assert not stray, f"{step_id}: unexpected events (unnamed or misnamed writes): {_describe(stray)}"
    for event in outcome.events:
        assert event.body["op"] == event.op and event.body["seq"] == event.seq


@pytest.mark.parametrize("step_id", [s.id for s in STEPS if s.entity is not None])
def test_write_extends_its_entitys_chain(scenario: Scenario, step_id: str) -> None:
    step = STEPS_BY_ID[step_id]
    outcome = scenario.outcomes[step_id]
    if outcome.error is not None:
        pytest.fail(f"{step_id} failed: {outcome.error}")
    want = step.entity(scenario.ctx)
    names = {*step.ops, *step.alternatives}
    events = [e for e in outcome.events if e.op in names]
    assert events, f"{step_id}: no event to check"
    wrong = [e for e in events if e.entity != want]
    assert not wrong, f"{step_id}: expected on the chain of {want[0]} {want[1]}; got {_describe(wrong)}"


@pytest.mark.parametrize("step_id", STEP_IDS)
def test_verify_clean_after_each_write(scenario: Scenario, step_id: str) -> None:
    """Verify after this step (SQLite) or at the next verify point (PostgreSQL) is clean."""
    later = STEP_IDS[STEP_IDS.index(step_id):]
    checked = next(s for s in later if scenario.outcomes[s].verify_code is not None)
    outcome = scenario.outcomes[checked]
    assert outcome.verify_code == 0 and not outcome.verify_findings, (
        f"verify after {checked}: exit {outcome.verify_code}; {outcome.verify_findings}"
    )


def test_async_writes_carry_their_data(scenario: Scenario) -> None:
    """Whatever the async event is called, it holds the rows the async call wrote."""
    expect = {
        "log_metric_async": ("metrics", "key", "am"),
        "log_batch_async": ("params", "key", "bp"),
        "log_param_async": ("params", "key", "ap"),
        "set_tag_async": ("tags", "key", "at"),
        "fluent log_metric(synchronous=False)": ("metrics", "key", "fluent_async"),
    }
    for step_id, (table, column, value) in expect.items():
        rows = [
            new for e in scenario.outcomes[step_id].events for tbl, op, old, new in e.changes()
            if tbl == table and new and new.get(column) == value
        ]
        assert rows, f"{step_id}: no captured {table} row with {column}={value}"


def test_gc_hard_deleted_and_verify_clean(scenario: Scenario) -> None:
    proc = scenario.ctx.ids.get("gc")
    assert proc is not None and proc.returncode == 0, getattr(proc, "stderr", "gc did not run")
    assert all(n == 0 for n in scenario.tables_after_gc.values()), scenario.tables_after_gc
    events = scenario.outcomes["mlflow gc"].events
    ids = scenario.ctx.ids
    hard = {(e.op, e.entity) for e in events}
    assert ("_hard_delete_run", ("run", ids["run2"])) in hard, _describe(events)
    assert ("_hard_delete_experiment", ("experiment", str(ids["exp2"]))) in hard, _describe(events)
    assert ("_hard_delete_logged_model", ("logged_model", ids["model2"])) in hard, _describe(events)
    # the experiment's run went with it (hard-deleted as a run, or inside the experiment's event)
    run3_deleted = any(
        tbl == "runs" and op == "D" and old and old.get("run_uuid") == ids["run3"]
        for e in events for tbl, op, old, new in e.changes()
    )
    assert run3_deleted, "the deleted experiment's run left no delete in the ledger"
    assert scenario.final_code == 0 and scenario.final_report.get("ok"), findings(scenario.final_report)


def test_every_named_write_exercised(scenario: Scenario) -> None:
    recorded = {e.op for o in scenario.outcomes.values() for e in o.events}
    declared = {op for s in STEPS for op in s.ops}
    assert NAMED_WRITES <= declared, NAMED_WRITES - declared
    # async methods land as log_batch; every other named write shows up under its own name
    missing = NAMED_WRITES - recorded - {"log_metric_async", "log_batch_async"}
    assert not missing, f"named writes never recorded under their name: {sorted(missing)}"
    for name in NAMED_WRITES:
        cls = ProvenanceRegistryStore if hasattr(MlflowRegistryStore, name) else ProvenanceTrackingStore
        assert _wrapped_op(cls, name) == name, name


# --------------------------------------------------------------------------------------------
# A write MLflow refuses leaves nothing behind
# --------------------------------------------------------------------------------------------


def test_refused_writes_record_no_event(sqlite_uri: str, verify) -> None:
    """Each refused write rolls back with MLflow's transaction: no event, no stray change rows."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

    e = _entities()
    reg = e.model_registry
    t, r = tracking_store(sqlite_uri), registry_store(sqlite_uri)
    exp = t.create_experiment("refusals")
    run = t.create_run(exp, "u", _now(), [], "r").info.run_id
    t.log_param(run, e.Param("p", "1"))
    gone = t.create_run(exp, "u", _now(), [], "gone").info.run_id
    t.delete_run(gone)
    r.create_registered_model("rm")
    r.create_model_version("rm", "/tmp/model", run)
    unknown = "0123456789abcdef0123456789abcdef"
    refused = {
        "log_param overwrite": lambda: t.log_param(run, e.Param("p", "2")),
        "log_metric unknown run": lambda: t.log_metric(unknown, e.Metric("m", 1.0, 1, 0)),
        "log_batch over 1000 metrics": lambda: t.log_batch(run, [e.Metric("m", 1.0, 1, i) for i in range(1001)], [], []),
        "log_batch param conflict": lambda: t.log_batch(run, [e.Metric("m", 1.0, 1, 0)], [e.Param("p", "3")], []),
        "set_tag on deleted run": lambda: t.set_tag(gone, e.RunTag("t", "v")),
        "set_tag invalid key": lambda: t.set_tag(run, e.RunTag("../t", "v")),
        "create_experiment duplicate": lambda: t.create_experiment("refusals"),
        "update_run_info unknown run (terminal)": lambda: t.update_run_info(unknown, e.RunStatus.FINISHED, 1, None),
        "delete_tag missing": lambda: t.delete_tag(run, "nope"),
        "create_registered_model duplicate": lambda: r.create_registered_model("rm"),
        "set alias on unknown version": lambda: r.set_registered_model_alias("rm", "champion", "9"),
        "transition to invalid stage": lambda: r.transition_model_version_stage("rm", "1", "bogus", False),
        "delete unknown model version": lambda: r.delete_model_version("rm", "9"),
    }
    ledger = Ledger(sqlite_uri)
    try:
        recorded = []
        for label, call in refused.items():
            head = ledger.head()
            with pytest.raises(MlflowException):
                call()
            if ledger.head() != head or ledger.leftover_changes():
                recorded.append(f"{label}: {_describe(ledger.events(after=head))}")
        assert not recorded, recorded
    finally:
        ledger.close()
    code, report = verify(sqlite_uri)
    assert code == 0, findings(report)
