"""Lineage from the ledger: datasets, their parents and transformations, the runs that
used them and the models those runs produced — queried upstream and downstream.

Built from the records bound into ledger events (dataset records with their parents,
dataset inputs, evaluation records) and from MLflow's own tables for models (logged
models' source runs, registered versions' runs). It reads what ``verify`` checks, so a
lineage answer is as trustworthy as a clean verify of the same database.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlalchemy as sa

from mlflow_provenance import ledger_schema
from mlflow_provenance.sql import query


@dataclass
class DatasetNode:
    digest: str
    names: set[str] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)  # the dataset record documents
    parents: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    runs: dict[str, set[str]] = field(default_factory=dict)  # run id → contexts

    def to_dict(self) -> dict[str, Any]:
        latest = self.records[-1] if self.records else {}
        return {
            "digest": self.digest,
            "names": sorted(self.names),
            "license": latest.get("license"),
            "source": latest.get("source"),
            "owner": latest.get("owner"),
            "parents": sorted(self.parents),
            "transformations": latest.get("transformations", []),
            "runs": {run: sorted(contexts) for run, contexts in sorted(self.runs.items())},
        }


@dataclass
class LineageGraph:
    datasets: dict[str, DatasetNode] = field(default_factory=dict)
    run_datasets: dict[str, set[str]] = field(default_factory=dict)  # run → data digests
    run_models: dict[str, set[str]] = field(default_factory=dict)  # run → "m-…" / "models:/name/version"
    model_runs: dict[str, set[str]] = field(default_factory=dict)
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run → evaluation summaries
    unverified_inputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run → plain inputs

    def node(self, digest: str) -> DatasetNode:
        if digest not in self.datasets:
            self.datasets[digest] = DatasetNode(digest)
        return self.datasets[digest]

    # --- queries ---------------------------------------------------------------------------

    def ancestors(self, digest: str) -> list[str]:
        """Every dataset ``digest`` was derived from, transitively (nearest first)."""
        return _walk(digest, lambda d: self.datasets[d].parents if d in self.datasets else ())

    def descendants(self, digest: str) -> list[str]:
        """Every dataset derived from ``digest``, transitively (nearest first)."""
        return _walk(digest, lambda d: self.datasets[d].children if d in self.datasets else ())

    def upstream_of_dataset(self, digest: str) -> dict[str, Any]:
        return {
            "dataset": self._describe(digest),
            "ancestors": [self._describe(d) for d in self.ancestors(digest)],
        }

    def downstream_of_dataset(self, digest: str) -> dict[str, Any]:
        """The datasets derived from ``digest``, the runs that used it or any of them, and
        the models those runs produced."""
        family = [digest, *self.descendants(digest)]
        runs = sorted({run for d in family if d in self.datasets for run in self.datasets[d].runs})
        models = sorted({m for run in runs for m in self.run_models.get(run, ())})
        return {
            "dataset": self._describe(digest),
            "descendants": [self._describe(d) for d in family[1:]],
            "runs": runs,
            "models": models,
        }

    def upstream_of_run(self, run_id: str) -> dict[str, Any]:
        used = sorted(self.run_datasets.get(run_id, ()))
        ancestors = sorted({a for d in used for a in self.ancestors(d)} - set(used))
        return {
            "run": run_id,
            "datasets": [self._describe(d) for d in used],
            "ancestors": [self._describe(d) for d in ancestors],
            "evaluations": self.evaluations.get(run_id, []),
            "unverified_inputs": self.unverified_inputs.get(run_id, []),
        }

    def _describe(self, digest: str) -> dict[str, Any]:
        if digest not in self.datasets:
            return {"digest": digest, "recorded": False}
        return {**self.datasets[digest].to_dict(), "recorded": bool(self.datasets[digest].records)}


def _walk(start: str, neighbours: Any) -> list[str]:
    seen, order, queue = {start}, [], deque([start])
    while queue:
        for nxt in sorted(neighbours(queue.popleft())):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                queue.append(nxt)
    return order


def load_graph(conn: sa.engine.Connection) -> LineageGraph:
    """The lineage recorded in one database's ledger (and its MLflow model tables)."""
    graph = LineageGraph()
    blobs = dict(conn.execute(sa.select(ledger_schema.prov_blobs.c.digest, ledger_schema.prov_blobs.c.content)).all())
    rows = query(conn, "SELECT body FROM prov_events WHERE body LIKE ? ORDER BY seq", '%"records":%')
    for (body,) in rows:
        try:
            payload = json.loads(body).get("payload") or {}
        except ValueError:
            continue  # verify reports malformed events
        for record in payload.get("records") or ():
            _add(graph, record, blobs)
    _add_models(conn, graph)
    return graph


def _document(blobs: dict[str, Any], digest: Any) -> dict[str, Any]:
    content = blobs.get(digest)
    if content is None:
        return {}
    try:
        doc = json.loads(bytes(content))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _add(graph: LineageGraph, record: dict[str, Any], blobs: dict[str, Any]) -> None:
    kind = record.get("kind")
    if kind == "dataset":
        doc = _document(blobs, record.get("blob"))
        digest = record.get("data_digest") or doc.get("digest")
        if not digest:
            return
        node = graph.node(digest)
        if doc:
            node.records.append(doc)
            node.names.add(doc.get("name", ""))
        for parent in record.get("parents") or doc.get("parents") or ():
            node.parents.add(parent)
            graph.node(parent).children.add(digest)
        run = record.get("run_id")
        if run:
            node.runs.setdefault(run, set()).add(record.get("context") or doc.get("context") or "")
            graph.run_datasets.setdefault(run, set()).add(digest)
    elif kind == "evaluation":
        doc = _document(blobs, record.get("blob"))
        run = record.get("run_id") or doc.get("run_id")
        if run:
            graph.evaluations.setdefault(run, []).append({
                "record": record.get("blob"),
                "dataset": record.get("dataset"),
                "metrics": doc.get("metrics"),
                "thresholds_met": record.get("thresholds_met"),
                "model": doc.get("model"),
                "slice": doc.get("slice"),
            })
    elif kind == "mlflow-dataset-input":
        run = record.get("run_id")
        if not run:
            return
        if record.get("full_digest"):
            digest = record["full_digest"]
            graph.node(digest).names.add(record.get("name") or "")
            graph.node(digest).runs.setdefault(run, set()).add("")
            graph.run_datasets.setdefault(run, set()).add(digest)
        else:
            graph.unverified_inputs.setdefault(run, []).append(
                {"name": record.get("name"), "mlflow_digest": record.get("mlflow_digest"), "reason": record.get("reason")}
            )


def _add_models(conn: sa.engine.Connection, graph: LineageGraph) -> None:
    tables = set(sa.inspect(conn).get_table_names())

    def link(run: Any, model: str) -> None:
        if run:
            graph.run_models.setdefault(str(run), set()).add(model)
            graph.model_runs.setdefault(model, set()).add(str(run))

    if "logged_models" in tables:
        for model_id, run in conn.exec_driver_sql("SELECT model_id, source_run_id FROM logged_models"):
            link(run, model_id)
    if "model_versions" in tables:
        for name, version, run in conn.exec_driver_sql("SELECT name, version, run_id FROM model_versions"):
            link(run, f"models:/{name}/{version}")


def runs_of_model(graph: LineageGraph, model: str) -> list[str]:
    return sorted(graph.model_runs.get(model, ()))


def describe_many(graph: LineageGraph, digests: Iterable[str]) -> list[dict[str, Any]]:
    return [graph._describe(d) for d in digests]
