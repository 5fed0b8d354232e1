"""Binding dataset and evaluation records into the ledger, inside MLflow's own writes.

The records travel in MLflow's own REST fields, so the same code runs in an embedded
store and in ``mlflow server``:

* a **dataset record** rides in the ``profile`` of the dataset given to ``log_inputs``
  (key ``mlflow_provenance``; MLflow allows 16 MB there, and shows the profile in its
  Datasets panel);
* an **evaluation record** rides in part tags of the ``log_batch`` that logs its metrics
  (:mod:`mlflow_provenance.transport`), which the store takes out.

The store checks each record (canonical form, kind, digests, parents and evaluation
datasets already recorded, metric values equal to the batch's) before MLflow writes
anything; a bad record is refused with an ``MlflowException`` that says what to fix,
and nothing is written. Accepted records are stored content-addressed and named in the
event of the same write. A dataset logged by plain ``mlflow.log_input`` (user code,
autologging) is recorded too, with the full-content digest of its local source file when
the store can read it, else of its in-memory data as the logging process hashed it
(:mod:`.mlflow_datasets`), else marked unverified with the reason.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Sequence

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_provenance import config, transport
from mlflow_provenance.datasets import records
from mlflow_provenance.datasets.files import DatasetInputError, default_cache, digest_path
from mlflow_provenance.errors import FormatError
from mlflow_provenance.recorder import Attachment, Blob
from mlflow_provenance.sql import query

_logger = logging.getLogger(__name__)

PROFILE_KEY = "mlflow_provenance"
RECORD_PART_PREFIX = "provenance.record.part."
RECORD_DIGEST_TAG = "provenance.record.digest"
PLAIN_INPUT = "mlflow-dataset-input"


def refuse(message: str) -> MlflowException:
    return MlflowException(f"mlflow-provenance: {message}", INVALID_PARAMETER_VALUE)


def record_tags(record: records.Record) -> dict[str, str]:
    """Tags carrying an evaluation record in ``log_batch``."""
    return {**transport.pack(record.content, prefix=RECORD_PART_PREFIX), RECORD_DIGEST_TAG: record.digest}


def attachment(record: records.Record, **extra: Any) -> Attachment:
    summary = {"kind": record.kind, "blob": record.digest, "media_type": record.media_type, **extra}
    return Attachment(summary, (Blob(record.digest, record.media_type, record.content),))


# --- log_inputs ----------------------------------------------------------------------------------


def for_inputs(store: Any, run_id: str, dataset_inputs: Sequence[Any] | None) -> list[Attachment]:
    """The records of the datasets a ``log_inputs`` call logs.

    Raises:
        MlflowException: a dataset record that is malformed, disagrees with the MLflow
            dataset it rides in, or names a parent that was never recorded.
    """
    received: list[tuple[Any, records.Record | None]] = []
    for dataset_input in dataset_inputs or ():
        received.append((dataset_input, _record_in_profile(dataset_input.dataset)))
    in_call = {r.document["digest"] for _, r in received if r is not None}
    result = []
    for dataset_input, record in received:
        dataset = dataset_input.dataset
        if record is None:
            result.append(Attachment({**_plain_input(dataset), "run_id": run_id}))
            continue
        earlier = logged_record(store, run_id, dataset)
        if earlier is not None and earlier != record.digest:
            raise refuse(
                f"dataset {dataset.name!r} with these contents is already logged to run {run_id} with a different "
                f"record (MLflow keeps one input per name and digest): log it under another name"
            )
        for parent in record.document["parents"]:
            if parent not in in_call and recorded_dataset(store, parent) is None:
                raise refuse(
                    f"parent dataset {parent} of {dataset.name!r} was never recorded in this tracking store: "
                    f"log it first with mlflow_provenance.log_dataset(...) and pass its record (or digest) as a parent"
                )
        context = next((t.value for t in dataset_input.tags or () if t.key == "mlflow.data.context"), None)
        result.append(attachment(record, run_id=run_id, data_digest=record.document["digest"],
                                 parents=record.document["parents"], context=context))
    return result


def _record_in_profile(dataset: Any) -> records.Record | None:
    try:
        profile = json.loads(dataset.profile) if dataset.profile else None
    except ValueError:
        return None
    if not isinstance(profile, dict) or PROFILE_KEY not in profile:
        return None
    try:
        record = records.Record.from_document(profile[PROFILE_KEY])
        records.check(record.document)
    except records.RecordError as exc:
        raise refuse(f"the provenance record of dataset {dataset.name!r} is malformed: {exc}") from exc
    if record.kind != records.DATASET:
        raise refuse(f"dataset {dataset.name!r} carries a {record.kind!r} record, not a dataset record")
    if dataset.digest != records.mlflow_digest(record.document["digest"]):
        raise refuse(
            f"dataset {dataset.name!r} has MLflow digest {dataset.digest!r}, but its provenance record is for "
            f"{record.document['digest']}: log it with mlflow_provenance.log_dataset"
        )
    if dataset.name != record.document["name"]:
        raise refuse(f"dataset {dataset.name!r} carries the record of {record.document['name']!r}")
    return record


def _plain_input(dataset: Any) -> dict[str, Any]:
    """A dataset logged by plain MLflow: recorded with what can be known about its content."""
    summary: dict[str, Any] = {
        "kind": PLAIN_INPUT,
        "name": dataset.name,
        "mlflow_digest": dataset.digest,
        "full_digest": None,
    }
    # Hashed where the data was, by the logging process (.mlflow_datasets): the data as loaded.
    computed = _content_in_profile(dataset)
    if computed is not None:
        summary["data_digest"] = computed["digest"]
    if config.is_server_process() and computed is not None:
        summary.update(full_digest=computed["digest"], digest_description=computed.get("description"),
                       upgraded="client")
        return summary
    if config.is_server_process():
        summary["reason"] = "logged without mlflow_provenance.log_dataset; the server cannot read the client's data"
        return summary
    path = _local_source(dataset)
    if path is None and computed is not None:
        summary.update(full_digest=computed["digest"], digest_description=computed.get("description"),
                       upgraded="client")
        return summary
    if path is None:
        summary["reason"] = (
            f"logged without mlflow_provenance.log_dataset from a {dataset.source_type!r} source the store "
            f"cannot read; MLflow's digest covers at most 10,000 rows"
        )
        return summary
    try:
        content = digest_path(path, cache=default_cache())
    except DatasetInputError as exc:
        if computed is not None:  # the source is gone, the data as loaded was hashed
            summary.update(full_digest=computed["digest"], digest_description=computed.get("description"),
                           upgraded="client", reason=f"local source not readable: {exc}")
            return summary
        summary["reason"] = f"local source not readable: {exc}"
        return summary
    summary.update(full_digest=content.digest, digest_description=content.description, upgraded=True)
    return summary


def _content_in_profile(dataset: Any) -> dict[str, Any] | None:
    """The full-content digest the logging process put in a plain dataset's profile, if valid."""
    from mlflow_provenance.adapters.mlflow_datasets import PROFILE_KEY as CONTENT_KEY

    try:
        content = (json.loads(dataset.profile) if dataset.profile else {}).get(CONTENT_KEY)
    except (ValueError, AttributeError):
        return None
    if not isinstance(content, dict):
        return None
    try:
        records._digest("digest", content.get("digest"))
    except records.RecordError:
        return None
    return content


