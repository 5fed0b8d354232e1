"""The provenance stores behave exactly like MLflow's own SQL stores.

The same scripted sequence of calls — valid and invalid — runs against MLflow's plain
``SqlAlchemyStore`` (tracking + registry) on one database and against the provenance
stores on another, starting from identical databases. Return values are compared after
normalising what is naturally random (run/model/dataset ids → placeholders in order of
first appearance; wall-clock timestamps → ``<ts>``); exceptions by type, ``error_code``
and message. Then the fluent API (``mlflow.start_run``/``log_*``/``search_runs``) through
``provenance+sqlite:///…`` must give the same data as through ``sqlite:///…``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as MlflowRegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as MlflowTrackingStore

from .conftest import Ledger, copy_template, findings, pg_database, run_verify

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"

# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_ID = re.compile(r"\b(?:m-|d-|tr-)?[0-9a-f]{32}\b")
_TIME_KEY = re.compile(r"(?:^|_)(?:time|timestamp)(?:_ms)?$|^(?:start|end|creation|last_update)_?time")
#: metric timestamps are set explicitly by the script; the rest are wall-clock times
_KEEP_TIME_KEYS = {"timestamp"}


_EPOCH_MS = re.compile(r"\b1[5-9][0-9]{11}\b")


class IdMap:
    """Random ids → ``<id1>``, ``<id2>``… in order of first appearance; epoch-ms times in
    text (SQL parameters quoted in error messages) → ``<ts>``."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def sub(self, text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            return self.seen.setdefault(m.group(0), f"<id{len(self.seen) + 1}>")

        return _EPOCH_MS.sub("<ts>", _ID.sub(repl, text))


def _plain(value: Any) -> Any:
    """Entities and containers → JSON-like data."""
    from google.protobuf.json_format import MessageToDict

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        token = getattr(value, "token", None)
        return {"items": items, "token": token} if token is not None or hasattr(value, "token") else items
    if hasattr(value, "to_proto"):
        try:
            return {"__type__": type(value).__name__,
                    **MessageToDict(value.to_proto(), preserving_proto_field_name=True)}
        except Exception:  # noqa: BLE001 - fall through to attributes
            pass
    if hasattr(value, "__dict__"):
        return {"__type__": type(value).__name__,
                **{k: _plain(v) for k, v in vars(value).items() if not k.startswith("__")}}
    return repr(value)


def _is_provenance_tag(value: Any) -> bool:
    """A tag the provenance store adds at ``create_run`` (the environment manifest's digest
    and summary, issue 3): the one documented difference in what a run carries."""
    return isinstance(value, dict) and str(value.get("key", "")).startswith("provenance.env.")


def _normalise(value: Any, ids: IdMap) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key not in _KEEP_TIME_KEYS and _TIME_KEY.search(key) and item not in (None, 0, "0", ""):
                out[key] = "<ts>"
            else:
                out[key] = _normalise(item, ids)
        return out
    if isinstance(value, list):
        return [_normalise(v, ids) for v in value if not _is_provenance_tag(v)]
    if isinstance(value, str):
        return ids.sub(value)
    return value


