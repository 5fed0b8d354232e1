"""A lineage view as one self-contained HTML page: verification status, a drawn graph and
the facts behind it (digests in full, licenses, sources, environment, evaluations, gate
decisions).

The page loads nothing: no script at all, styles inline, the graph an inline SVG laid out
here (layered, left to right: source datasets → transformations → derived datasets → run
→ models), and a Content-Security-Policy that forbids every fetch should a later edit try
one. Every value from the ledger — dataset names are user input — is HTML-escaped.

    lineage_view.model_upstream(...) / run_view(...) / dataset_downstream(...) → render(view, verification)

No MLflow imports here.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from mlflow_provenance.exports.lineage_view import (
    ENVIRONMENT_FIELDS,
    UPSTREAM,
    node_detail,
    run_view,
    scalar,
    transformation_names,
)

__all__ = ["CSP", "render", "run_view"]

#: Nothing may be fetched: inline styles and data: images only (and the page has neither scripts nor images).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
header,main,footer{max-width:1280px;margin:0 auto;padding:0 20px}
h1{font-size:22px;margin:18px 0 8px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #e5e7eb}
h3{font-size:15px;margin:0 0 6px}code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.status{border-radius:8px;padding:12px 16px;margin:10px 0;border:2px solid}
.status.ok{background:#dcfce7;border-color:#16a34a;color:#14532d}
.status.failed{background:#fee2e2;border-color:#dc2626;color:#7f1d1d}
.status strong{font-size:18px}.status ul{margin:6px 0 0}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border:1px solid #e5e7eb;padding:5px 8px;
text-align:left;vertical-align:top}th{background:#f3f4f6;width:16%}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;margin:10px 0}
.card:target{outline:3px solid #2563eb}.card h2{margin-top:4px}.graph{overflow:auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px}
.met{color:#15803d;font-weight:600}.unmet{color:#b91c1c;font-weight:600}.muted{color:#6b7280}
svg text{font-family:system-ui,sans-serif}svg .label{font-size:12px;font-weight:600}
svg .detail{font:10px ui-monospace,Menlo,monospace;fill:#374151}
svg .edge{fill:none;stroke:#6b7280;stroke-width:1.4}svg .edge.input{stroke-dasharray:5 4}
svg .edge-label{font-size:10px;fill:#374151;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .dataset{fill:#dbeafe;stroke:#2563eb}svg .transformation{fill:#fef3c7;stroke:#d97706}
svg .run{fill:#dcfce7;stroke:#16a34a}svg .model{fill:#ede9fe;stroke:#7c3aed}
svg .subject{stroke-width:3}svg .unrecorded{stroke-dasharray:4 3}
"""


# --- the page --------------------------------------------------------------------------------------


def render(view: Mapping[str, Any], verification: Mapping[str, Any]) -> str:
    """The view (upstream of a model version or run, or downstream of a dataset) as one
    self-contained HTML page, with ``verification`` — ``{"ok", "findings", "checked_at",
    "chain_head": {"seq", "hash"}, "checkpoint": {"size", "root"}}`` — shown first: green only
    when ``ok`` is exactly ``True`` and there are no findings, red otherwise."""
    title = f"Lineage of {view.get('subject')}"
    sections = _upstream_sections(view) if view.get("direction") == UPSTREAM else _downstream_sections(view)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_e(CSP)}\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1>\n{_verification(verification)}</header>\n<main>\n"
        f"<section id=\"graph\"><h2>Lineage graph</h2><div class=\"graph\">{svg(view['graph'])}</div>{_legend()}</section>\n"
        f"{''.join(sections)}</main>\n<footer><p class=\"muted\">{_e(_footer(view))}</p></footer>\n</body>\n</html>\n"
    )


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _verified(verification: Mapping[str, Any]) -> bool:
    """Fail closed: anything but ``ok is True`` with no findings is a failure."""
    return verification.get("ok") is True and not verification.get("findings")


