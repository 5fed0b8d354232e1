"""A snapshot's training run as OpenLineage RunEvents (spec 2-0-2,
https://openlineage.io/spec/2-0-2/OpenLineage.json), as plain JSON-ready dicts.

* One ``START`` event at the run's start time and, once the run has ended, one terminal
  event at its end time: ``COMPLETE`` (MLflow ``FINISHED``), ``FAIL`` (``FAILED``) or
  ``ABORT`` (``KILLED``) — the spec's RunEvent ``eventType`` lifecycle.
* ``run.runId`` must be a UUID: :func:`openlineage_run_id` derives one with UUIDv5
  (RFC 9562 §5.5) from the MLflow run id, so every export of a run agrees on it; the MLflow
  id itself is in the ``mlflowProvenance`` run facet.
* ``job``: namespace = the ledger's origin URI (which tracking database), name = the
  experiment.
* ``inputs``: the datasets the run used, each named by its record name and versioned by its
  content digest, with the standard ``schema`` (from MLflow's dataset input, when logged),
  ``dataSource``, ``ownership`` and ``version`` facets and our ``mlflowProvenance`` facet
  (digest, license, owner, parents, transformations, record digest).
* ``outputs`` (terminal event): the logged model and the registered model version.
* Run facets: ``processing_engine`` (MLflow and its version, from the environment manifest)
  and ``mlflowProvenance`` naming the checkpoint (origin, tree size, root hash) the export
  was cut from. Custom facets carry ``_producer`` and ``_schemaURL`` as BaseFacet requires.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any, Iterable
from urllib.parse import urlparse

from mlflow_provenance import __version__
from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.exports.prov import origin_namespace
from mlflow_provenance.exports.snapshot import Snapshot

__all__ = ["PRODUCER", "RUN_EVENT_SCHEMA_URL", "openlineage_run_id", "to_run_events"]

PRODUCER = f"https://mlflow-provenance.dev/producer/mlflow-provenance/{__version__}"
RUN_EVENT_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#: The UUIDv5 namespace of OpenLineage run ids derived from MLflow run ids.
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://mlflow-provenance.dev/ns#mlflow-run")

_FACET = "https://openlineage.io/spec/facets/"
SCHEMA_URLS = {
    "schema": _FACET + "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "dataSource": _FACET + "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
    "ownership": _FACET + "1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet",
    "version": _FACET + "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "processing_engine": _FACET + "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "jobType": _FACET + "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
}
_OURS = "https://mlflow-provenance.dev/spec/openlineage/1-0-0/"
CUSTOM_SCHEMA_URLS = {
    "run": _OURS + "MlflowProvenanceRunFacet.json#/$defs/MlflowProvenanceRunFacet",
    "dataset": _OURS + "MlflowProvenanceDatasetFacet.json#/$defs/MlflowProvenanceDatasetFacet",
    "model": _OURS + "MlflowProvenanceModelFacet.json#/$defs/MlflowProvenanceModelFacet",
}
#: Our facets' key: a producer prefix, as the spec asks of custom facets.
CUSTOM_FACET = "mlflowProvenance"
TERMINAL_EVENT = {"FINISHED": "COMPLETE", "FAILED": "FAIL", "KILLED": "ABORT"}


def openlineage_run_id(mlflow_run_id: str) -> str:
    """The OpenLineage run UUID of an MLflow run: UUIDv5 in :data:`RUN_ID_NAMESPACE`."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, mlflow_run_id))


def to_run_events(snapshot: Snapshot) -> list[dict[str, Any]]:
    """``START`` and, for an ended run, its terminal event (see the module docstring).

    Raises:
        ConfigurationError: the snapshot has no run, or the run has no start time (an
            event needs an ``eventTime``).
    """
    run = snapshot.run
    if not run:
        raise ConfigurationError("OpenLineage events describe a run: take the snapshot of a model version or a run")
    if run.get("start_time") is None:
        raise ConfigurationError(f"run {run['run_id']} has no start time: OpenLineage events need an eventTime")
    common = {
        "run": {"runId": openlineage_run_id(run["run_id"]), "facets": _run_facets(snapshot, run)},
        "job": _job(snapshot, run),
        "inputs": _inputs(snapshot, run["run_id"]),
    }
    events = [_event("START", run["start_time"], common, outputs=[])]
    terminal = TERMINAL_EVENT.get(str(run.get("status")))
    if terminal and run.get("end_time") is not None:
        events.append(_event(terminal, run["end_time"], common, outputs=_outputs(snapshot)))
    return events


