"""Lineage views: what a model version (or a run) rests on, and what a dataset feeds.

A *view* is a plain, JSON-ready dict built from a :class:`~mlflow_provenance.lineage.LineageGraph`
(and, for a model version, an export :class:`~mlflow_provenance.exports.snapshot.Snapshot`):
described sections for people — the run, its environment, its datasets and their ancestors
with the transformations that derived them, evaluations, gate decisions — plus a ``graph``
of nodes and edges for drawings. Renderers turn a view into a ``tree``-like text listing or
JSON (:mod:`.lineage_text`), Graphviz DOT (:mod:`.lineage_dot`), or a self-contained HTML
page (:mod:`.lineage_html`); the first three are re-exported here.

    model_upstream(graph, snapshot) | run_view(graph, run_id, documents) | dataset_downstream(graph, digest)
        → view → to_text | to_json | to_dot | lineage_html.render

Graph node ids are ``dataset:<digest>``, ``run:<run id>`` and ``model:<model>``; edges are
``derived`` (parent dataset → child dataset, with the child's transformations), ``input``
(dataset → run, labelled with how the run used it) and ``output`` (run → model).
No MLflow imports here.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from mlflow_provenance.environment import manifest as env
from mlflow_provenance.errors import CanonicalizationError, ConfigurationError
from mlflow_provenance.lineage import LineageGraph, describe_many

if TYPE_CHECKING:
    from mlflow_provenance.exports.snapshot import Snapshot

VIEW_FORMAT = "mlflow-provenance/lineage-view/v1"
UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
ENVIRONMENT_RECORD = "environment-manifest"
DECISION_RECORD = "promotion-decision"
#: The environment manifest's one-line summaries, by the name a view gives them.
ENVIRONMENT_FIELDS = {"python": env.TAG_PYTHON, "os": env.TAG_OS, "gpu": env.TAG_GPU,
                      "image": env.TAG_IMAGE, "git": env.TAG_GIT_COMMIT}


class UnknownDatasetError(ConfigurationError):
    """No dataset with the given digest appears in the ledger's lineage."""


# --- building views --------------------------------------------------------------------------------


def model_upstream(graph: LineageGraph, snapshot: "Snapshot") -> dict[str, Any]:
    """The upstream lineage of the snapshot's model version (or run, for a run snapshot):
    the version, its run and environment, the datasets the run used and their ancestors with
    the transformations that derived each, evaluations and gate decisions.

    Raises:
        ConfigurationError: the snapshot names no run.
    """
    if not snapshot.run:
        what = f"model version {snapshot.model['name']}/{snapshot.model['version']}" if snapshot.model else "the snapshot"
        raise ConfigurationError(f"{what} has no run in this database, so no recorded lineage: "
                                 "register versions from a run (runs:/… or a logged model) to trace their data")
    documents = snapshot.documents()
    manifest_record = _environment_record(snapshot.records(ENVIRONMENT_RECORD), snapshot.run)
    view = run_view(graph, snapshot.run["run_id"], documents, run=snapshot.run, environment_record=manifest_record)
    view["checkpoint"] = {"size": snapshot.checkpoint.get("size"), "root": snapshot.checkpoint.get("root")}
    if snapshot.model:
        model = _model_summary(snapshot.model)
        view["subject"] = model["uri"]
        view["model"] = model
        view["decisions"] = _decisions(snapshot.records(DECISION_RECORD), documents, model)
        view["graph"] = _mark_subject(view["graph"], f"model:{model['uri']}")
    return view


