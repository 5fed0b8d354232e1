"""Lineage views: what a model version (or a run) rests on, and what a dataset feeds.

A *view* is a plain, JSON-ready dict built from a :class:`~mlflow_provenance.lineage.LineageGraph`
(and, for a model version, an export :class:`~mlflow_provenance.exports.snapshot.Snapshot`):
described sections for people — the run, its environment, its datasets and their ancestors
with the transformations that derived them, evaluations, gate decisions — plus a ``graph``
of nodes and edges for drawings. Renderers turn a view into a ``tree``-like text listing,
JSON, or Graphviz DOT; :mod:`.lineage_html` turns it into a self-contained HTML page.

    model_upstream(graph, snapshot) | run_view(graph, run_id, documents) | dataset_downstream(graph, digest)
        → view → to_text | to_json | to_dot | lineage_html.render

Graph node ids are ``dataset:<digest>``, ``run:<run id>`` and ``model:<model>``; edges are
``derived`` (parent dataset → child dataset, with the child's transformations), ``input``
(dataset → run, labelled with how the run used it) and ``output`` (run → model).
No MLflow imports here.
"""

from __future__ import annotations

import datetime as _dt
import json
import unicodedata
from dataclasses import dataclass, field
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


def to_json(view: Mapping[str, Any]) -> str:
    """The view as JSON (sorted keys, ASCII only: names cannot smuggle terminal controls)."""
    return json.dumps(view, indent=2, sort_keys=True, ensure_ascii=True)


# --- text: a tree, like ``tree`` -----------------------------------------------------------------------


@dataclass
class _Branch:
    label: str
    children: list["_Branch"] = field(default_factory=list)


def to_text(view: Mapping[str, Any]) -> str:
    """The view as an indented tree (``├──``/``└──``); names are shown with control and
    bidirectional-override characters escaped."""
    root = _upstream_tree(view) if view.get("direction") == UPSTREAM else _downstream_tree(view)
    return "\n".join(_draw(root))


def _draw(root: _Branch) -> list[str]:
    """Lines of the tree (iterative: a deep lineage cannot exhaust the stack)."""
    lines = [printable(root.label)]
    stack = _pending(root.children, "")
    while stack:
        branch, prefix, last = stack.pop()
        lines.append(prefix + ("└── " if last else "├── ") + printable(branch.label))
        stack += _pending(branch.children, prefix + ("    " if last else "│   "))
    return lines


def _pending(children: list[_Branch], prefix: str) -> list[tuple[_Branch, str, bool]]:
    return [(child, prefix, i == len(children) - 1) for i, child in reversed(list(enumerate(children)))]