def _event(event_type: str, millis: int, common: dict[str, Any], *, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A RunEvent ($defs/RunEvent: BaseEvent's eventTime, producer, schemaURL + run, job)."""
    return {
        "eventType": event_type,
        "eventTime": _timestamp(millis),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA_URL,
        **copy.deepcopy(common),  # each event owns its dicts
        "outputs": outputs,
    }


def _timestamp(millis: int) -> str:
    moment = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _facet(facet: str, /, **values: Any) -> dict[str, Any]:
    """A standard facet: BaseFacet's ``_producer`` and ``_schemaURL``, then its fields."""
    return {"_producer": PRODUCER, "_schemaURL": SCHEMA_URLS[facet], **_compact(values)}


def _custom(kind: str, /, **values: Any) -> dict[str, Any]:
    """One of our facets (key :data:`CUSTOM_FACET`), with BaseFacet's two fields."""
    return {"_producer": PRODUCER, "_schemaURL": CUSTOM_SCHEMA_URLS[kind], **_compact(values)}


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


# --- run and job -----------------------------------------------------------------------------------


def _run_facets(snapshot: Snapshot, run: dict[str, Any]) -> dict[str, Any]:
    checkpoint = snapshot.checkpoint
    manifest_digest, manifest = _environment(snapshot)
    return {
        "processing_engine": _facet(
            "processing_engine", version=_distribution_version(manifest, "mlflow") or "unknown",
            name="MLflow", openlineageAdapterVersion=__version__,
        ),
        CUSTOM_FACET: _custom(
            "run",
            checkpoint={"origin": snapshot.origin, "size": int(checkpoint["size"]), "rootHash": checkpoint["root"]},
            mlflowRunId=run["run_id"], runName=run.get("name"), experimentId=run.get("experiment_id"),
            status=run.get("status"), user=run.get("user"), params=dict(sorted(run["params"].items())),
            environmentManifest=manifest_digest,
        ),
    }


def _job(snapshot: Snapshot, run: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": origin_namespace(snapshot.origin),
        "name": run.get("experiment_name") or f"experiment-{run.get('experiment_id')}",
        "facets": {"jobType": _facet("jobType", processingType="BATCH", integration="MLFLOW", jobType="TRAINING")},
    }


def _environment(snapshot: Snapshot) -> tuple[str | None, dict[str, Any]]:
    documents = snapshot.documents()
    for record in snapshot.records("environment-manifest"):
        if isinstance(record.get("blob"), str):
            return record["blob"], documents.get(record["blob"]) or {}
    return None, {}


def _distribution_version(manifest: dict[str, Any], name: str) -> str | None:
    for dist in (manifest.get("python") or {}).get("distributions") or []:
        if str(dist.get("name", "")).lower() == name:
            return str(dist.get("version"))
    return None


# --- inputs and outputs ----------------------------------------------------------------------------


def _inputs(snapshot: Snapshot, run_id: str) -> list[dict[str, Any]]:
    """The datasets the run used ($defs/InputDataset), with their facets."""
    namespace = origin_namespace(snapshot.origin)
    record_of = {r.get("data_digest"): r.get("blob") for r in snapshot.records("dataset")}
    schemas = _mlflow_schemas(snapshot)
    inputs = []
    for dataset in snapshot.lineage.get("datasets", []):
        digest = dataset["digest"]
        facets: dict[str, Any] = {"version": _facet("version", datasetVersion=digest)}
        fields = schemas.get(digest.split(":", 1)[-1][:36])
        if fields:
            facets["schema"] = _facet("schema", fields=fields)
        source = dataset.get("source")
        if isinstance(source, str) and source:
            facets["dataSource"] = _facet("dataSource", name=source, uri=source if urlparse(source).scheme else None)
        if dataset.get("owner"):
            facets["ownership"] = _facet("ownership", owners=[{"name": str(dataset["owner"])}])
        license_ = dataset.get("license")
        facets[CUSTOM_FACET] = _custom(
            "dataset", digest=digest, record=record_of.get(digest),
            license=license_.get("expression") if isinstance(license_, dict) else license_,
            licenseKind=license_.get("kind") if isinstance(license_, dict) else None,
            owner=dataset.get("owner"), source=source, parents=list(dataset.get("parents") or []),
            transformations=list(dataset.get("transformations") or []),
            contexts=(dataset.get("runs") or {}).get(run_id, []),
        )
        inputs.append({"namespace": namespace, "name": next(iter(dataset.get("names") or []), "") or digest,
                       "facets": facets})
    return inputs


def _mlflow_schemas(snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
    """Column schemas MLflow recorded with dataset inputs (``datasets.dataset_schema``,
    an ``mlflow_colspec``), by MLflow's 36-character digest, from the sealed events' rows."""
    schemas: dict[str, list[dict[str, Any]]] = {}
    for row in _inserted_rows(snapshot, "datasets"):
        try:
            colspec = json.loads(row.get("dataset_schema") or "null")
        except ValueError:
            continue
        columns = (colspec or {}).get("mlflow_colspec") if isinstance(colspec, dict) else None
        if isinstance(columns, list) and row.get("digest"):
            schemas[str(row["digest"])] = [
                _compact({"name": str(c.get("name")), "type": c.get("type")})
                for c in columns if isinstance(c, dict) and c.get("name") is not None
            ]
    return schemas


def _inserted_rows(snapshot: Snapshot, table: str) -> Iterable[dict[str, Any]]:
    """Rows inserted into ``table`` by the snapshot's events (payload ``changes`` entries
    ``[table, "I", null, row-json]``)."""
    for event in snapshot.events:
        for change in (json.loads(event["body"]).get("payload") or {}).get("changes") or ():
            if isinstance(change, list) and len(change) == 4 and change[0] == table and change[1] == "I":
                try:
                    row = json.loads(change[3])
                except (TypeError, ValueError):
                    continue
                if isinstance(row, dict):
                    yield row


def _outputs(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The logged model and the registered model version ($defs/OutputDataset)."""
    model = snapshot.model
    if not model:
        return []
    namespace = origin_namespace(snapshot.origin)
    outputs = []
    if model.get("model_id"):
        outputs.append({"namespace": namespace, "name": f"models:/{model['model_id']}", "facets": {
            CUSTOM_FACET: _custom("model", kind="logged-model", modelId=model["model_id"]),
        }})
    outputs.append({"namespace": namespace, "name": f"models:/{model['name']}/{model['version']}", "facets": {
        "version": _facet("version", datasetVersion=str(model["version"])),
        CUSTOM_FACET: _custom(
            "model", kind="model-version", registeredModel=model["name"], version=str(model["version"]),
            stage=model.get("stage"), aliases=list(model.get("aliases") or []), source=model.get("source"),
            modelId=model.get("model_id"), owner=(model.get("registered_model_tags") or {}).get("owner"),
        ),
    }})
    return outputs