def _local_source(dataset: Any) -> str | None:
    if dataset.source_type != "local":
        return None
    try:
        uri = json.loads(dataset.source).get("uri")
    except (ValueError, AttributeError):
        return None
    if not isinstance(uri, str):
        return None
    return uri[len("file://"):] if uri.startswith("file://") else uri


def logged_record(store: Any, run_id: str, dataset: Any) -> str | None:
    """The digest of the record the ledger holds for this run, dataset name and MLflow digest.

    MLflow keeps one input per run, name and digest and skips a repeated ``log_inputs``
    without writing, so a second, different record for the same input would be lost.
    """
    with store.ManagedSessionMaker() as session:
        conn = session.connection()
        bodies = [row[0] for row in query(
            conn, "SELECT body FROM prov_events WHERE entity_type = 'run' AND entity_id = ? AND body LIKE ?",
            run_id, '%"kind":"dataset"%')]
        for body in bodies:
            for record in (json.loads(body).get("payload") or {}).get("records") or ():
                if record.get("kind") != records.DATASET or not record.get("data_digest"):
                    continue
                if records.mlflow_digest(record["data_digest"]) != dataset.digest:
                    continue
                content = query(conn, "SELECT content FROM prov_blobs WHERE digest = ?", record["blob"]).scalar()
                try:
                    name = json.loads(bytes(content or b"{}")).get("name")
                except ValueError:
                    continue
                if name == dataset.name:
                    return record["blob"]
    return None


