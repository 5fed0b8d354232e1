"""A snapshot as a W3C PROV document (PROV-DM, https://www.w3.org/TR/prov-dm/), built with
the ``prov`` package and written as PROV-JSON or as PROV-O in Turtle.

The mapping (PROV-DM section numbers in brackets):

* **entities** [§5.1.1]: the datasets the run used and their ancestors (digest, license,
  source, owner), the environment manifest, the logged model and the model version, the
  evaluation records, the promotion decisions and the policy they applied, every sealed
  ledger event, the checkpoint (a ``prov:Collection`` of those events [§5.6]) and this
  export itself;
* **activities** [§5.1.2]: the training run (start/end times, params and latest metrics as
  attributes), each dataset transformation, each promotion;
* **agents** [§5.3.1]: the ledger events' actors (MLflow users) and the owners of datasets
  and of the registered model;
* **relations**: ``used`` [§5.1.4], ``wasGeneratedBy`` [§5.1.3], ``wasDerivedFrom`` with the
  transformation as activity [§5.2.1], ``wasInformedBy`` between the steps of a multi-step
  transformation [§5.1.5], ``wasAssociatedWith`` [§5.3.3], ``wasAttributedTo`` [§5.3.2],
  ``hadMember`` [§5.6.2].

Only sealed events (those the checkpoint covers) are described; the model and run fields
are as the snapshot read them.

Identifiers live in a namespace of the ledger's origin
(:func:`origin_namespace`), so two databases never share an id; the vocabulary of
attributes and types is the project's (:data:`PROJECT_NS`). The export entity is
``wasDerivedFrom`` the checkpoint entity, which names the checkpoint's origin, tree size
and root hash: the document says which signed checkpoint it was cut from.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote

from prov.model import PROV, PROV_LABEL, PROV_ROLE, PROV_TYPE, Namespace, ProvDocument, QualifiedName

from mlflow_provenance.environment.manifest import Manifest
from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.exports.snapshot import Snapshot

__all__ = [
    "ORIGIN_BASE", "PROJECT_NS", "origin_namespace", "to_prov_document", "write_prov_json", "write_prov_turtle",
]  # fmt: skip

#: The project's vocabulary: attribute names (``mlprov:digest``…) and types (``mlprov:Dataset``…).
PROJECT_NS = "https://mlflow-provenance.dev/ns#"
#: Identifiers of one ledger live under ``ORIGIN_BASE + quote(origin) + "/"``.
ORIGIN_BASE = "https://mlflow-provenance.dev/origin/"
PARAM_NS = "https://mlflow-provenance.dev/ns/param#"
METRIC_NS = "https://mlflow-provenance.dev/ns/metric#"

_ATTRIBUTED_OWNER_TAG = "owner"


def origin_namespace(origin: str) -> str:
    """The namespace URI of a ledger's identifiers: its origin line, percent-encoded."""
    return ORIGIN_BASE + quote(origin, safe="") + "/"


def to_prov_document(snapshot: Snapshot) -> ProvDocument:
    """The provenance in ``snapshot`` as a PROV document (see the module docstring).

    Raises:
        ConfigurationError: the snapshot names no checkpoint (nothing to cite).
    """
    if not snapshot.checkpoint or not snapshot.checkpoint.get("root"):
        raise ConfigurationError("the snapshot names no signed checkpoint: take it with take_snapshot()")
    graph = _Graph.start(snapshot.origin)
    _add_checkpoint(graph, snapshot)
    documents = snapshot.documents()
    run_id = (snapshot.run or {}).get("run_id")
    if snapshot.run:
        _add_run(graph, snapshot.run)
    _add_environment(graph, snapshot, documents, run_id)
    _add_datasets(graph, snapshot, run_id)
    if snapshot.model:
        _add_model(graph, snapshot.model, run_id)
    _add_evaluations(graph, snapshot, documents, run_id)
    _add_policies(graph, snapshot)
    _add_promotions(graph, snapshot, documents)
    return graph.doc


def write_prov_json(doc: ProvDocument, path: str | os.PathLike[str]) -> None:
    """Write ``doc`` as PROV-JSON (https://openprovenance.org/prov-json/), UTF-8.

    Raises:
        ConfigurationError: ``path`` cannot be written.
    """
    _write(path, doc.serialize(format="json", indent=2) or "")


