"""Lineage views as a ``tree``-like text listing, and as JSON (:mod:`.lineage_view`)."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

from mlflow_provenance.exports.lineage_view import ENVIRONMENT_FIELDS, UPSTREAM, transformation_names


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
