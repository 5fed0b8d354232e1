"""What a model version's (or a run's) provenance consists of, cut at one signed checkpoint.

The snapshot holds:

* the model version (name, version, source, stage, aliases, tags) and its run (experiment,
  name, status, times, params, latest metrics, tags);
* every ledger event about them: the run's chain, the model version's and registered
  model's chains, the events that recorded the run's datasets' ancestors, the policy events;
* the documents those events' records name (environment manifest, dataset and evaluation
  records, promotion decisions, policies), base64;
* the newest signed checkpoint (C2SP signed note) and, for each event it covers, an RFC
  9162 inclusion proof against it — events after it are listed as ``unsealed``;
* the trusted public keys (C2SP verifier keys) and the lineage (datasets and parents).

Everything is read in one consistent snapshot of the database.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mlflow_provenance import ledger_schema, merkle
from mlflow_provenance.checkpoint import parse_checkpoint
from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.keys import Keyring
from mlflow_provenance.lineage import load_graph
from mlflow_provenance.sql import query
from mlflow_provenance.verify import read_snapshot

SNAPSHOT_FORMAT = "mlflow-provenance/snapshot/v1"


@dataclass
class Snapshot:
    origin: str
    checkpoint: dict[str, Any]  # {"size", "root", "note"}
    keys: list[str]  # verifier keys (vkey)
    model: dict[str, Any] | None
    run: dict[str, Any] | None
    events: list[dict[str, Any]] = field(default_factory=list)  # {"seq", "hash", "body", "proof"}
    unsealed: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, dict[str, str]] = field(default_factory=dict)  # digest → {"media_type", "content" (b64)}
    lineage: dict[str, Any] = field(default_factory=dict)

    def documents(self) -> dict[str, dict[str, Any]]:
        """The JSON documents among the blobs, decoded."""
        result = {}
        for digest, blob in self.blobs.items():
            try:
                result[digest] = json.loads(base64.b64decode(blob["content"]))
            except ValueError:
                continue
        return result

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Records of the included (sealed) events, with the event's seq under ``_seq``."""
        found = []
        for event in self.events:
            for record in (json.loads(event["body"]).get("payload") or {}).get("records") or ():
                if kind is None or record.get("kind") == kind:
                    found.append({**record, "_seq": event["seq"]})
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT, "origin": self.origin, "checkpoint": self.checkpoint, "keys": self.keys,
            "model": self.model, "run": self.run, "events": self.events, "unsealed": self.unsealed,
            "blobs": self.blobs, "lineage": self.lineage,
        }


def take_snapshot(engine: sa.engine.Engine, keyring: Keyring, *, model: tuple[str, str] | None = None,
                  run_id: str | None = None, proofs: bool = True) -> Snapshot:
    """The provenance of ``model`` (name, version) or of ``run_id``.

    ``proofs=False`` leaves out the inclusion proofs (each costs a pass over the log's
    leaves): for views that show the provenance rather than hand it over.

    Raises:
        ConfigurationError: no ledger, no signed checkpoint yet, or no such model version/run.
    """
    with engine.connect() as conn, read_snapshot(conn):
        return _take(conn, keyring, model, run_id, proofs)