def write_prov_turtle(doc: ProvDocument, path: str | os.PathLike[str]) -> None:
    """Write ``doc`` as PROV-O (https://www.w3.org/TR/prov-o/) in Turtle, UTF-8.

    Raises:
        ConfigurationError: ``path`` cannot be written.
    """
    _write(path, doc.serialize(format="rdf", rdf_format="turtle") or "")


def _write(path: str | os.PathLike[str], text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


# --- the document and its identifiers ------------------------------------------------------------


@dataclass
class _Graph:
    """The document being built, its namespaces, and the ids already added (no duplicates)."""

    doc: ProvDocument
    ns: Namespace  # identifiers of this ledger
    voc: Namespace  # the project's vocabulary
    param: Namespace
    metric: Namespace
    added: set[QualifiedName]

    @classmethod
    def start(cls, origin: str) -> _Graph:
        doc = ProvDocument()
        return cls(
            doc,
            doc.add_namespace("ledger", origin_namespace(origin)),
            doc.add_namespace("mlprov", PROJECT_NS),
            doc.add_namespace("param", PARAM_NS),
            doc.add_namespace("metric", METRIC_NS),
            set(),
        )

    def id(self, kind: str, key: str) -> QualifiedName:
        """``ledger:<kind>/<key>`` with ``sha256:`` digests written ``sha256-…``."""
        return self.ns[f"{kind}/{quote(key.replace('sha256:', 'sha256-'), safe='-._~')}"]

    def entity(self, qname: QualifiedName, attributes: Iterable[tuple[Any, Any]]) -> QualifiedName:
        if qname not in self.added:
            self.added.add(qname)
            self.doc.entity(qname, _present(attributes))
        return qname

    def activity(self, qname: QualifiedName, start: dt.datetime | None, end: dt.datetime | None,
                 attributes: Iterable[tuple[Any, Any]]) -> QualifiedName:
        if qname not in self.added:
            self.added.add(qname)
            self.doc.activity(qname, start, end, _present(attributes))
        return qname

    def agent(self, kind: str, name: str, attributes: Iterable[tuple[Any, Any]]) -> QualifiedName:
        qname = self.id(kind, name)
        if qname not in self.added:
            self.added.add(qname)
            self.doc.agent(qname, _present([(PROV_LABEL, name), *attributes]))
        return qname

    def actor(self, name: str) -> QualifiedName:
        """An MLflow user who wrote to the ledger (or started the run)."""
        return self.agent("agent", name, [(PROV_TYPE, self.voc["MlflowUser"])])

    def owner(self, name: str, of: str) -> QualifiedName:
        """An owner named in a dataset record or a registered model's ``owner`` tag."""
        return self.agent("owner", name, [(PROV_TYPE, self.voc["Owner"]), (self.voc["owns"], of)])


def _present(attributes: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Attributes without the empty ones (PROV has no null)."""
    return [(key, value) for key, value in attributes if value is not None and value != ""]


def _instant(millis: Any) -> dt.datetime | None:
    """MLflow's epoch milliseconds as an aware UTC datetime (xsd:dateTime)."""
    if millis is None:
        return None
    return dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.timezone.utc)


def _iso(text: Any) -> dt.datetime | None:
    """An ISO 8601 time from a ledger document; ``None`` when absent or unreadable (``verify``
    reports malformed documents, an export only leaves the attribute out)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- checkpoint, events, export ------------------------------------------------------------------


def _add_checkpoint(graph: _Graph, snapshot: Snapshot) -> None:
    """The checkpoint as a collection of the sealed events [PROV-DM §5.6], and the export
    derived from it [§5.2.1]."""
    checkpoint = snapshot.checkpoint
    voc = graph.voc
    cp = graph.entity(graph.id("checkpoint", str(checkpoint["size"])), [
        (PROV_TYPE, PROV["Collection"]), (PROV_TYPE, voc["Checkpoint"]),
        (voc["origin"], snapshot.origin), (voc["treeSize"], int(checkpoint["size"])),
        (voc["rootHash"], checkpoint["root"]),
        (voc["rootHashAlgorithm"], "RFC 9162 Merkle tree hash, SHA-256"),
        (voc["signedNote"], checkpoint.get("note")),
    ])
    for event in snapshot.events:
        body = json.loads(event["body"])
        entity = body.get("entity") or {}
        qname = graph.entity(graph.id("event", str(event["seq"])), [
            (PROV_TYPE, voc["LedgerEvent"]), (voc["seq"], int(event["seq"])), (voc["eventHash"], event["hash"]),
            (voc["operation"], body.get("op")), (voc["entityType"], entity.get("type")),
            (voc["entityId"], entity.get("id")), (voc["time"], _iso(body.get("time"))),
        ])
        graph.doc.hadMember(cp, qname)
        if body.get("actor"):
            graph.doc.wasAttributedTo(qname, graph.actor(str(body["actor"])))
    export = graph.entity(graph.id("export", f"{checkpoint['size']}-{checkpoint['root']}"), [
        (PROV_TYPE, voc["ProvenanceExport"]), (voc["format"], "W3C PROV"),
        (voc["origin"], snapshot.origin), (voc["checkpointSize"], int(checkpoint["size"])),
        (voc["checkpointRoot"], checkpoint["root"]),
    ])
    graph.doc.wasDerivedFrom(export, cp)


# --- the run and its environment -----------------------------------------------------------------


def _add_run(graph: _Graph, run: dict[str, Any]) -> None:
    """The training run [PROV-DM §5.1.2]: params and latest metrics as attributes."""
    voc = graph.voc
    attributes: list[tuple[Any, Any]] = [
        (PROV_TYPE, voc["TrainingRun"]), (PROV_LABEL, run.get("name")), (voc["runId"], run["run_id"]),
        (voc["experimentId"], run.get("experiment_id")), (voc["experimentName"], run.get("experiment_name")),
        (voc["status"], run.get("status")), (voc["artifactUri"], run.get("artifact_uri")),
    ]
    attributes += [(graph.param[_local(key)], str(value)) for key, value in sorted(run["params"].items())]
    attributes += [(graph.metric[_local(key)], float(m["value"]))
                   for key, m in sorted(run["metrics"].items()) if _finite(m.get("value"))]
    qname = graph.activity(graph.id("run", run["run_id"]), _instant(run.get("start_time")),
                           _instant(run.get("end_time")), attributes)
    if run.get("user"):
        graph.doc.wasAssociatedWith(qname, graph.actor(str(run["user"])))


def _local(key: str) -> str:
    """An MLflow param or metric key as the local part of a qualified name (percent-encoded)."""
    return quote(key, safe="-._~")


def _finite(value: Any) -> bool:
    """A number PROV can carry as xsd:double (MLflow metrics may be NaN or infinite)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _add_environment(graph: _Graph, snapshot: Snapshot, documents: dict[str, Any], run_id: str | None) -> None:
    """The environment manifest(s) the run recorded, used by the run; the manifest's one-line
    summaries (python, os, gpu, image, git commit) as attributes."""
    voc = graph.voc
    for record in snapshot.records("environment-manifest"):
        digest = record.get("blob")
        if not isinstance(digest, str):
            continue
        document = documents.get(digest) or {}
        content = base64.b64decode((snapshot.blobs.get(digest) or {}).get("content") or "")
        summary = Manifest(document, content, digest).summary_tags() if document else {}
        qname = graph.entity(graph.id("environment", digest), [
            (PROV_TYPE, voc["EnvironmentManifest"]), (voc["digest"], digest), (voc["status"], record.get("status")),
            (voc["capturedAt"], document.get("captured_at")),
            *[(voc[key.rsplit(".", 1)[1]], value) for key, value in sorted(summary.items())
              if key.rsplit(".", 1)[1] in ("python", "os", "gpu", "image", "git_commit")],
        ])
        if run_id:
            graph.doc.used(graph.id("run", run_id), qname, None, None, {PROV_ROLE: "environment"})


# --- datasets and their derivations --------------------------------------------------------------


def _add_datasets(graph: _Graph, snapshot: Snapshot, run_id: str | None) -> None:
    """Datasets the run used and their ancestors; each derivation through its
    transformations [PROV-DM §5.2.1]."""
    record_of = {r.get("data_digest"): r.get("blob") for r in snapshot.records("dataset")}
    described = [*snapshot.lineage.get("datasets", []), *snapshot.lineage.get("ancestors", [])]
    for dataset in described:
        _dataset_entity(graph, dataset, record_of.get(dataset["digest"]))
    for dataset in described:
        _add_derivations(graph, dataset)
        runs = dataset.get("runs") or {}
        if run_id and run_id in runs:
            roles = [(PROV_ROLE, context) for context in runs[run_id] if context] or [(PROV_ROLE, "input")]
            graph.doc.used(graph.id("run", run_id), graph.id("dataset", dataset["digest"]), None, None, roles)


def _dataset_entity(graph: _Graph, dataset: dict[str, Any], record: str | None) -> QualifiedName:
    """A dataset with what its record says: digest, names, license, source, owner (an agent
    it is attributed to [§5.3.2])."""
    voc = graph.voc
    license_ = dataset.get("license") or {}
    source = dataset.get("source")
    owner = dataset.get("owner")
    qname = graph.entity(graph.id("dataset", dataset["digest"]), [
        (PROV_TYPE, voc["Dataset"]), *[(PROV_LABEL, name) for name in dataset.get("names", []) if name],
        (voc["digest"], dataset["digest"]), (voc["record"], record),
        (voc["license"], license_.get("expression") if isinstance(license_, dict) else str(license_)),
        (voc["licenseKind"], license_.get("kind") if isinstance(license_, dict) else None),
        (voc["source"], _scalar(source)),
        (voc["owner"], owner), (voc["recorded"], bool(dataset.get("recorded", True))),
    ])
    if owner:
        graph.doc.wasAttributedTo(qname, graph.owner(str(owner), dataset["digest"]))
    return qname


def _bare_dataset(graph: _Graph, digest: str) -> QualifiedName:
    """A dataset known only by its digest (a parent or evaluation set without a record here)."""
    return graph.entity(graph.id("dataset", digest), [(PROV_TYPE, graph.voc["Dataset"]), (graph.voc["digest"], digest)])


def _add_derivations(graph: _Graph, dataset: dict[str, Any]) -> None:
    """``wasDerivedFrom`` each parent [PROV-DM §5.2.1], through the transformations.

    One step is the derivation's activity. Several steps form a pipeline: the first used
    the parents, each next one ``wasInformedBy`` the one before [§5.1.5], the last
    generated the dataset — an entity has one generation (PROV-CONSTRAINTS
    generation-uniqueness), so no single step is the activity of the whole derivation.
    """
    child = graph.id("dataset", dataset["digest"])
    parents = [_bare_dataset(graph, parent) for parent in dataset.get("parents") or []]
    steps = [_transformation(graph, dataset["digest"], index, step)
             for index, step in enumerate(dataset.get("transformations") or [])]
    for parent in parents:
        graph.doc.wasDerivedFrom(child, parent, steps[0] if len(steps) == 1 else None)
        if steps:
            graph.doc.used(steps[0], parent)
    for earlier, later in zip(steps, steps[1:]):
        graph.doc.wasInformedBy(later, earlier)
    if steps:
        graph.doc.wasGeneratedBy(child, steps[-1])


def _transformation(graph: _Graph, child: str, index: int, step: dict[str, Any]) -> QualifiedName:
    """One step of a dataset record's ``transformations`` as an activity."""
    voc = graph.voc
    code = step.get("code") or {}
    return graph.activity(graph.id("transformation", f"{child}/{index}"), None, None, [
        (PROV_TYPE, voc["Transformation"]), (PROV_LABEL, step.get("name")),
        (voc["codeReference"], code.get("reference")), (voc["codeDigest"], code.get("digest")),
        (voc["parameters"], json.dumps(step.get("parameters") or {}, sort_keys=True)),
        (voc["description"], step.get("description")),
    ])


# --- models, evaluations, promotions -------------------------------------------------------------


def _add_model(graph: _Graph, model: dict[str, Any], run_id: str | None) -> None:
    """The logged model and the registered version, both generated by the run."""
    voc = graph.voc
    run = graph.id("run", run_id) if run_id else None
    created = _instant(model.get("created"))
    version = graph.entity(graph.id("model", f"{model['name']}/{model['version']}"), [
        (PROV_TYPE, voc["ModelVersion"]), (PROV_LABEL, f"{model['name']} version {model['version']}"),
        (voc["registeredModel"], model["name"]), (voc["version"], str(model["version"])),
        (voc["stage"], model.get("stage")), (voc["source"], model.get("source")),
        *[(voc["alias"], alias) for alias in model.get("aliases") or []],
    ])
    if run is not None:
        graph.doc.wasGeneratedBy(version, run, created)
    if model.get("model_id"):
        logged = graph.entity(graph.id("logged-model", model["model_id"]), [
            (PROV_TYPE, voc["LoggedModel"]), (voc["modelId"], model["model_id"]),
        ])
        if run is not None:
            graph.doc.wasGeneratedBy(logged, run)
        graph.doc.wasDerivedFrom(version, logged, run)
    owner = (model.get("registered_model_tags") or {}).get(_ATTRIBUTED_OWNER_TAG)
    if owner:
        graph.doc.wasAttributedTo(version, graph.owner(str(owner), f"models:/{model['name']}"))


def _add_evaluations(graph: _Graph, snapshot: Snapshot, documents: dict[str, Any], run_id: str | None) -> None:
    """Evaluation records: generated by the run, derived from their dataset (and model)."""
    voc = graph.voc
    model_id = (snapshot.model or {}).get("model_id")
    for record in snapshot.records("evaluation"):
        digest = record.get("blob")
        if not isinstance(digest, str):
            continue
        document = documents.get(digest) or {}
        metrics = document.get("metrics") or {}
        qname = graph.entity(graph.id("evaluation", digest), [
            (PROV_TYPE, voc["EvaluationRecord"]), (voc["digest"], digest),
            (voc["thresholdsMet"], record.get("thresholds_met")), (voc["seed"], _scalar(document.get("seed"))),
            (voc["slice"], _scalar(document.get("slice"))),
            *[(graph.metric[_local(k)], float(v)) for k, v in sorted(metrics.items()) if _finite(v)],
        ])
        if run_id and record.get("run_id") in (None, run_id):
            graph.doc.wasGeneratedBy(qname, graph.id("run", run_id))
        dataset = record.get("dataset") or (document.get("dataset") or {}).get("digest")
        if isinstance(dataset, str):
            graph.doc.wasDerivedFrom(qname, _bare_dataset(graph, dataset))
        evaluated = (document.get("model") or {}).get("model_id")
        if evaluated and evaluated == model_id:
            graph.doc.wasDerivedFrom(qname, graph.id("logged-model", evaluated))


def _scalar(value: Any) -> Any:
    """A JSON value as a PROV literal: scalars as they are, structures as JSON text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, sort_keys=True)


def _add_policies(graph: _Graph, snapshot: Snapshot) -> None:
    """The promotion policies recorded in the ledger (what the gate applied)."""
    for record in snapshot.records("policy"):
        digest = record.get("blob")
        if isinstance(digest, str):
            graph.entity(graph.id("policy", digest), [
                (PROV_TYPE, graph.voc["Policy"]), (graph.voc["digest"], digest),
                (graph.voc["policyOrigin"], record.get("origin")),
            ])


def _add_promotions(graph: _Graph, snapshot: Snapshot, documents: dict[str, Any]) -> None:
    """Each signed promotion decision: an activity that used the model version, the policy
    and the evidence, associated with its actor, generating the decision document."""
    voc = graph.voc
    for record in snapshot.records("promotion-decision"):
        digest = record.get("blob")
        if not isinstance(digest, str):
            continue
        decision = documents.get(digest) or {}
        at = _iso(decision.get("time"))
        activity = graph.activity(graph.id("promotion", digest), at, at, [
            (PROV_TYPE, voc["Promotion"]), (voc["target"], record.get("target")),
            (voc["targetKind"], record.get("target_kind")), (voc["decision"], decision.get("decision")),
            (voc["allowed"], decision.get("allowed")), (voc["policy"], record.get("policy")),
        ])
        document = graph.entity(graph.id("decision", digest), [
            (PROV_TYPE, voc["PromotionDecision"]), (voc["digest"], digest),
            (voc["signedBy"], str(record.get("signature") or "").split(":", 1)[0] or None),
        ])
        graph.doc.wasGeneratedBy(document, activity, at)
        model = graph.id("model", f"{record.get('model')}/{record.get('version')}")
        if model in graph.added:
            graph.doc.used(activity, model)
        _promotion_inputs(graph, activity, record, decision)
        if decision.get("actor"):
            graph.doc.wasAssociatedWith(activity, graph.actor(str(decision["actor"])))


def _promotion_inputs(graph: _Graph, activity: QualifiedName, record: dict[str, Any], decision: dict[str, Any]) -> None:
    """The policy, environment and evaluation the decision rests on (those in the document)."""
    policy = record.get("policy")
    if isinstance(policy, str):
        qname = graph.entity(graph.id("policy", policy), [
            (PROV_TYPE, graph.voc["Policy"]), (graph.voc["digest"], policy),
        ])
        graph.doc.used(activity, qname, None, None, {PROV_ROLE: "policy"})
    evidence = decision.get("evidence") or {}
    for kind in ("environment", "evaluation"):
        digest = evidence.get(kind)
        if isinstance(digest, str) and graph.id(kind, digest) in graph.added:
            graph.doc.used(activity, graph.id(kind, digest), None, None, {PROV_ROLE: f"evidence:{kind}"})