def outcome(fn: Callable[[], Any], ids: IdMap) -> tuple[str, Any]:
    """('ok', normalised value) or ('raise', type, error_code, normalised message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = fn()
    except Exception as exc:  # noqa: BLE001 - compared between stores
        return ("raise", f"{type(exc).__module__}.{type(exc).__name__}",
                getattr(exc, "error_code", None), ids.sub(str(getattr(exc, "message", exc))))
    return ("ok", _normalise(_plain(value), ids))


# --------------------------------------------------------------------------------------------
# The script
# --------------------------------------------------------------------------------------------


@dataclass
class S:
    """One side: a tracking store, a registry store, ids made along the way."""

    t: Any
    r: Any
    ids: dict[str, Any] = field(default_factory=dict)


def _ent():
    import mlflow.entities.model_registry
    from mlflow import entities

    return entities


def _set(s: S, key: str, value: Any) -> Any:
    s.ids[key] = value
    return value


def script() -> list[tuple[str, Callable[[S], Any]]]:
    e = _ent()
    reg = e.model_registry
    M, P, T = e.Metric, e.Param, e.RunTag
    long = "x" * 6001
    steps: list[tuple[str, Callable[[S], Any]]] = [
        # experiments
        ("create_experiment", lambda s: _set(s, "exp", s.t.create_experiment("exp-a", tags=[e.ExperimentTag("k", "v")]))),
        ("create_experiment duplicate name", lambda s: s.t.create_experiment("exp-a")),
        ("create_experiment empty name", lambda s: s.t.create_experiment("")),
        ("create_experiment name not str", lambda s: s.t.create_experiment(None)),
        ("get_experiment", lambda s: s.t.get_experiment(s.ids["exp"])),
        ("get_experiment_by_name", lambda s: s.t.get_experiment_by_name("exp-a")),
        ("get_experiment_by_name unknown", lambda s: s.t.get_experiment_by_name("nope")),
        ("get_experiment unknown", lambda s: s.t.get_experiment("424242")),
        ("rename_experiment", lambda s: s.t.rename_experiment(s.ids["exp"], "exp-b")),
        ("rename_experiment to existing", lambda s: s.t.rename_experiment(s.ids["exp"], "Default")),
        ("rename_experiment unknown", lambda s: s.t.rename_experiment("424242", "zz")),
        ("set_experiment_tag", lambda s: s.t.set_experiment_tag(s.ids["exp"], e.ExperimentTag("k2", "v2"))),
        ("set_experiment_tag unknown experiment", lambda s: s.t.set_experiment_tag("424242", e.ExperimentTag("k", "v"))),
        ("delete_experiment_tag", lambda s: s.t.delete_experiment_tag(s.ids["exp"], "k2")),
        ("delete_experiment_tag missing", lambda s: s.t.delete_experiment_tag(s.ids["exp"], "k2")),
        ("get_experiment after tags", lambda s: s.t.get_experiment(s.ids["exp"])),
        # runs
        ("create_run", lambda s: _set(s, "run", s.t.create_run(s.ids["exp"], "user", 1000, [T("a", "b")], "run-a"))),
        ("create_run unknown experiment", lambda s: s.t.create_run("424242", "user", 1000, [], "r")),
        ("log_param", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("p", "1"))),
        ("log_param same value again", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("p", "1"))),
        ("log_param overwrite different value", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("p", "2"))),
        ("log_param value at limit (6000)", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("p6000", "y" * 6000))),
        ("log_param value over limit (6001)", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("plong", long))),
        ("log_param key too long", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("k" * 251, "1"))),
        ("log_param key invalid", lambda s: s.t.log_param(s.ids["run"].info.run_id, P("../bad", "1"))),
        ("log_param unknown run", lambda s: s.t.log_param(UNKNOWN_RUN, P("p", "1"))),
        ("log_metric", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("m", 0.5, 1111, 0))),
        ("log_metric step 1", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("m", 0.25, 1112, 1))),
        ("log_metric NaN", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("nan", float("nan"), 1113, 0))),
        ("log_metric +inf", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("inf", float("inf"), 1114, 0))),
        ("log_metric -inf", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("ninf", float("-inf"), 1115, 0))),
        ("log_metric key too long", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("k" * 251, 1.0, 1, 0))),
        ("log_metric key invalid", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("/abs", 1.0, 1, 0))),
        ("log_metric value not a number", lambda s: s.t.log_metric(s.ids["run"].info.run_id, M("m", "abc", 1, 0))),
        ("log_metric unknown run", lambda s: s.t.log_metric(UNKNOWN_RUN, M("m", 1.0, 1, 0))),
        ("set_tag", lambda s: s.t.set_tag(s.ids["run"].info.run_id, T("t", "v"))),
        ("set_tag key invalid", lambda s: s.t.set_tag(s.ids["run"].info.run_id, T("../t", "v"))),
        ("set_tag key too long", lambda s: s.t.set_tag(s.ids["run"].info.run_id, T("k" * 251, "v"))),
        ("set_tag value 9000 chars", lambda s: s.t.set_tag(s.ids["run"].info.run_id, T("big", "z" * 9000))),
        ("set_tag unknown run", lambda s: s.t.set_tag(UNKNOWN_RUN, T("t", "v"))),
        ("delete_tag", lambda s: s.t.delete_tag(s.ids["run"].info.run_id, "t")),
        ("delete_tag missing", lambda s: s.t.delete_tag(s.ids["run"].info.run_id, "t")),
        ("log_batch", lambda s: s.t.log_batch(
            s.ids["run"].info.run_id, [M("b1", 1.0, 2000, 0), M("b1", 2.0, 2001, 1), M("b2", -1.5, 2002, 0)],
            [P("bp1", "x"), P("bp2", "y")], [T("bt1", "u"), T("bt2", "w")])),
        ("log_batch empty", lambda s: s.t.log_batch(s.ids["run"].info.run_id, [], [], [])),
        ("log_batch over 1000 metrics", lambda s: s.t.log_batch(
            s.ids["run"].info.run_id, [M("many", float(i), 3000, i) for i in range(1001)], [], [])),
        ("log_batch over 100 params", lambda s: s.t.log_batch(
            s.ids["run"].info.run_id, [], [P(f"pp{i}", "1") for i in range(101)], [])),
        ("log_batch over 100 tags", lambda s: s.t.log_batch(
            s.ids["run"].info.run_id, [], [], [T(f"tt{i}", "1") for i in range(101)])),
        ("log_batch param conflict with logged", lambda s: s.t.log_batch(s.ids["run"].info.run_id, [], [P("p", "3")], [])),
        ("log_batch duplicate params differing", lambda s: s.t.log_batch(
            s.ids["run"].info.run_id, [], [P("dup", "1"), P("dup", "2")], [])),
        ("log_batch param value over limit", lambda s: s.t.log_batch(s.ids["run"].info.run_id, [], [P("bl", long)], [])),
        ("log_batch metric key too long", lambda s: s.t.log_batch(s.ids["run"].info.run_id, [M("k" * 251, 1.0, 1, 0)], [], [])),
        ("log_batch unknown run", lambda s: s.t.log_batch(UNKNOWN_RUN, [M("m", 1.0, 1, 0)], [], [])),
        ("log_metric_async + flush", lambda s: (s.t.log_metric_async(s.ids["run"].info.run_id, M("am", 9.0, 4000, 0)).wait(),
                                                s.t.flush_async_logging())[1]),
        ("get_run", lambda s: s.t.get_run(s.ids["run"].info.run_id)),
        ("get_run unknown", lambda s: s.t.get_run(UNKNOWN_RUN)),
        ("get_metric_history", lambda s: s.t.get_metric_history(s.ids["run"].info.run_id, "m")),
        ("get_metric_history batch", lambda s: s.t.get_metric_history(s.ids["run"].info.run_id, "b1")),
        ("get_metric_history async", lambda s: s.t.get_metric_history(s.ids["run"].info.run_id, "am")),
        ("search_runs", lambda s: s.t.search_runs([s.ids["exp"]], "", e.ViewType.ALL)),
        ("search_runs filter", lambda s: s.t.search_runs([s.ids["exp"]], "params.p = '1' and metrics.m < 1", e.ViewType.ALL)),
        ("search_runs bad filter", lambda s: s.t.search_runs([s.ids["exp"]], "params.p === 1", e.ViewType.ALL)),
        ("update_run_info", lambda s: s.t.update_run_info(s.ids["run"].info.run_id, e.RunStatus.FINISHED, 5000, "run-a2")),
        ("update_run_info unknown", lambda s: s.t.update_run_info(UNKNOWN_RUN, e.RunStatus.FINISHED, 5000, None)),
        # deleted runs
        ("create_run 2", lambda s: _set(s, "run2", s.t.create_run(s.ids["exp"], "user", 1000, [], "run-b").info.run_id)),
        ("delete_run", lambda s: s.t.delete_run(s.ids["run2"])),
        ("log_param to deleted run", lambda s: s.t.log_param(s.ids["run2"], P("p", "1"))),
        ("log_metric to deleted run", lambda s: s.t.log_metric(s.ids["run2"], M("m", 1.0, 1, 0))),
        ("set_tag on deleted run", lambda s: s.t.set_tag(s.ids["run2"], T("t", "v"))),
        ("log_batch to deleted run", lambda s: s.t.log_batch(s.ids["run2"], [], [P("p", "1")], [])),
        ("get_run deleted", lambda s: s.t.get_run(s.ids["run2"])),
        ("search_runs active only", lambda s: s.t.search_runs([s.ids["exp"]], "", e.ViewType.ACTIVE_ONLY)),
        ("restore_run", lambda s: s.t.restore_run(s.ids["run2"])),
        ("delete_run unknown", lambda s: s.t.delete_run(UNKNOWN_RUN)),
        ("restore_run unknown", lambda s: s.t.restore_run(UNKNOWN_RUN)),
        # datasets
        ("log_inputs", lambda s: s.t.log_inputs(s.ids["run"].info.run_id, datasets=[e.DatasetInput(
            e.Dataset("ds", "digest1", "local", '{"uri": "x"}', '{"c": 1}', '{"rows": 3}'),
            [e.InputTag("mlflow.data.context", "train")])])),
        ("log_inputs same dataset again", lambda s: s.t.log_inputs(s.ids["run"].info.run_id, datasets=[e.DatasetInput(
            e.Dataset("ds", "digest1", "local", '{"uri": "x"}', '{"c": 1}', '{"rows": 3}'),
            [e.InputTag("mlflow.data.context", "eval")])])),
        ("log_inputs unknown run", lambda s: s.t.log_inputs(UNKNOWN_RUN, datasets=[])),
        # logged models
        ("create_logged_model", lambda s: _set(s, "lm", s.t.create_logged_model(
            s.ids["exp"], "lm-a", s.ids["run"].info.run_id, tags=[e.LoggedModelTag("lt", "1")],
            params=[e.LoggedModelParameter("lp", "1")], model_type="clf"))),
        ("create_logged_model unknown experiment", lambda s: s.t.create_logged_model("424242", "lm-x")),
        ("log_logged_model_params", lambda s: s.t.log_logged_model_params(s.ids["lm"].model_id, [e.LoggedModelParameter("lp2", "2")])),
        ("set_logged_model_tags", lambda s: s.t.set_logged_model_tags(s.ids["lm"].model_id, [e.LoggedModelTag("lt2", "2")])),
        ("delete_logged_model_tag", lambda s: s.t.delete_logged_model_tag(s.ids["lm"].model_id, "lt2")),
        ("delete_logged_model_tag missing", lambda s: s.t.delete_logged_model_tag(s.ids["lm"].model_id, "nope")),
        ("finalize_logged_model", lambda s: s.t.finalize_logged_model(s.ids["lm"].model_id, e.LoggedModelStatus.READY)),
        ("get_logged_model", lambda s: s.t.get_logged_model(s.ids["lm"].model_id)),
        ("search_logged_models", lambda s: s.t.search_logged_models([s.ids["exp"]])),
        ("log_outputs", lambda s: s.t.log_outputs(s.ids["run"].info.run_id, [e.LoggedModelOutput(s.ids["lm"].model_id, 3)])),
        ("get_run with inputs and outputs", lambda s: s.t.get_run(s.ids["run"].info.run_id)),
        ("create_logged_model 2", lambda s: _set(s, "lm2", s.t.create_logged_model(s.ids["exp"], "lm-b").model_id)),
        ("delete_logged_model", lambda s: s.t.delete_logged_model(s.ids["lm2"])),
        ("get_logged_model deleted", lambda s: s.t.get_logged_model(s.ids["lm2"])),
        ("delete_logged_model unknown", lambda s: s.t.delete_logged_model("m-" + UNKNOWN_RUN)),
        # deleted experiments
        ("create_experiment 2", lambda s: _set(s, "exp2", s.t.create_experiment("exp-del"))),
        ("delete_experiment", lambda s: s.t.delete_experiment(s.ids["exp2"])),
        ("get_experiment deleted", lambda s: s.t.get_experiment(s.ids["exp2"])),
        ("get_experiment_by_name deleted", lambda s: s.t.get_experiment_by_name("exp-del")),
        ("create_run in deleted experiment", lambda s: s.t.create_run(s.ids["exp2"], "user", 1, [], "x")),
        ("create_experiment with deleted experiment's name", lambda s: s.t.create_experiment("exp-del")),
        ("rename deleted experiment", lambda s: s.t.rename_experiment(s.ids["exp2"], "exp-del2")),
        ("delete_experiment again", lambda s: s.t.delete_experiment(s.ids["exp2"])),
        ("delete default experiment", lambda s: s.t.delete_experiment("0")),
        ("search_experiments deleted", lambda s: s.t.search_experiments(e.ViewType.DELETED_ONLY)),
        ("restore_experiment", lambda s: s.t.restore_experiment(s.ids["exp2"])),
        ("restore_experiment active", lambda s: s.t.restore_experiment(s.ids["exp2"])),
        ("search_experiments", lambda s: s.t.search_experiments(e.ViewType.ALL, order_by=["name ASC"])),
        # registry
        ("create_registered_model", lambda s: s.r.create_registered_model("rm", tags=[reg.RegisteredModelTag("a", "1")], description="d")),
        ("create_registered_model duplicate", lambda s: s.r.create_registered_model("rm")),
        ("create_registered_model empty name", lambda s: s.r.create_registered_model("")),
        ("get_registered_model", lambda s: s.r.get_registered_model("rm")),
        ("get_registered_model unknown", lambda s: s.r.get_registered_model("nope")),
        ("update_registered_model", lambda s: s.r.update_registered_model("rm", "d2")),
        ("set_registered_model_tag", lambda s: s.r.set_registered_model_tag("rm", reg.RegisteredModelTag("b", "2"))),
        ("set_registered_model_tag invalid key", lambda s: s.r.set_registered_model_tag("rm", reg.RegisteredModelTag("../b", "2"))),
        ("delete_registered_model_tag", lambda s: s.r.delete_registered_model_tag("rm", "b")),
        ("delete_registered_model_tag missing", lambda s: s.r.delete_registered_model_tag("rm", "b")),
        ("rename_registered_model", lambda s: s.r.rename_registered_model("rm", "rm-b")),
        ("create_registered_model other", lambda s: s.r.create_registered_model("rm-c")),
        ("rename_registered_model to existing", lambda s: s.r.rename_registered_model("rm-b", "rm-c")),
        ("create_model_version", lambda s: s.r.create_model_version(
            "rm-b", f"runs:/{s.ids['run'].info.run_id}/model", s.ids["run"].info.run_id,
            tags=[reg.ModelVersionTag("v", "1")], description="mv")),
        ("create_model_version 2", lambda s: s.r.create_model_version("rm-b", "/tmp/somewhere/model")),
        ("create_model_version unknown model", lambda s: s.r.create_model_version("nope", "/tmp/x")),
        ("update_model_version", lambda s: s.r.update_model_version("rm-b", "1", "mv2")),
        ("update_model_version unknown", lambda s: s.r.update_model_version("rm-b", "99", "x")),
        ("set_model_version_tag", lambda s: s.r.set_model_version_tag("rm-b", "1", reg.ModelVersionTag("w", "2"))),
        ("set_model_version_tag invalid key", lambda s: s.r.set_model_version_tag("rm-b", "1", reg.ModelVersionTag("../w", "2"))),
        ("delete_model_version_tag", lambda s: s.r.delete_model_version_tag("rm-b", "1", "w")),
        ("delete_model_version_tag missing", lambda s: s.r.delete_model_version_tag("rm-b", "1", "w")),
        ("set_registered_model_alias", lambda s: s.r.set_registered_model_alias("rm-b", "champion", "1")),
        ("set_registered_model_alias unknown version", lambda s: s.r.set_registered_model_alias("rm-b", "x", "99")),
        ("set_registered_model_alias reserved name", lambda s: s.r.set_registered_model_alias("rm-b", "latest", "1")),
        ("get_model_version_by_alias", lambda s: s.r.get_model_version_by_alias("rm-b", "champion")),
        ("delete_registered_model_alias", lambda s: s.r.delete_registered_model_alias("rm-b", "champion")),
        ("get_model_version_by_alias deleted", lambda s: s.r.get_model_version_by_alias("rm-b", "champion")),
        ("transition_model_version_stage", lambda s: s.r.transition_model_version_stage("rm-b", "1", "Staging", False)),
        ("transition_model_version_stage archive others", lambda s: s.r.transition_model_version_stage("rm-b", "2", "Staging", True)),
        ("transition_model_version_stage invalid stage", lambda s: s.r.transition_model_version_stage("rm-b", "1", "bogus", False)),
        ("get_latest_versions", lambda s: s.r.get_latest_versions("rm-b")),
        ("copy_model_version", lambda s: s.r.copy_model_version(s.r.get_model_version("rm-b", "1"), "rm-c")),
        ("copy_model_version new model", lambda s: s.r.copy_model_version(s.r.get_model_version("rm-b", "1"), "rm-new")),
        ("get_model_version", lambda s: s.r.get_model_version("rm-c", "1")),
        ("delete_model_version", lambda s: s.r.delete_model_version("rm-b", "2")),
        ("get_model_version deleted", lambda s: s.r.get_model_version("rm-b", "2")),
        ("delete_model_version again", lambda s: s.r.delete_model_version("rm-b", "2")),
        ("search_registered_models", lambda s: s.r.search_registered_models(order_by=["name ASC"])),
        ("search_model_versions", lambda s: s.r.search_model_versions("name='rm-c'")),
        ("delete_registered_model", lambda s: s.r.delete_registered_model("rm-c")),
        ("get_registered_model deleted", lambda s: s.r.get_registered_model("rm-c")),
        ("delete_registered_model again", lambda s: s.r.delete_registered_model("rm-c")),
        ("search_registered_models final", lambda s: s.r.search_registered_models(order_by=["name ASC"])),
    ]
    return steps


def run_script(side: S) -> list[tuple[str, tuple[str, Any]]]:
    ids = IdMap()
    results = []
    for label, fn in script():
        results.append((label, outcome(lambda: fn(side), ids)))
    return results


def _compare(plain: list, prov: list) -> None:
    assert [label for label, _ in plain] == [label for label, _ in prov]
    diffs = [
        f"{label}:\n    mlflow:     {a!r}\n    provenance: {b!r}"
        for (label, a), (_, b) in zip(plain, prov)
        if a != b
    ]
    assert not diffs, f"{len(diffs)} of {len(plain)} calls differ:\n" + "\n".join(diffs)


def _stores(tracking_uri: str, artifacts: str, provenance: bool) -> S:
    if provenance:
        from mlflow.tracking._model_registry.utils import _get_store as registry_store
        from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

        return S(tracking_store(tracking_uri, artifacts), registry_store(tracking_uri))
    return S(MlflowTrackingStore(tracking_uri, artifacts), MlflowRegistryStore(tracking_uri))


def _sanity(plain: list, prov: list) -> None:
    """The script exercised both outcomes, so parity is not vacuous."""
    kinds = {label: r[0] for label, r in plain}
    assert kinds["create_run"] == "ok" and kinds["log_batch"] == "ok" and kinds["copy_model_version"] == "ok"
    raised = [label for label, k in kinds.items() if k == "raise"]
    assert len(raised) >= 40, raised
    for label in ("log_param overwrite different value",
                  "log_metric key too long", "log_param to deleted run", "set_tag key invalid",
                  "create_experiment duplicate name", "log_batch over 1000 metrics", "get_run unknown"):
        assert kinds[label] == "raise", label


@dataclass
class ParityRun:
    plain: list
    prov: list
    prov_uri: str


# Parity is for what the promotion policy does not gate: with the built-in policy, the
# script's stage and alias changes on provenance-less versions are refused (by design,
# tested in test_promotion_gate.py).
pytestmark = pytest.mark.usefixtures("ungated_policy")


def _parity(plain_uri: str, prov_uri: str, artifacts: str) -> ParityRun:
    plain = run_script(_stores(plain_uri, artifacts, provenance=False))
    prov_side = _stores(prov_uri, artifacts, provenance=True)
    from mlflow_provenance.adapters.registry_store import ProvenanceRegistryStore
    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    assert isinstance(prov_side.t, ProvenanceTrackingStore)
    assert isinstance(prov_side.r, ProvenanceRegistryStore)
    prov = run_script(prov_side)
    return ParityRun(plain, prov, prov_uri)


def test_store_parity_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    plain_db = copy_template(sqlite_template, tmp_path / "plain.db")
    prov_db = copy_template(sqlite_template, tmp_path / "prov.db")
    run = _parity(f"sqlite:///{plain_db}", f"provenance+sqlite:///{prov_db}", str(tmp_path / "artifacts"))
    _sanity(run.plain, run.prov)
    _compare(run.plain, run.prov)
    code, report = run_verify(run.prov_uri)
    assert code == 0, findings(report)
    ledger = Ledger(run.prov_uri)
    try:
        assert ledger.leftover_changes() == 0
    finally:
        ledger.close()


@pytest.mark.postgres
def test_store_parity_postgresql(tmp_path: Path) -> None:
    """Fresh databases on both sides, so store initialisation is compared too."""
    with pg_database() as plain_db, pg_database() as prov_db:
        prov_uri = f"provenance+{prov_db}"
        run = _parity(plain_db, prov_uri, str(tmp_path / "artifacts"))
        engine = MlflowTrackingStore._engine_map.pop(plain_db, None)
        if engine is not None:
            engine.dispose()
        _sanity(run.plain, run.prov)
        _compare(run.plain, run.prov)
        code, report = run_verify(prov_uri)
        assert code == 0, findings(report)
        ledger = Ledger(prov_uri)
        try:
            assert "create_default_experiment" in {e.op for e in ledger.events()}
        finally:
            ledger.close()


# --------------------------------------------------------------------------------------------
# isinstance and the fluent API
# --------------------------------------------------------------------------------------------


def test_isinstance_of_mlflow_sql_stores(sqlite_uri: str) -> None:
    import mlflow
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistrySql
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingSql
    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

    from mlflow_provenance.adapters.registry_store import ProvenanceRegistryStore
    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    t = tracking_store(sqlite_uri)
    r = registry_store(sqlite_uri)
    assert isinstance(t, TrackingSql) and isinstance(t, ProvenanceTrackingStore)
    assert isinstance(r, RegistrySql) and isinstance(r, ProvenanceRegistryStore)
    # and what the fluent client resolves for the URI is the same kind of store
    mlflow.set_tracking_uri(sqlite_uri)
    mlflow.set_registry_uri(sqlite_uri)
    client = mlflow.MlflowClient()
    assert isinstance(client._tracking_client.store, ProvenanceTrackingStore)
    assert isinstance(client._get_registry_client().store, ProvenanceRegistryStore)


def _fluent_session(uri: str, artifacts: Path) -> dict[str, Any]:
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp_id = mlflow.create_experiment("fluent", artifact_location=str(artifacts))
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="train", tags={"stage": "dev"}) as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "loss": "mse"})
        mlflow.log_metric("loss", 0.9, step=0, timestamp=1000)
        mlflow.log_metric("loss", 0.4, step=1, timestamp=2000)
        mlflow.log_metrics({"acc": 0.8, "f1": 0.7}, step=1, timestamp=2000)
        mlflow.log_metric("async_loss", 0.3, step=2, timestamp=3000, synchronous=False).wait()
        mlflow.log_metrics({"async_acc": 0.9}, step=2, timestamp=3000, synchronous=False).wait()
        mlflow.set_tag("note", "hello")
        mlflow.set_tags({"a": "1", "b": "2"})
        mlflow.delete_tag("b")
        df = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
        mlflow.log_input(mlflow.data.from_pandas(df, name="toy", targets="y"), context="training")
        first = run.info.run_id
    with mlflow.start_run(run_name="broken"):
        mlflow.log_metric("loss", 5.0, step=0, timestamp=1000)
        mlflow.end_run(status="FAILED")
    with pytest.raises(mlflow.exceptions.MlflowException) as conflict:
        with mlflow.start_run(run_id=first):
            mlflow.log_param("lr", 0.2)
    client = mlflow.MlflowClient()
    ids = IdMap()
    frame = mlflow.search_runs([exp_id], order_by=["attributes.run_name ASC"])
    drop = [c for c in frame.columns
            if c in ("run_id", "start_time", "end_time", "artifact_uri", "experiment_id")
            or c.startswith("tags.provenance.")]
    frame = frame.drop(columns=drop)
    return {
        "frame_columns": sorted(frame.columns),
        "frame": _normalise(_plain(frame.astype(object).where(frame.notna(), None).to_dict("records")), ids),
        "runs": outcome(lambda: [
            {**r.to_dictionary(), "data": {**r.data.to_dictionary(), "tags": {
                k: v for k, v in r.data.tags.items() if not k.startswith("provenance.")}},
             "inputs": _without_content_digest(r.inputs.to_dictionary())}
            for r in mlflow.search_runs([exp_id], output_format="list", order_by=["attributes.run_name ASC"])
        ], ids),
        "history": outcome(lambda: client.get_metric_history(first, "loss"), ids),
        "async_history": outcome(lambda: client.get_metric_history(first, "async_loss"), ids),
        "inputs": outcome(lambda: _without_content_digest(mlflow.get_run(first).inputs.to_dictionary()), ids),
        "conflict": (type(conflict.value).__name__, conflict.value.error_code, ids.sub(conflict.value.message)),
        "first": first,
    }


def _without_content_digest(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs minus the full-content digest our client adds to a dataset's profile (the one
    documented difference for datasets logged with plain ``mlflow.log_input``)."""
    import json

    for dataset_input in inputs.get("dataset_inputs") or []:
        dataset = dataset_input.get("dataset") or {}
        if dataset.get("profile"):
            profile = json.loads(dataset["profile"])
            profile.pop("mlflow_provenance_content", None)
            dataset["profile"] = json.dumps(profile)
    return inputs


def test_fluent_api_parity_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    import mlflow

    plain_db = copy_template(sqlite_template, tmp_path / "plain.db")
    prov_db = copy_template(sqlite_template, tmp_path / "prov.db")
    plain = _fluent_session(f"sqlite:///{plain_db}", tmp_path / "fluent-artifacts")
    mlflow.set_tracking_uri(None)
    prov_uri = f"provenance+sqlite:///{prov_db}"
    prov = _fluent_session(prov_uri, tmp_path / "fluent-artifacts")
    assert mlflow.get_tracking_uri() == prov_uri
    first = prov.pop("first")
    plain.pop("first")
    assert len(plain["frame"]) == 2
    for key in plain:
        assert plain[key] == prov[key], f"fluent {key} differs:\n mlflow:     {plain[key]!r}\n provenance: {prov[key]!r}"
    ledger = Ledger(prov_uri)
    try:
        events = ledger.events()
    finally:
        ledger.close()
    run_ops = {e.op for e in events if e.entity == ("run", first)}
    assert {"create_run", "log_param", "log_metric", "log_batch", "set_tag", "delete_tag", "log_inputs",
            "update_run_info"} <= run_ops, run_ops
    code, report = run_verify(prov_uri)
    assert code == 0, findings(report)