def printable(text: Any) -> str:
    """``text`` on one line with control, format (bidi override, zero-width) and line-separator
    characters written as ``\\uXXXX``."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(text))


def _upstream_tree(view: Mapping[str, Any]) -> _Branch:
    run = _run_branch(view)
    model = view.get("model")
    if not model:
        root = run
    else:
        root = _Branch(f"model version {model['uri']}", [
            _Branch(f"stage: {model['stage'] or 'None'}; aliases: {', '.join(model['aliases']) or 'none'}; "
                    f"owner: {model['owner'] or 'not set'}"),
            _Branch(f"source: {model['source']}"),
            _decisions_branch(view.get("decisions") or []),
            run,
        ])
    if view.get("checkpoint"):
        root.children.append(_Branch(f"cut at signed checkpoint: size {view['checkpoint']['size']}, "
                                     f"root {view['checkpoint']['root']}"))
    return root


def _run_branch(view: Mapping[str, Any]) -> _Branch:
    run = view["run"]
    title = f"run {run['name']} ({run['run_id']})" if run.get("name") else f"run {run['run_id']}"
    facts = [f"experiment {run['experiment']}" if run.get("experiment") else None, run.get("status")]
    branch = _Branch(" · ".join([title, *(f for f in facts if f)]))
    params = ", ".join(f"{k}={v}" for k, v in run["params"].items())
    branch.children.append(_Branch(f"params: {params or 'none'}"))
    branch.children.append(_environment_branch(view.get("environment")))
    contexts = {e["digest"]: e["contexts"] for e in [*view["ancestors"], *view["datasets"]]}
    index = {e["digest"]: e for e in [*view["ancestors"], *view["datasets"]]}
    roots = [e["digest"] for e in view["datasets"]]
    branch.children.append(_Branch(f"datasets used ({len(roots)})",
                                   _dataset_branches(roots, index, contexts, upstream=True)))
    if view.get("unverified_inputs"):
        branch.children.append(_Branch("inputs without a dataset record (not verifiable)", [
            _Branch(f"{i.get('name')} (MLflow digest {i.get('mlflow_digest')}): {i.get('reason')}")
            for i in view["unverified_inputs"]]))
    branch.children.append(_Branch(f"evaluations ({len(view['evaluations'])})",
                                   [_evaluation_branch(e) for e in view["evaluations"]]))
    branch.children.append(_models_branch(view["models"]))
    return branch


def _environment_branch(environment: Mapping[str, Any] | None) -> _Branch:
    if not environment:
        return _Branch("environment: not recorded")
    branch = _Branch(f"environment {environment.get('digest') or '(no manifest)'} ({environment.get('status')})")
    if environment.get("reason"):
        branch.children.append(_Branch(f"reason: {environment['reason']}"))
    branch.children += [_Branch(f"{name}: {environment[name]}") for name in ENVIRONMENT_FIELDS if environment.get(name)]
    return branch


def _dataset_branches(roots: list[str], index: Mapping[str, Mapping[str, Any]],
                      contexts: Mapping[str, list[str]], *, upstream: bool) -> list[_Branch]:
    """Each root with its details and, nested, its parents (upstream) or the datasets
    derived from it (downstream); a dataset met again is named, not repeated."""
    children: dict[str, list[str]] = {}
    for entry in index.values():
        for parent in entry["parents"]:
            children.setdefault(parent["digest"], []).append(entry["digest"])
    top: list[_Branch] = []
    seen: set[str] = set()
    stack = [(digest, top) for digest in reversed(roots)]
    while stack:
        digest, siblings = stack.pop()
        entry = index.get(digest) or {"digest": digest, "name": None, "recorded": False, "parents": [],
                                      "transformations": []}
        branch = _Branch(_dataset_label(entry, contexts.get(digest, []), derived_by=not upstream and digest not in roots))
        siblings.append(branch)
        if digest in seen:
            branch.label += " (shown above)"
            continue
        seen.add(digest)
        branch.children += _dataset_details(entry)
        following = [p["digest"] for p in entry["parents"]] if upstream else [c for c in children.get(digest, []) if c in index]
        holder = branch
        if upstream and following:
            holder = _Branch(f"derived from {len(following)} dataset(s) by:",
                             [_Branch(_step_line(step)) for step in entry["transformations"]])
            branch.children.append(holder)
        stack += [(d, holder.children) for d in reversed(following)]
    return top


def _dataset_label(entry: Mapping[str, Any], contexts: list[str], *, derived_by: bool) -> str:
    label = f"{entry.get('name') or 'unnamed dataset'}"
    if contexts:
        label += f" [{', '.join(contexts)}]"
    label += f" {entry['digest']}"
    if not entry.get("recorded"):
        label += " (no dataset record)"
    if derived_by:
        label = f"by {transformation_names(entry['transformations'])}: {label}"
    return label


def _dataset_details(entry: Mapping[str, Any]) -> list[_Branch]:
    if not entry.get("recorded"):
        return []
    terms = entry.get("license") or {}
    license_text = f"{terms.get('expression')} ({terms.get('kind')})" if terms else "not recorded"
    return [_Branch(f"license: {license_text}"),
            _Branch(f"source: {scalar(entry.get('source')) or 'not recorded'}"),
            _Branch(f"owner: {entry.get('owner') or 'not recorded'}")]


def _step_line(step: Mapping[str, Any]) -> str:
    code = step.get("code") or {}
    parts = [str(step.get("name") or "?")]
    if code:
        parts.append(f"code {code.get('reference') or '?'}" + (f" ({code['digest']})" if code.get("digest") else ""))
    parameters = ", ".join(f"{k}={scalar(v)}" for k, v in sorted((step.get("parameters") or {}).items()))
    if parameters:
        parts.append(f"parameters {parameters}")
    return "; ".join(parts)


def scalar(value: Any) -> str:
    """A value on one line: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _evaluation_branch(evaluation: Mapping[str, Any]) -> _Branch:
    metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in sorted(evaluation["metrics"].items()))
    met = {True: "thresholds met", False: "thresholds NOT met", None: "no thresholds"}[evaluation.get("thresholds_met")]
    where = f"{evaluation.get('dataset_name') or 'dataset'} {evaluation.get('dataset')}"
    return _Branch(f"on {where}: {metrics} — {met}", [
        _Branch(f"{metric} {t.get('operator')} {t.get('value')}: {'met' if t.get('met') else 'NOT met'}")
        for metric, t in sorted(evaluation["thresholds"].items())])