def _verification(verification: Mapping[str, Any]) -> str:
    ok = _verified(verification)
    findings = list(verification.get("findings") or [])
    if ok:
        scope = verification.get("scope") or "the ledger's hashes, chains, signed checkpoint and recorded state check out"
        headline = f"✔ Verified: {scope}"
    elif verification.get("ok") is True:
        headline = "✘ NOT verified: the verification result is inconsistent (ok, but with findings)"
    else:
        headline = f"✘ Verification FAILED: {len(findings)} finding(s)" if findings else "✘ NOT verified"
    head = verification.get("chain_head") or {}
    checkpoint = verification.get("checkpoint") or {}
    facts = [("checked at", verification.get("checked_at")), ("chain head", _pair("event #", head.get("seq"), head.get("hash"))),
             ("signed checkpoint", _pair("size ", checkpoint.get("size"), checkpoint.get("root")))]
    items = "".join(f"<li>{_e(_finding(f))}</li>" for f in findings)
    return (f"<section id=\"verification\" class=\"status {'ok' if ok else 'failed'}\" "
            f"data-verification=\"{'ok' if ok else 'failed'}\"><strong>{_e(headline)}</strong>"
            f"<div>{' · '.join(f'{_e(k)}: <code>{_e(v)}</code>' for k, v in facts if v)}</div>"
            f"{f'<ul>{items}</ul>' if items else ''}</section>\n")


def _pair(prefix: str, first: Any, second: Any) -> str | None:
    return None if first is None and second is None else f"{prefix}{first}, {second}"


def _finding(finding: Any) -> str:
    if not isinstance(finding, Mapping):
        return str(finding)
    where = ", ".join(str(finding[k]) for k in ("entity", "field", "event") if finding.get(k) is not None)
    return f"[{finding.get('kind')}] {finding.get('message')}" + (f" ({where})" if where else "")


def _footer(view: Mapping[str, Any]) -> str:
    checkpoint = view.get("checkpoint") or {}
    cut = f"; cut at signed checkpoint size {checkpoint['size']}, root {checkpoint['root']}" if checkpoint else ""
    return f"mlflow-provenance lineage view ({view.get('format')}){cut}. This page loads nothing and runs no script."


def _legend() -> str:
    return ("<p class=\"muted\">Datasets (blue) → transformations (amber) → run (green) → models (violet); "
            "dashed edges: how the run used a dataset; a dashed outline: no dataset record. "
            "Click a node for its details.</p>")


def _upstream_sections(view: Mapping[str, Any]) -> list[str]:
    sections = []
    if view.get("model"):
        sections.append(_model_section(view["model"]))
    sections += [_run_section(view["run"]), _environment_section(view.get("environment")),
                 _datasets_section("Datasets", _lineage_entries(view))]
    if view.get("unverified_inputs"):
        sections.append(_table_section("Inputs without a dataset record (not verifiable)", ["name", "MLflow digest", "reason"],
                                       [[i.get("name"), i.get("mlflow_digest"), i.get("reason")] for i in view["unverified_inputs"]]))
    sections += [_evaluations_section(view.get("evaluations") or []), _models_section(view.get("models") or [])]
    if view.get("model"):
        sections.append(_decisions_section(view.get("decisions") or []))
    return sections


def _downstream_sections(view: Mapping[str, Any]) -> list[str]:
    runs = [[_Code(r["run_id"]), ", ".join(f"{d['name'] or 'unnamed'} [{', '.join(d['contexts']) or 'input'}]"
                                           for d in r["datasets"])] for r in view.get("runs") or []]
    return [_datasets_section("Dataset", [view["dataset"]]),
            _datasets_section(f"Derived datasets ({len(view.get('derived') or [])})", view.get("derived") or []),
            _table_section(f"Runs that used them ({len(runs)})", ["run", "datasets used"], runs, anchor_prefix="run:"),
            _models_section(view.get("models") or [])]