def run_view(graph: LineageGraph, run_id: str, documents: Mapping[str, Any], *,
             run: Mapping[str, Any] | None = None,
             environment_record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The upstream lineage of one run (no model version): the same shape as
    :func:`model_upstream`, with ``model`` None and no decisions.

    ``documents`` maps blob digests to decoded JSON documents (``Snapshot.documents()``, or
    what a store has at hand); the environment manifest is taken from there — the one
    ``environment_record`` or the run's ``provenance.env.digest`` tag names, else the only
    manifest among them. ``run`` is the run's description in the snapshot's shape (name,
    experiment, status, params, tags); without it only the id is shown.
    """
    used = sorted(graph.run_datasets.get(run_id, ()))
    ancestors = _unique(a for d in used for a in graph.ancestors(d))
    datasets = [_dataset_entry(graph, d, run_id) for d in used]
    datasets.sort(key=lambda e: (e["name"] or "", e["digest"]))
    lineage = [_dataset_entry(graph, d, run_id) for d in ancestors]
    models = _models_of([run_id], graph)
    return {
        "format": VIEW_FORMAT,
        "direction": UPSTREAM,
        "subject": f"runs:/{run_id}",
        "model": None,
        "run": _run_summary(run_id, run),
        "environment": _environment(documents, run, environment_record),
        "datasets": datasets,
        "ancestors": lineage,
        "evaluations": _evaluations(graph, run_id, documents),
        "decisions": [],
        "models": models,
        "unverified_inputs": list(graph.unverified_inputs.get(run_id, [])),
        "checkpoint": None,
        "graph": _graph(datasets + lineage, {run_id: _run_label(run_id, run)}, models,
                        [(e["digest"], run_id, e["contexts"]) for e in datasets], subject=f"run:{run_id}"),
    }


def dataset_downstream(graph: LineageGraph, digest: str) -> dict[str, Any]:
    """Everything derived from the dataset ``digest`` (transitively, with the transformations),
    every run that used it or any of them, and every model those runs produced.

    Raises:
        UnknownDatasetError: ``digest`` is not in the ledger's lineage.
    """
    if digest not in graph.datasets:
        raise UnknownDatasetError(
            f"no dataset {digest} in this ledger's lineage: give the full sha256:… digest of a logged dataset "
            "(shown by `mlflow-provenance lineage models:/NAME/VERSION`)")
    family = [digest, *graph.descendants(digest)]
    entries = [_dataset_entry(graph, d) for d in family]
    run_ids = sorted({run for d in family for run in graph.datasets[d].runs})
    runs = [_run_use(graph, run, family) for run in run_ids]
    models = _models_of(run_ids, graph)
    return {
        "format": VIEW_FORMAT,
        "direction": DOWNSTREAM,
        "subject": digest,
        "dataset": entries[0],
        "derived": entries[1:],
        "runs": runs,
        "models": models,
        "graph": _graph(entries, {run: _run_label(run, None) for run in run_ids}, models,
                        [(d["digest"], use["run_id"], d["contexts"]) for use in runs for d in use["datasets"]],
                        subject=f"dataset:{digest}"),
    }


def _dataset_entry(graph: LineageGraph, digest: str, run_id: str | None = None) -> dict[str, Any]:
    """A dataset as views show it: names, terms, parents (with names) and transformations;
    ``contexts`` says how ``run_id`` used it (empty when it is only an ancestor)."""
    (described,) = describe_many(graph, [digest])
    names = [n for n in described.get("names", []) if n]
    node = graph.datasets.get(digest)
    contexts = sorted(c for c in node.runs.get(run_id, ()) if c) if node and run_id else []
    return {
        "digest": digest,
        "name": " / ".join(names) or None,
        "recorded": bool(described.get("recorded")),
        "license": described.get("license"),
        "source": described.get("source"),
        "owner": described.get("owner"),
        "contexts": contexts,
        "parents": [{"digest": p, "name": _name_of(graph, p)} for p in described.get("parents", [])],
        "transformations": list(described.get("transformations") or []),
    }


def _name_of(graph: LineageGraph, digest: str) -> str | None:
    node = graph.datasets.get(digest)
    if node is None:
        return None
    return " / ".join(sorted(n for n in node.names if n)) or None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _run_use(graph: LineageGraph, run_id: str, family: list[str]) -> dict[str, Any]:
    """Which of ``family`` the run used, and how."""
    used = [{"digest": d, "name": _name_of(graph, d), "contexts": sorted(c for c in graph.datasets[d].runs[run_id] if c)}
            for d in family if run_id in graph.datasets[d].runs]
    return {"run_id": run_id, "datasets": used}


def _models_of(run_ids: Iterable[str], graph: LineageGraph) -> list[dict[str, Any]]:
    """The models the runs produced: registered versions (``models:/NAME/VERSION``) and logged models."""
    found = []
    for run in run_ids:
        for model in sorted(graph.run_models.get(run, ())):
            kind = "model_version" if model.startswith("models:/") else "logged_model"
            found.append({"uri": model, "kind": kind, "run_id": run})
    return found


def _run_summary(run_id: str, run: Mapping[str, Any] | None) -> dict[str, Any]:
    run = run or {}
    return {
        "run_id": run_id,
        "name": run.get("name"),
        "experiment_id": run.get("experiment_id"),
        "experiment": run.get("experiment_name"),
        "status": run.get("status"),
        "user": run.get("user"),
        "start_time": _iso(run.get("start_time")),
        "end_time": _iso(run.get("end_time")),
        "params": dict(sorted((run.get("params") or {}).items())),
    }


def _run_label(run_id: str, run: Mapping[str, Any] | None) -> str:
    name = (run or {}).get("name")
    return f"run {name}" if name else f"run {run_id[:12]}"


def _iso(millis: Any) -> str | None:
    if not isinstance(millis, (int, float)) or isinstance(millis, bool):
        return None
    return _dt.datetime.fromtimestamp(millis / 1000, _dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _model_summary(model: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "uri": f"models:/{model.get('name')}/{model.get('version')}",
        "name": model.get("name"),
        "version": str(model.get("version")),
        "stage": model.get("stage"),
        "aliases": list(model.get("aliases") or []),
        "source": model.get("source"),
        "model_id": model.get("model_id"),
        "run_id": model.get("run_id"),
        "created": _iso(model.get("created")),
        "owner": (model.get("registered_model_tags") or {}).get("owner"),
    }


def _environment_record(records: list[dict[str, Any]], run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's environment-manifest record: the one its digest tag names, else the first."""
    claimed = (run.get("tags") or {}).get(env.TAG_DIGEST)
    for record in records:
        if claimed and record.get("blob") == claimed:
            return record
    return records[0] if records else None


def _environment(documents: Mapping[str, Any], run: Mapping[str, Any] | None,
                 record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Digest, status and one-line summaries of the run's environment manifest."""
    digest = (record or {}).get("blob") or ((run or {}).get("tags") or {}).get(env.TAG_DIGEST)
    if not digest:
        manifests = [d for d, doc in documents.items() if isinstance(doc, dict) and doc.get("$schema") == env.SCHEMA_ID]
        digest = manifests[0] if len(manifests) == 1 else None
    document = documents.get(digest) if digest else None
    if not isinstance(document, dict):
        if record is None and not digest:
            return None
        return {"digest": digest, "status": (record or {}).get("status") or env.STATUS_MISSING,
                "reason": (record or {}).get("reason") or "the manifest document is not in this export"}
    try:
        manifest = env.Manifest.from_document(document)
    except CanonicalizationError as exc:
        return {"digest": digest, "status": "unreadable", "reason": str(exc)}
    summary = manifest.summary_tags()
    return {"digest": digest, "status": manifest.status, "captured_at": document.get("captured_at"),
            **{name: summary[tag] for name, tag in ENVIRONMENT_FIELDS.items()}}


def _evaluations(graph: LineageGraph, run_id: str, documents: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's evaluations, with each threshold (from the record document, when present)."""
    found = []
    for evaluation in graph.evaluations.get(run_id, []):
        document = _document(documents, evaluation.get("record"))
        found.append({
            "record": evaluation.get("record"),
            "dataset": evaluation.get("dataset"),
            "dataset_name": _name_of(graph, evaluation.get("dataset") or ""),
            "metrics": evaluation.get("metrics") or {},
            "thresholds": document.get("thresholds") or {},
            "thresholds_met": evaluation.get("thresholds_met"),
            "model": evaluation.get("model"),
            "slice": evaluation.get("slice"),
        })
    return found


def _decisions(records: list[dict[str, Any]], documents: Mapping[str, Any],
               model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The signed promotion decisions about the model version, oldest first."""
    found = []
    for record in records:
        if (record.get("model"), str(record.get("version"))) != (model["name"], model["version"]):
            continue
        document = _document(documents, record.get("blob"))
        found.append({
            "decision": document.get("decision") or ("allowed" if document.get("allowed") else None),
            "target": record.get("target") or document.get("target"),
            "target_kind": record.get("target_kind") or document.get("target_kind"),
            "time": document.get("time"),
            "actor": document.get("actor"),
            "policy": record.get("policy") or document.get("policy"),
            "record": record.get("blob"),
            "seq": record.get("_seq"),
            "signed_by": str(record.get("signature") or "").partition(":")[0] or None,
            "evidence": sorted(document.get("evidence") or []),
        })
    return found


def _document(documents: Mapping[str, Any], digest: Any) -> dict[str, Any]:
    document = documents.get(digest) if isinstance(digest, str) else None
    return document if isinstance(document, dict) else {}


# --- the graph -----------------------------------------------------------------------------------------


def _graph(datasets: list[dict[str, Any]], runs: Mapping[str, str], models: list[dict[str, Any]],
           inputs: list[tuple[str, str, list[str]]], *, subject: str) -> dict[str, Any]:
    """Nodes and edges for drawing: each dataset, run and model once; ``inputs`` are
    ``(dataset digest, run id, contexts)``."""
    entries = {e["digest"]: e for e in datasets}
    nodes = [_dataset_node(e) for e in entries.values()]
    nodes += [{"id": f"run:{run}", "kind": "run", "label": label, "run_id": run} for run, label in runs.items()]
    nodes += [_model_node(m) for m in models]
    edges = [_derived_edge(p["digest"], e) for e in entries.values() for p in e["parents"] if p["digest"] in entries]
    edges += [{"source": f"dataset:{digest}", "target": f"run:{run}", "kind": "input",
               "label": ", ".join(contexts) or "input"} for digest, run, contexts in inputs]
    edges += [{"source": f"run:{m['run_id']}", "target": f"model:{m['uri']}", "kind": "output",
               "label": "registered" if m["kind"] == "model_version" else "logged"} for m in models]
    return _mark_subject({"nodes": nodes, "edges": edges}, subject)


def _dataset_node(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": f"dataset:{entry['digest']}", "kind": "dataset", "label": entry["name"] or "unnamed dataset",
            "digest": entry["digest"], "recorded": entry["recorded"]}


def _model_node(model: Mapping[str, Any]) -> dict[str, Any]:
    name, _, version = model["uri"][len("models:/"):].rpartition("/")
    label = f"{name} v{version}" if model["kind"] == "model_version" else "logged model"
    return {"id": f"model:{model['uri']}", "kind": "model", "model_kind": model["kind"], "label": label,
            "uri": model["uri"]}


def _derived_edge(parent: str, child: Mapping[str, Any]) -> dict[str, Any]:
    steps = child["transformations"]
    return {"source": f"dataset:{parent}", "target": f"dataset:{child['digest']}", "kind": "derived",
            "label": transformation_names(steps), "transformations": steps}


def _mark_subject(graph: dict[str, Any], subject: str) -> dict[str, Any]:
    for node in graph["nodes"]:
        node["subject"] = node["id"] == subject
    return graph


def transformation_names(steps: Iterable[Mapping[str, Any]]) -> str:
    """``a → b`` for a dataset's transformation steps, or ``derived`` when none were recorded."""
    return " → ".join(str(s.get("name") or "?") for s in steps) or "derived"


# --- JSON ----------------------------------------------------------------------------------------------


# The renderers, re-exported (imported last: they use the names above).
from mlflow_provenance.exports.lineage_dot import dot_quote, node_detail, to_dot  # noqa: E402
from mlflow_provenance.exports.lineage_text import printable, scalar, to_json, to_text  # noqa: E402

__all__ = [
    "UnknownDatasetError", "dataset_downstream", "dot_quote", "model_upstream", "node_detail", "printable",
    "run_view", "scalar", "to_dot", "to_json", "to_text", "transformation_names",
]