def _take(conn: sa.engine.Connection, keyring: Keyring, model: tuple[str, str] | None, run_id: str | None,
          proofs: bool = True) -> Snapshot:
    meta = ledger_schema.read_meta(conn)
    if not meta:
        raise ConfigurationError("this database has no provenance ledger: nothing to export")
    last = query(conn, "SELECT size, root, note FROM prov_checkpoints ORDER BY id DESC LIMIT 1").first()
    if last is None:
        raise ConfigurationError("the ledger has no signed checkpoint yet: end a run (or promote) first")
    checkpoint = {"size": int(last[0]), "root": last[1], "note": last[2]}
    parse_checkpoint(checkpoint["note"])  # well-formed, or raises

    model_info = None
    if model is not None:
        name, version = model
        row = query(conn, "SELECT name, version, source, run_id, current_stage, description, creation_time "
                       "FROM model_versions WHERE name = ? AND version = ?", name, int(version)).first()
        if row is None:
            raise ConfigurationError(f"no model version {name}/{version} in this database")
        model_info = {
            "name": row[0], "version": str(row[1]), "source": row[2], "run_id": row[3], "stage": row[4],
            "description": row[5], "created": row[6],
            "model_id": row[2][len("models:/"):].split("/", 1)[0] if (row[2] or "").startswith("models:/m-") else None,
            "tags": dict(query(conn, "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?", name, int(version)).all()),
            "registered_model_tags": dict(query(conn, "SELECT key, value FROM registered_model_tags WHERE name = ?", name).all()),
            "aliases": sorted(a for (a,) in query(conn, "SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ?", name, int(version))),
        }
        run_id = run_id or row[3]
    run_info = _run(conn, run_id) if run_id else None
    if run_id and run_info is None:
        raise ConfigurationError(f"no run {run_id} in this database")

    graph = load_graph(conn)
    lineage = graph.upstream_of_run(run_id) if run_id else {}
    wanted_entities = {("policy", "promotion")}
    if run_id:
        wanted_entities.add(("run", run_id))
    if model_info:
        wanted_entities |= {("model_version", f"{model_info['name']}/{model_info['version']}"),
                            ("registered_model", model_info["name"])}
        if model_info["model_id"]:
            wanted_entities.add(("logged_model", model_info["model_id"]))
    ancestor_digests = {d["digest"] for d in lineage.get("ancestors", [])} | {d["digest"] for d in lineage.get("datasets", [])}

    leaves: list[bytes] = []
    chosen: list[tuple[int, str, str]] = []
    rows = conn.execution_options(stream_results=True, yield_per=5000).exec_driver_sql(
        "SELECT seq, entity_type, entity_id, hash, body FROM prov_events ORDER BY seq")
    for seq, entity_type, entity_id, digest, body in rows:
        if proofs and seq <= checkpoint["size"]:
            leaves.append(merkle.leaf_hash(body.encode("utf-8")))
        if (entity_type, entity_id) in wanted_entities or _names_dataset(body, ancestor_digests):
            chosen.append((seq, digest, body))
    snapshot = Snapshot(meta.get("origin", ""), checkpoint, sorted(e.public_key.vkey() for e in keyring.entries),
                        model_info, run_info, lineage=lineage)
    for seq, digest, body in chosen:
        event = {"seq": seq, "hash": digest, "body": body}
        if seq <= checkpoint["size"]:
            if proofs:
                event["proof"] = [h.hex() for h in merkle.inclusion_proof(leaves, seq - 1, checkpoint["size"])]
            snapshot.events.append(event)
        else:
            snapshot.unsealed.append(event)
    for record in snapshot.records():
        digest = record.get("blob")
        if isinstance(digest, str) and digest not in snapshot.blobs:
            blob = query(conn, "SELECT media_type, content FROM prov_blobs WHERE digest = ?", digest).first()
            if blob is not None:
                snapshot.blobs[digest] = {"media_type": blob[0], "content": base64.b64encode(bytes(blob[1])).decode()}
    return snapshot


def _names_dataset(body: str, digests: set[str]) -> bool:
    if not digests or '"kind":"dataset"' not in body:
        return False
    return any(d in body for d in digests)


def _run(conn: sa.engine.Connection, run_id: str) -> dict[str, Any] | None:
    row = query(conn, "SELECT run_uuid, experiment_id, name, status, start_time, end_time, lifecycle_stage, artifact_uri, user_id "
                   "FROM runs WHERE run_uuid = ?", run_id).first()
    if row is None:
        return None
    metrics: dict[str, Any] = {}
    for key, value, step, timestamp in query(conn, "SELECT key, value, step, timestamp FROM metrics WHERE run_uuid = ? "
                                                "ORDER BY step, timestamp", run_id):
        metrics[key] = {"value": value, "step": step, "timestamp": timestamp}
    return {
        "run_id": row[0], "experiment_id": str(row[1]), "name": row[2], "status": row[3], "start_time": row[4],
        "end_time": row[5], "lifecycle_stage": row[6], "artifact_uri": row[7], "user": row[8],
        "params": dict(query(conn, "SELECT key, value FROM params WHERE run_uuid = ?", run_id).all()),
        "metrics": metrics,
        "tags": dict(query(conn, "SELECT key, value FROM tags WHERE run_uuid = ?", run_id).all()),
        "experiment_name": query(conn, "SELECT name FROM experiments WHERE experiment_id = ?", row[1]).scalar(),
    }