def _decisions_branch(decisions: list[Mapping[str, Any]]) -> _Branch:
    return _Branch(f"gate decisions ({len(decisions)})", [
        _Branch(f"{d.get('decision') or '?'} → {d.get('target_kind')} {d.get('target')} at {d.get('time')} "
                f"by {d.get('actor')}; policy {d.get('policy')}; record {d.get('record')} (event #{d.get('seq')})")
        for d in decisions])


def _models_branch(models: list[Mapping[str, Any]]) -> _Branch:
    return _Branch(f"models ({len(models)})", [
        _Branch(f"{m['uri']} ({'registered version' if m['kind'] == 'model_version' else 'logged model'}"
                f" from run {m['run_id']})") for m in models])


def _downstream_tree(view: Mapping[str, Any]) -> _Branch:
    root_entry = view["dataset"]
    entries = [root_entry, *view["derived"]]
    index = {e["digest"]: e for e in entries}
    (root,) = _dataset_branches([root_entry["digest"]], index, {}, upstream=False)
    root.label = "dataset " + root.label
    root.children.append(_Branch(f"runs that used it or a derived dataset ({len(view['runs'])})", [
        _Branch(f"run {r['run_id']}: " + ", ".join(
            f"{d['name'] or 'unnamed'}" + (f" [{', '.join(d['contexts'])}]" if d["contexts"] else "") for d in r["datasets"]))
        for r in view["runs"]]))
    root.children.append(_models_branch(view["models"]))
    return root


# --- Graphviz DOT --------------------------------------------------------------------------------------

_DOT_SHAPES = {"dataset": ("cylinder", "#dbeafe"), "run": ("ellipse", "#dcfce7"),
               "model_version": ("box3d", "#ede9fe"), "logged_model": ("diamond", "#f3e8ff")}
_DOT_EDGE_STYLES = {"derived": "solid", "input": "dashed", "output": "bold"}


def to_dot(view: Mapping[str, Any]) -> str:
    """The view's graph in the Graphviz DOT language (``dot -Tsvg``): datasets as cylinders,
    runs as ellipses, model versions as 3-D boxes and logged models as diamonds; edges
    labelled with the transformations, the contexts of use, or how a model came out."""
    graph = view["graph"]
    lines = [
        "digraph lineage {",
        f"  graph [{_dot_attributes({'rankdir': 'LR', 'fontname': 'Helvetica', 'labelloc': 't', 'label': _dot_title(view)})}];",
        f"  node [{_dot_attributes({'fontname': 'Helvetica', 'fontsize': '10', 'style': 'filled'})}];",
        f"  edge [{_dot_attributes({'fontname': 'Helvetica', 'fontsize': '9'})}];",
    ]
    lines += [f"  {dot_quote(n['id'])} [{_dot_attributes(_dot_node(n))}];" for n in graph["nodes"]]
    lines += [f"  {dot_quote(e['source'])} -> {dot_quote(e['target'])} "
              f"[{_dot_attributes({'label': e['label'], 'style': _DOT_EDGE_STYLES.get(e['kind'], 'solid')})}];"
              for e in graph["edges"]]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_title(view: Mapping[str, Any]) -> str:
    return f"{view.get('direction')} lineage of {view.get('subject')}"


def _dot_node(node: Mapping[str, Any]) -> dict[str, str]:
    kind = node.get("model_kind") or node["kind"]
    shape, colour = _DOT_SHAPES.get(kind, ("box", "#f3f4f6"))
    detail = node_detail(node)
    short = f"{detail[:23]}…" if node.get("digest") else detail
    attributes = {"shape": shape, "fillcolor": colour, "label": "\n".join(p for p in (node["label"], short) if p),
                  "tooltip": detail or node["label"]}
    if not node.get("recorded", True):
        attributes["style"] = "filled,dashed"
    if node.get("subject"):
        attributes["penwidth"] = "2.5"
    return attributes


def node_detail(node: Mapping[str, Any]) -> str:
    """The identifier a drawing shows under a node's label: digest, run id, or model URI
    (when the label is not already the URI)."""
    uri = node.get("uri") if node.get("uri") != node.get("label") else None
    return str(node.get("digest") or node.get("run_id") or uri or "")


def _dot_attributes(attributes: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={dot_quote(value)}" for key, value in attributes.items())


def dot_quote(text: Any) -> str:
    """A DOT double-quoted string (the DOT language, "ID"): backslashes and quotes escaped,
    line breaks as DOT's ``\\n`` escape, other control characters dropped."""
    cleaned = "".join(c for c in str(text).replace("\r\n", "\n")
                      if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
