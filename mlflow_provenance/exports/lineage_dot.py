"""Lineage views as Graphviz DOT (:mod:`.lineage_view`): datasets as cylinders, runs as
ellipses, model versions as 3-D boxes, logged models as diamonds; edges labelled with the
transformations or how a run used a dataset."""

from __future__ import annotations

import unicodedata
from typing import Any, Mapping


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
