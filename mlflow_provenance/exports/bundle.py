"""The offline bundle: a model version's (or a run's) provenance in one JSON file that
:func:`mlflow_provenance.exports.offline.verify_bundle` checks with nothing else — no
database, no MLflow.

The file is UTF-8 JSON, pretty-printed (2-space indent, members in the order below) so an
auditor can read and diff it. Its own bytes are neither signed nor canonical: every hash and signature the
verifier checks is over values *inside* it (event bodies, documents, the checkpoint note),
so re-indenting the file changes nothing. Layout (``format`` ``mlflow-provenance/bundle/v1``)::

    format       "mlflow-provenance/bundle/v1"
    subject      "model NAME/VERSION (run RUN_ID)" or "run RUN_ID"
    cut_from     "checkpoint size N, root R of log ORIGIN": the signed checkpoint below
    conventions  how each hash and signature is computed (the parameters of every digest)
    origin       the log's origin (the checkpoint's first line)
    checkpoint   {size, root (hex), note}: the C2SP signed note; size and root repeat the
                 note's for readers, the verifier trusts only the note
    keys         C2SP signed-note verifier keys (public keys only, never private ones)
    model, run   facts read from MLflow's tables when the bundle was cut
    events       [{seq, hash, body, proof}] — ledger events the checkpoint covers, each with
                 an RFC 9162 inclusion proof (hex hashes) against it
    unsealed     [{seq, hash, body}] — newer events, not covered by the checkpoint
    blobs        {digest: {media_type, content (base64)}} — the documents the events' records name
    lineage      the run's datasets and their ancestors

The bundle holds the *complete* chain, up to the checkpoint, of each entity in
:func:`subject_entities` (the run, the model version, its registered and logged model, the
promotion policy); of other entities it holds only the events that recorded the run's
datasets. The verifier relies on that: a missing link in a subject chain is tampering.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_provenance.checkpoint import parse_checkpoint
from mlflow_provenance.errors import ConfigurationError, IntegrityError
from mlflow_provenance.keys import PublicKey

if TYPE_CHECKING:  # the snapshot module reads databases; the offline verifier must not import it
    from mlflow_provenance.exports.snapshot import Snapshot

__all__ = ["BUNDLE_FORMAT", "CONVENTIONS", "DECISION_SIGNING_PREFIX", "bundle_document", "describe_subject",
           "subject_entities", "write_bundle"]

BUNDLE_FORMAT = "mlflow-provenance/bundle/v1"
#: What a promotion decision's ``signature`` ("KEY_ID:base64") covers: this prefix, then the
#: decision document's bytes (see ``adapters/registry_store.py``).
DECISION_SIGNING_PREFIX = b"mlflow-provenance/promotion-decision/v1\n"
#: Every parameter that changes a digest or signature, as the bundle records it.
CONVENTIONS: dict[str, str] = {
    "event_hash": "hex SHA-256 over the UTF-8 bytes of body (RFC 8785 canonical JSON)",
    "merkle_tree": "RFC 9162 §2.1 over SHA-256; leaf seq-1 is the event body; proofs per §2.1.3",
    "checkpoint": "C2SP tlog-checkpoint in a C2SP signed note, Ed25519 signatures",
    "keys": "C2SP signed-note verifier keys NAME+KEYHASH+BASE64(0x01||key)",
    "blob_digest": "sha256: + hex SHA-256 over the base64-decoded content",
    "decision_signature": "KEY_ID:base64(Ed25519 over 'mlflow-provenance/promotion-decision/v1\\n' "
                          "|| decision bytes); KEY_ID = hex SHA-256 of the raw public key",
    "chains": "complete up to the checkpoint for the subject's run, model version, registered "
              "model, logged model and the promotion policy",
}
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def subject_entities(model: dict[str, Any] | None, run: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The ``(entity type, id)`` pairs whose chains a bundle about ``model``/``run`` holds completely.

    Mirrors the entities :func:`~mlflow_provenance.exports.snapshot.take_snapshot` collects
    in full; values that are missing or not strings are skipped (the verifier reports them).
    """
    entities = {("policy", "promotion")}
    if isinstance(run, dict) and isinstance(run.get("run_id"), str):
        entities.add(("run", run["run_id"]))
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        entities.add(("registered_model", model["name"]))
        if isinstance(model.get("version"), str):
            entities.add(("model_version", f"{model['name']}/{model['version']}"))
        if isinstance(model.get("model_id"), str):
            entities.add(("logged_model", model["model_id"]))
    return entities