def _lineage_entries(view: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The run's datasets, then ancestors it did not use directly (each once)."""
    seen = {e["digest"] for e in view["datasets"]}
    return [*view["datasets"], *(e for e in view["ancestors"] if e["digest"] not in seen)]


@dataclass(frozen=True)
class _Code:
    """A table cell shown as code."""

    text: Any


def _cell(value: Any) -> str:
    if isinstance(value, _Code):
        return f"<code>{_e(value.text)}</code>"
    return _e(scalar(value)) if value is not None and value != "" else "<span class=\"muted\">—</span>"


def _table_section(title: str, header: list[str], rows: list[list[Any]], *, anchor_prefix: str | None = None) -> str:
    body = "".join(
        f"<tr{_row_anchor(anchor_prefix, row[0])}>{''.join(f'<td>{_cell(v)}</td>' for v in row)}</tr>" for row in rows
    ) or f"<tr><td colspan=\"{len(header)}\" class=\"muted\">none recorded</td></tr>"
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<section><h2>{_e(title)}</h2><table><tr>{head}</tr>{body}</table></section>\n"


def _row_anchor(prefix: str | None, first: Any) -> str:
    if prefix is None:
        return ""
    key = first.text if isinstance(first, _Code) else first
    return f" id=\"{anchor(prefix + str(key))}\""


def _fact_rows(rows: Iterable[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)


def _facts(rows: Iterable[tuple[str, Any]]) -> str:
    return f"<table>{_fact_rows(rows)}</table>"


def _model_section(model: Mapping[str, Any]) -> str:
    return ("<section class=\"card\"><h2>Model version</h2>" + _facts([
        ("model", _Code(model["uri"])), ("stage", model.get("stage")), ("aliases", ", ".join(model.get("aliases") or [])),
        ("owner", model.get("owner")), ("source", _Code(model.get("source"))), ("created", model.get("created")),
    ]) + "</section>\n")


def _run_section(run: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (run.get("params") or {}).items())
    return (f"<section class=\"card\" id=\"{anchor('run:' + run['run_id'])}\"><h2>Run</h2>" + _facts([
        ("run id", _Code(run["run_id"])), ("name", run.get("name")), ("experiment", run.get("experiment")),
        ("status", run.get("status")), ("user", run.get("user")), ("started", run.get("start_time")),
        ("ended", run.get("end_time")), ("params", params),
    ]) + "</section>\n")


def _environment_section(environment: Mapping[str, Any] | None) -> str:
    if not environment:
        return "<section><h2>Environment</h2><p class=\"unmet\">No environment manifest was recorded.</p></section>\n"
    rows = [("manifest", _Code(environment.get("digest"))), ("status", environment.get("status")),
            ("captured at", environment.get("captured_at")), ("reason", environment.get("reason"))]
    rows += [(name, environment.get(name)) for name in ENVIRONMENT_FIELDS]
    return "<section><h2>Environment</h2>" + _facts([r for r in rows if r[1] is not None]) + "</section>\n"


def _datasets_section(title: str, entries: Iterable[Mapping[str, Any]]) -> str:
    cards = "".join(_dataset_card(e) for e in entries) or "<p class=\"muted\">none recorded</p>"
    return f"<section><h2>{_e(title)}</h2>{cards}</section>\n"


def _dataset_card(entry: Mapping[str, Any]) -> str:
    terms = entry.get("license") or {}
    parents = "".join(f"<li>{_e(p.get('name') or 'unnamed')} <code>{_e(p['digest'])}</code></li>" for p in entry["parents"])
    steps = "".join(f"<li>{_step(s)}</li>" for s in entry.get("transformations") or [])
    rows = [
        ("digest", _Code(entry["digest"])),
        *([("used as", ", ".join(entry["contexts"]))] if entry.get("contexts") else []),
        ("license", f"{terms.get('expression')} ({terms.get('kind')})" if terms else None),
        ("source", entry.get("source")), ("owner", entry.get("owner")),
    ]
    derivation = (f"<tr><th>derived from</th><td><ul>{parents}</ul></td></tr>"
                  f"<tr><th>transformations</th><td><ol>{steps}</ol></td></tr>") if parents else ""
    missing = "" if entry.get("recorded") else "<p class=\"unmet\">No dataset record: license and source unknown.</p>"
    return (f"<article class=\"card\" id=\"{anchor('dataset:' + entry['digest'])}\">"
            f"<h3>{_e(entry.get('name') or 'unnamed dataset')}</h3>{missing}"
            f"<table>{_fact_rows(rows)}{derivation}</table></article>")


def _step(step: Mapping[str, Any]) -> str:
    code = step.get("code") or {}
    parameters = json.dumps(step.get("parameters") or {}, sort_keys=True)
    return (f"<strong>{_e(step.get('name'))}</strong>"
            + (f" — code <code>{_e(code.get('reference'))}</code>" if code.get("reference") else "")
            + (f" <code>{_e(code.get('digest'))}</code>" if code.get("digest") else "")
            + f" — parameters <code>{_e(parameters)}</code>")


def _evaluations_section(evaluations: list[Mapping[str, Any]]) -> str:
    rows = []
    for ev in evaluations:
        metrics = ", ".join(f"{k}={v}" for k, v in sorted((ev.get("metrics") or {}).items()))
        thresholds = "; ".join(f"{k} {t.get('operator')} {t.get('value')}: {'met' if t.get('met') else 'NOT met'}"
                               for k, t in sorted((ev.get("thresholds") or {}).items()))
        met = {True: "all met", False: "NOT met", None: "none set"}[ev.get("thresholds_met")]
        rows.append([f"{ev.get('dataset_name') or 'dataset'}", _Code(ev.get("dataset")), metrics,
                     f"{met}{': ' + thresholds if thresholds else ''}", _Code(ev.get("record"))])
    return _table_section(f"Evaluations ({len(rows)})", ["dataset", "digest", "metrics", "thresholds", "record"], rows)


def _models_section(models: list[Mapping[str, Any]]) -> str:
    rows = [[_Code(m["uri"]), "registered version" if m["kind"] == "model_version" else "logged model", _Code(m["run_id"])]
            for m in models]
    return _table_section(f"Models ({len(rows)})", ["model", "kind", "from run"], rows, anchor_prefix="model:")


def _decisions_section(decisions: list[Mapping[str, Any]]) -> str:
    rows = [[d.get("decision"), f"{d.get('target_kind')} {d.get('target')}", d.get("time"), d.get("actor"),
             _Code(d.get("policy")), _Code(f"{d.get('record')} (event #{d.get('seq')})")] for d in decisions]
    return _table_section(f"Gate decisions ({len(rows)})", ["decision", "target", "time", "actor", "policy", "signed record"], rows)


def anchor(node_id: str) -> str:
    """The HTML id of a node's details: derived from its id, so user text never reaches an attribute unescaped."""
    return "n-" + hashlib.sha256(node_id.encode("utf-8")).hexdigest()[:16]


# --- the graph: a layered layout, drawn as inline SVG ------------------------------------------------------
#
# Sugiyama-style, kept small: longest-path layers (runs share a column, models the next), an
# arrow spanning several columns passes through a waypoint in each (so it never crosses a
# box), and each column is ordered by the mean row of its boxes' predecessors.

_WIDTH, _HEIGHT, _STEP_HEIGHT = 180, 48, 36
_COLUMN_GAP, _ROW_GAP, _MARGIN = 70, 20, 20
_KIND_ORDER = {"dataset": 0, "transformation": 1, "run": 2, "model": 3}
_WAYPOINT = "waypoint"


@dataclass(frozen=True)
class _Box:
    id: str
    kind: str
    label: str = ""
    detail: str = ""
    subject: bool = False
    recorded: bool = True
    link: str | None = None
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> int:
        return {"transformation": _STEP_HEIGHT, _WAYPOINT: 0}.get(self.kind, _HEIGHT)

    @property
    def centre(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class _Arrow:
    source: str
    target: str
    kind: str
    label: str


def svg(graph: Mapping[str, Any]) -> str:
    """The graph drawn as an inline ``<svg>`` (no external references, no scripts)."""
    boxes, arrows = _drawing(graph)
    layer = _layers(boxes, arrows)
    routes, waypoints = _routes(arrows, layer)
    placed, width, height = _place(boxes + waypoints, routes, layer)
    parts = [f"<svg role=\"img\" aria-label=\"lineage graph\" width=\"{width}\" height=\"{height}\" "
             f"viewBox=\"0 0 {width} {height}\">"]
    parts += [_svg_route([placed[i] for i in chain], arrow) for arrow, chain in routes]
    parts += [_svg_box(b) for b in placed.values() if b.kind != _WAYPOINT]
    parts.append("</svg>")
    return "".join(parts)


def _drawing(graph: Mapping[str, Any]) -> tuple[list[_Box], list[_Arrow]]:
    """The view's nodes as boxes, with each distinct derivation (same parents, same steps)
    drawn as one transformation box between the parents and the datasets it produced."""
    ids = {n["id"] for n in graph["nodes"]}
    boxes = [_Box(n["id"], n["kind"], n["label"], node_detail(n), bool(n.get("subject")), n.get("recorded", True),
                  anchor(n["id"])) for n in graph["nodes"]]
    arrows: list[_Arrow] = []
    derivations: dict[str, dict[str, Any]] = {}
    for edge in graph["edges"]:
        if edge["source"] not in ids or edge["target"] not in ids:
            continue
        if edge["kind"] != "derived":
            arrows.append(_Arrow(edge["source"], edge["target"], edge["kind"], edge.get("label") or ""))
            continue
        derivation = derivations.setdefault(edge["target"], {"parents": [], "steps": edge.get("transformations") or []})
        derivation["parents"].append(edge["source"])
    steps: dict[str, _Box] = {}
    for child, derivation in derivations.items():
        key = json.dumps([sorted(derivation["parents"]), derivation["steps"]], sort_keys=True)
        step_id = "transformation:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        if step_id not in steps:
            steps[step_id] = _Box(step_id, "transformation", transformation_names(derivation["steps"]))
            arrows += [_Arrow(parent, step_id, "derived", "") for parent in sorted(derivation["parents"])]
        arrows.append(_Arrow(step_id, child, "derived", ""))
    return boxes + list(steps.values()), arrows


def _layers(boxes: list[_Box], arrows: list[_Arrow]) -> dict[str, int]:
    """Longest-path layering (Kahn's order; a box on a cycle stays where it was reached),
    then every run in one column and the models in the next."""
    layer = {b.id: 0 for b in boxes}
    successors: dict[str, list[str]] = {b.id: [] for b in boxes}
    indegree = {b.id: 0 for b in boxes}
    for a in arrows:
        successors[a.source].append(a.target)
        indegree[a.target] += 1
    ready = [b.id for b in boxes if indegree[b.id] == 0]
    while ready:
        current = ready.pop()
        for nxt in successors[current]:
            layer[nxt] = max(layer[nxt], layer[current] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    kinds = {b.id: b.kind for b in boxes}
    run_column = max((layer[i] for i, k in kinds.items() if k == "run"), default=None)
    if run_column is not None:
        for node, kind in kinds.items():
            if kind in ("run", "model"):
                layer[node] = run_column + (kind == "model")
    return layer


def _routes(arrows: list[_Arrow], layer: dict[str, int]) -> tuple[list[tuple[_Arrow, list[str]]], list[_Box]]:
    """Each arrow as the chain of boxes it passes: its ends, and a waypoint in every column
    between them (added to ``layer``)."""
    routes, waypoints = [], []
    for number, arrow in enumerate(arrows):
        chain = [arrow.source]
        for column in range(layer[arrow.source] + 1, layer[arrow.target]):
            waypoint = _Box(f"{_WAYPOINT}:{number}:{column}", _WAYPOINT)
            layer[waypoint.id] = column
            waypoints.append(waypoint)
            chain.append(waypoint.id)
        routes.append((arrow, [*chain, arrow.target]))
    return routes, waypoints


def _place(boxes: list[_Box], routes: list[tuple[_Arrow, list[str]]], layer: dict[str, int]) -> tuple[dict[str, _Box], int, int]:
    """Columns by layer; rows ordered by the mean row of each box's predecessors (one sweep)."""
    columns: dict[int, list[str]] = {}
    for box in sorted(boxes, key=lambda b: (_KIND_ORDER.get(b.kind, 9), b.label, b.id)):
        columns.setdefault(layer[box.id], []).append(box.id)
    predecessors: dict[str, list[str]] = {}
    for _arrow, chain in routes:
        for before, after in zip(chain, chain[1:]):
            predecessors.setdefault(after, []).append(before)
    row: dict[str, float] = {}
    for column in sorted(columns):
        ids = columns[column]
        for i, node in enumerate(ids):
            above = [row[p] for p in predecessors.get(node, []) if p in row]
            row[node] = sum(above) / len(above) if above else i - (len(ids) - 1) / 2
        ids.sort(key=lambda n: row[n])
        row.update({node: i - (len(ids) - 1) / 2 for i, node in enumerate(ids)})
    pitch = _HEIGHT + _ROW_GAP
    height = _MARGIN * 2 + max((len(ids) for ids in columns.values()), default=1) * pitch - _ROW_GAP
    by_id = {b.id: b for b in boxes}
    placed = {node: replace(by_id[node], x=_MARGIN + column * (_WIDTH + _COLUMN_GAP),
                            y=height / 2 + row[node] * pitch - by_id[node].height / 2)
              for column, ids in columns.items() for node in ids}
    width = _MARGIN * 2 + (max(columns, default=0) + 1) * (_WIDTH + _COLUMN_GAP) - _COLUMN_GAP
    return placed, int(width), int(height)


def _svg_route(chain: list[_Box], arrow: _Arrow) -> str:
    """One smooth path through the chain's waypoints, an arrowhead, and the label on its last leg."""
    x, y = chain[0].x + _WIDTH, chain[0].centre
    path = [f"M{x:.1f},{y:.1f}"]
    for box in chain[1:]:
        x2, y2 = box.x, box.centre
        bend = max(25.0, abs(x2 - x) / 2)
        path.append(f"C{x + bend:.1f},{y:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
        middle = ((x + x2) / 2, (y + y2) / 2)
        x, y = (box.x + _WIDTH, box.centre) if box.kind == _WAYPOINT else (x2, y2)
        if box.kind == _WAYPOINT:
            path.append(f"L{x:.1f},{y:.1f}")
    head = f"<polygon fill=\"#6b7280\" points=\"{x:.1f},{y:.1f} {x - 8:.1f},{y - 4:.1f} {x - 8:.1f},{y + 4:.1f}\"/>"
    label = (f"<text class=\"edge-label\" x=\"{middle[0]:.1f}\" y=\"{middle[1] - 4:.1f}\" text-anchor=\"middle\">"
             f"{_e(_clip(arrow.label, 24))}</text>") if arrow.label else ""
    return f"<path class=\"edge {_e(arrow.kind)}\" d=\"{' '.join(path)}\"/>{head}{label}"


def _svg_box(box: _Box) -> str:
    classes = " ".join(c for c in (box.kind, "subject" if box.subject else "", "" if box.recorded else "unrecorded") if c)
    x, y, h = box.x, box.y, box.height
    if box.kind == "run":
        shape = f"<ellipse class=\"{classes}\" cx=\"{x + _WIDTH / 2:.1f}\" cy=\"{y + h / 2:.1f}\" rx=\"{_WIDTH / 2}\" ry=\"{h / 2}\"/>"
    elif box.kind == "transformation":
        points = f"{x + 12:.1f},{y:.1f} {x + _WIDTH:.1f},{y:.1f} {x + _WIDTH - 12:.1f},{y + h:.1f} {x:.1f},{y + h:.1f}"
        shape = f"<polygon class=\"{classes}\" points=\"{points}\"/>"
    else:
        radius = 12 if box.kind == "dataset" else 3
        shape = f"<rect class=\"{classes}\" x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{_WIDTH}\" height=\"{h}\" rx=\"{radius}\"/>"
    tooltip = f"<title>{_e(box.kind)}: {_e(box.label)}{_e(' ' + box.detail if box.detail else '')}</title>"
    text = _svg_text(box, x + _WIDTH / 2, y + h / 2)
    body = f"<g>{tooltip}{shape}{text}</g>"
    return f"<a href=\"#{box.link}\">{body}</a>" if box.link else body


def _svg_text(box: _Box, cx: float, cy: float) -> str:
    """The label (and the identifier under it), clipped to the box; the full text is in the box's title."""
    label = _clip(box.label, 24)
    if not box.detail:
        return f"<text class=\"label\" x=\"{cx:.1f}\" y=\"{cy + 4:.1f}\" text-anchor=\"middle\">{_e(label)}</text>"
    return (f"<text class=\"label\" x=\"{cx:.1f}\" y=\"{cy - 3:.1f}\" text-anchor=\"middle\">{_e(label)}</text>"
            f"<text class=\"detail\" x=\"{cx:.1f}\" y=\"{cy + 12:.1f}\" text-anchor=\"middle\">{_e(_clip(box.detail, 27))}</text>")


def _clip(text: str, limit: int) -> str:
    """Shortened *before* escaping, so an entity is never cut in half."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