def recorded_dataset(store: Any, digest: str) -> dict[str, Any] | None:
    """The dataset record with data digest ``digest`` in this store, if one was logged."""
    from mlflow.store.tracking.dbmodels.models import SqlDataset

    with store.ManagedSessionMaker() as session:
        profiles = [
            row[0]
            for row in session.query(SqlDataset.dataset_profile)
            .filter(SqlDataset.digest == records.mlflow_digest(digest))
            .all()
        ]
    for profile in profiles:
        try:
            document = json.loads(profile or "{}").get(PROFILE_KEY)
        except (ValueError, AttributeError):
            continue
        if isinstance(document, dict) and document.get("digest") == digest:
            return document
    return None


# --- log_batch -----------------------------------------------------------------------------------


def for_batch(store: Any, run_id: str, metrics: Iterable[Any], tags: Sequence[Any]) -> tuple[list[Any], list[Attachment]]:
    """Take an evaluation record out of a ``log_batch``'s tags; return the other tags and
    the record's attachment.

    Raises:
        MlflowException: the record is malformed, for another run, for a dataset never
            recorded, or its metric values differ from the batch's.
    """
    carried = {t.key: t.value for t in tags if t.key.startswith(RECORD_PART_PREFIX) or t.key == RECORD_DIGEST_TAG}
    if not carried:
        return list(tags), []
    kept = [t for t in tags if t.key not in carried]
    try:
        content = transport.unpack(carried, prefix=RECORD_PART_PREFIX, what="evaluation record")
        if content is None:
            raise FormatError(f"{RECORD_DIGEST_TAG} arrived without record parts")
        record = records.Record.from_bytes(content)
    except (FormatError, records.RecordError) as exc:
        raise refuse(f"the evaluation record sent with log_batch is malformed: {exc}") from exc
    if record.digest != carried.get(RECORD_DIGEST_TAG):
        raise refuse(f"the evaluation record's digest is {record.digest}, not {carried.get(RECORD_DIGEST_TAG)}")
    doc = record.document
    if record.kind != records.EVALUATION:
        raise refuse(f"log_batch carries a {record.kind!r} record; only evaluation records travel this way")
    if doc["run_id"] != run_id:
        raise refuse(f"the evaluation record is for run {doc['run_id']}, but was logged to run {run_id}")
    dataset_digest = doc["dataset"]["digest"]
    if recorded_dataset(store, dataset_digest) is None:
        raise refuse(
            f"evaluation dataset {dataset_digest} was never recorded in this tracking store: log it first "
            f"with mlflow_provenance.log_dataset(..., context='evaluation')"
        )
    logged = {m.key: m.value for m in metrics}
    for name, value in doc["metrics"].items():
        if name not in logged or float(logged[name]) != float(value):
            raise refuse(f"metric {name!r} of the evaluation record ({value}) is not logged with that value in the same batch")
    summary = {"run_id": run_id, "dataset": dataset_digest, "thresholds_met": doc.get("thresholds_met")}
    return kept, [attachment(record, **summary)]