def describe_subject(model: dict[str, Any] | None, run: dict[str, Any] | None) -> str:
    """``model NAME/VERSION (run RUN_ID)``, ``run RUN_ID``, or ``""`` when there is neither."""
    if isinstance(model, dict):
        run_part = f" (run {model['run_id']})" if model.get("run_id") else ""
        return f"model {model.get('name')}/{model.get('version')}{run_part}"
    if isinstance(run, dict):
        return f"run {run.get('run_id')}"
    return ""


def bundle_document(snapshot: Snapshot) -> dict[str, Any]:
    """The bundle for ``snapshot`` as a JSON-ready dict (shares the snapshot's nested values).

    Raises:
        FormatError: the checkpoint note or a key in ``snapshot.keys`` is malformed.
        IntegrityError: the checkpoint's size or root disagrees with its signed note.
        ConfigurationError: the snapshot names neither a model version nor a run, or holds
            what looks like a PEM private key.
    """
    checkpoint, _ = parse_checkpoint(snapshot.checkpoint["note"])
    root = checkpoint.root.hex()
    if (snapshot.checkpoint.get("size"), snapshot.checkpoint.get("root")) != (checkpoint.size, root):
        raise IntegrityError(
            "the newest checkpoint row disagrees with its signed note; run `mlflow-provenance verify` "
            "on this database before exporting it"
        )
    for vkey in snapshot.keys:
        PublicKey.from_vkey(vkey)  # public verifier keys only
    document = {
        "format": BUNDLE_FORMAT,
        "subject": _subject(snapshot),
        "cut_from": f"checkpoint size {checkpoint.size}, root {root} of log {checkpoint.origin}",
        "conventions": CONVENTIONS,
        "origin": snapshot.origin,
        "checkpoint": {"size": checkpoint.size, "root": root, "note": snapshot.checkpoint["note"]},
        "keys": snapshot.keys,
        "model": snapshot.model,
        "run": snapshot.run,
        "events": snapshot.events,
        "unsealed": snapshot.unsealed,
        "blobs": snapshot.blobs,
        "lineage": snapshot.lineage,
    }
    _refuse_private_keys(document)
    return document


def write_bundle(snapshot: Snapshot, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the bundle for ``snapshot`` to ``path`` (replacing a file there) and return it.

    The file appears whole or not at all: it is written to a temporary file beside
    ``path`` and renamed into place. Like that temporary file, it is readable by its owner
    only (mode 0600); widen it to share the bundle.

    Raises:
        ConfigurationError: the directory of ``path`` is missing or not writable, or the
            snapshot is unusable (see :func:`bundle_document`).
        IntegrityError: the snapshot's checkpoint disagrees with its signed note.
    """
    document = bundle_document(snapshot)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    _write_atomically(Path(path), text.encode("utf-8"))
    return document


def _subject(snapshot: Snapshot) -> str:
    subject = describe_subject(snapshot.model, snapshot.run)
    if not subject:
        raise ConfigurationError("the snapshot names neither a model version nor a run: nothing to bundle")
    return subject


def _refuse_private_keys(document: dict[str, Any]) -> None:
    """DESIGN.md §5: private keys never appear in exports — not even in a logged value or document."""
    texts = [json.dumps(document, ensure_ascii=False).encode("utf-8")]
    texts += [base64.b64decode(blob["content"]) for blob in document["blobs"].values()]
    if any(_PEM_PRIVATE_KEY.search(text) for text in texts):
        raise ConfigurationError(
            "refusing to export: the bundle would contain a PEM private key block (in a logged "
            "value or document); remove it from the run before exporting"
        )


def _write_atomically(target: Path, data: bytes) -> None:
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write bundle {target}: its directory does not exist")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".bundle-", suffix=".json", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise ConfigurationError(f"cannot write bundle {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
