"""A snapshot as SLSA build provenance: an in-toto Statement v1 whose predicate is SLSA
Provenance v1, signed as a DSSE envelope with the ledger's Ed25519 key.

* Statement: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md —
  ``_type``, ``subject`` (the model's artifact files, given by the caller),
  ``predicateType``, ``predicate``.
* Predicate: https://slsa.dev/spec/v1.0/provenance — ``buildDefinition`` (our
  :data:`BUILD_TYPE`; the run's params as ``externalParameters``; the run, model and
  environment manifest digest as ``internalParameters``; datasets, code, container image
  and Python packages as ``resolvedDependencies``) and ``runDetails`` (the ledger's origin
  as ``builder.id``; run id and times as ``metadata``; the checkpoint, the environment
  manifest and the evaluation records as ``byproducts``).
* Envelope: DSSE v1 (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md),
  signed over the PAE (protocol.md, "Signature definition"). The ``keyid`` is the
  signing key's :attr:`~mlflow_provenance.keys.PublicKey.key_id`: lowercase hex SHA-256 of
  the raw 32-byte Ed25519 public key, the id every other signature of this package uses.
  The payload is the statement's RFC 8785 canonical JSON.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from pathlib import PurePosixPath
from typing import Any, Iterable, Mapping
from urllib.parse import quote

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.errors import CanonicalizationError, ConfigurationError, FormatError, SignatureError
from mlflow_provenance.exports.prov import origin_namespace
from mlflow_provenance.exports.snapshot import Snapshot
from mlflow_provenance.keys import PublicKey, SigningKey

__all__ = [
    "BUILD_TYPE", "PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE",
    "pae", "sign_dsse", "to_statement", "verify_dsse",
]  # fmt: skip

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: Ours: "an MLflow training run recorded in an mlflow-provenance ledger".
BUILD_TYPE = "https://mlflow-provenance.dev/buildtypes/mlflow-training-run/v1"
#: DSSE payload type of in-toto statements (in-toto attestation spec, envelope.md).
PAYLOAD_TYPE = "application/vnd.in-toto+json"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_ROOT_HASH_ALGORITHM = "RFC 9162 Merkle tree hash over ledger event bodies, SHA-256"


# --- the statement ---------------------------------------------------------------------------------


def to_statement(snapshot: Snapshot, subjects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA Provenance v1 predicate for the snapshot's run.

    ``subjects`` are the artifacts the run produced (the model's files), each
    ``{"name": ..., "digest": {"sha256": <64 lowercase hex>, ...}}``.

    Raises:
        ConfigurationError: the snapshot has no run, or no subject was given (a Statement
            needs at least one, statement.md "subject").
        FormatError: a subject without a name or without a sha256 digest.
    """
    run = snapshot.run
    if not run:
        raise ConfigurationError("SLSA provenance describes a run: take the snapshot of a model version or a run")
    documents = snapshot.documents()
    manifest_digest, manifest = _environment(snapshot, documents)
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subjects(subjects),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {str(k): str(v) for k, v in sorted(run["params"].items())},
                "internalParameters": _internal_parameters(snapshot, run, manifest_digest),
                "resolvedDependencies": [
                    *_dataset_dependencies(snapshot, documents, run["run_id"]),
                    *_code_dependencies(manifest),
                    *_image_dependencies(manifest),
                    *_package_dependencies(manifest),
                ],
            },
            "runDetails": {
                "builder": _builder(snapshot, manifest),
                "metadata": _metadata(run),
                "byproducts": [
                    _checkpoint_byproduct(snapshot),
                    *_manifest_byproduct(snapshot, manifest_digest),
                    *_evaluation_byproducts(snapshot, documents),
                ],
            },
        },
    }


def _subjects(subjects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Statement v1 ``subject``: non-empty; each with a name and a digest set (statement.md)."""
    result = []
    for i, subject in enumerate(subjects):
        name, digest = subject.get("name"), subject.get("digest")
        if not isinstance(name, str) or not name:
            raise FormatError(f"subject #{i + 1} needs a non-empty 'name' (the artifact's path)")
        if not isinstance(digest, Mapping) or not _SHA256_HEX.fullmatch(str(digest.get("sha256", ""))):
            raise FormatError(f"subject {name!r} needs digest {{'sha256': <64 lowercase hex>}}, got {digest!r}")
        result.append({"name": name, "digest": {str(k): str(v) for k, v in digest.items()}})
    if not result:
        raise ConfigurationError("an in-toto statement needs at least one subject: pass the model's artifact files")
    return result


def _environment(snapshot: Snapshot, documents: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The run's environment manifest: its digest and document (``{}`` when not recorded)."""
    for record in snapshot.records("environment-manifest"):
        digest = record.get("blob")
        if isinstance(digest, str):
            return digest, documents.get(digest) or {}
    return None, {}


def _internal_parameters(snapshot: Snapshot, run: dict[str, Any], manifest_digest: str | None) -> dict[str, Any]:
    model = snapshot.model or {}
    mlflow = {
        "runId": run["run_id"], "runName": run.get("name"), "experimentId": run.get("experiment_id"),
        "experimentName": run.get("experiment_name"), "user": run.get("user"), "status": run.get("status"),
        "registeredModel": model.get("name"), "modelVersion": model.get("version"),
        "loggedModel": model.get("model_id"),
    }
    return _compact({"mlflow": mlflow, "environmentManifest": manifest_digest})


def _dataset_dependencies(snapshot: Snapshot, documents: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The datasets the run used, with their content digests (the record's
    ``digest_description`` says how each was computed)."""
    record_of = {r.get("data_digest"): r.get("blob") for r in snapshot.records("dataset")}
    dependencies = []
    for dataset in snapshot.lineage.get("datasets", []):
        match = _DIGEST.fullmatch(str(dataset.get("digest")))
        if not match:
            continue
        record = record_of.get(dataset["digest"])
        license_ = dataset.get("license") or {}
        dependencies.append(_compact({
            "name": next(iter(dataset.get("names") or []), None) or dataset["digest"],
            "digest": {"sha256": match.group(1)},
            "annotations": {
                "kind": "dataset",
                "contexts": (dataset.get("runs") or {}).get(run_id),
                "license": license_.get("expression") if isinstance(license_, dict) else license_,
                "owner": dataset.get("owner"), "source": dataset.get("source"),
                "parents": dataset.get("parents") or None, "record": record,
                "digestDescription": (documents.get(record) or {}).get("digest_description") if record else None,
            },
        }))
    return dependencies


def _code_dependencies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The git commit, the uncommitted diff and the entry script, as the manifest recorded them."""
    code = manifest.get("code") or {}
    git = code.get("git") or {}
    dependencies = []
    if git.get("available") and git.get("commit"):
        remote, branch = git.get("remote_url"), git.get("branch")
        uri = None
        if remote:  # SLSA's git convention: git+<repository URL>[@<ref>]
            uri = f"git+{remote}@refs/heads/{branch}" if branch else f"git+{remote}"
        dependencies.append(_compact({
            "name": "source",
            "uri": uri,
            "digest": {"gitCommit": git["commit"]},
            "annotations": {"kind": "code", "branch": git.get("branch"), "dirty": bool(git.get("dirty"))},
        }))
    diff = git.get("diff") or {}
    if diff.get("sha256"):
        dependencies.append({
            "name": "uncommitted changes (git diff HEAD --binary)",
            "digest": {"sha256": diff["sha256"]},
            "annotations": _compact({"kind": "code-diff", "against": diff.get("against"), "size": diff.get("size")}),
        })
    entry = code.get("entry_point") or {}
    if entry.get("sha256") and entry.get("path"):
        path = PurePosixPath(entry["path"])
        dependencies.append({
            "name": path.name, "uri": path.as_uri() if path.is_absolute() else str(path),
            "digest": {"sha256": entry["sha256"]}, "annotations": {"kind": "entry-point"},
        })
    return dependencies


def _image_dependencies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The container image: by registry digest (``repo@sha256:…``) when the Docker API gave
    one, else by local image id."""
    image = ((manifest.get("container") or {}).get("api") or {}).get("image") or {}
    for reference in image.get("repo_digests") or []:
        repository, _, digest = str(reference).partition("@")
        match = _DIGEST.fullmatch(digest)
        if match:
            return [{
                "name": repository, "uri": f"pkg:docker/{repository}@{quote(digest, safe='')}",
                "digest": {"sha256": match.group(1)}, "annotations": {"kind": "container-image"},
            }]
    match = _DIGEST.fullmatch(str(image.get("id") or ""))
    if match:
        return [{
            "name": image.get("reference") or "container image", "digest": {"sha256": match.group(1)},
            "annotations": {"kind": "container-image", "digestOf": "local image id (image config), no registry digest"},
        }]
    return []


def _package_dependencies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The Python distributions installed, as package URLs (purl ``pkg:pypi``)."""
    dependencies = []
    for dist in (manifest.get("python") or {}).get("distributions") or []:
        name, version = dist.get("name"), dist.get("version")
        if not name or not version:
            continue
        flags = {flag: True for flag in ("editable", "local", "modified") if dist.get(flag)}
        dependencies.append(_compact({
            "name": name, "uri": f"pkg:pypi/{quote(str(name).lower())}@{quote(str(version))}",
            "annotations": {"kind": "python-package", **flags} if flags else None,
        }))
    return dependencies


def _builder(snapshot: Snapshot, manifest: dict[str, Any]) -> dict[str, Any]:
    """``builder.id``: the tracking database's ledger (its origin); versions from the manifest."""
    versions = {
        str(d.get("name")).lower(): str(d.get("version"))
        for d in (manifest.get("python") or {}).get("distributions") or [] if d.get("name") and d.get("version")
    }
    capture = manifest.get("capture") or {}
    version = _compact({
        "mlflow": versions.get("mlflow"),
        "mlflow-provenance": capture.get("version") or versions.get("mlflow-provenance"),
        "python": (manifest.get("python") or {}).get("version"),
    })
    return _compact({"id": origin_namespace(snapshot.origin), "version": version or None})


def _metadata(run: dict[str, Any]) -> dict[str, Any]:
    return _compact({
        "invocationId": run["run_id"],
        "startedOn": _timestamp(run.get("start_time")),
        "finishedOn": _timestamp(run.get("end_time")),
    })


def _checkpoint_byproduct(snapshot: Snapshot) -> dict[str, Any]:
    """The signed checkpoint (C2SP tlog-checkpoint note) this statement was cut from: its
    text as ``content``, the SHA-256 of that text as ``digest``, the tree it commits to as
    annotations."""
    checkpoint = snapshot.checkpoint
    note = str(checkpoint.get("note") or "").encode("utf-8")
    return {
        "name": "checkpoint",
        "uri": f"{origin_namespace(snapshot.origin)}checkpoint/{checkpoint['size']}",
        "digest": {"sha256": hashlib.sha256(note).hexdigest()},
        "content": base64.b64encode(note).decode("ascii"),
        "mediaType": "text/plain; charset=utf-8",
        "annotations": {
            "kind": "checkpoint", "format": "C2SP tlog-checkpoint signed note", "origin": snapshot.origin,
            "treeSize": int(checkpoint["size"]), "rootHash": checkpoint["root"],
            "rootHashAlgorithm": _ROOT_HASH_ALGORITHM,
        },
    }


def _manifest_byproduct(snapshot: Snapshot, digest: str | None) -> list[dict[str, Any]]:
    match = _DIGEST.fullmatch(digest or "")
    if not match:
        return []
    media_type = (snapshot.blobs.get(digest or "") or {}).get("media_type")
    return [_compact({
        "name": "environment manifest", "digest": {"sha256": match.group(1)}, "mediaType": media_type,
        "annotations": {"kind": "environment-manifest", "digestOf": "RFC 8785 canonical JSON of the manifest"},
    })]


def _evaluation_byproducts(snapshot: Snapshot, documents: dict[str, Any]) -> list[dict[str, Any]]:
    byproducts = []
    for record in snapshot.records("evaluation"):
        match = _DIGEST.fullmatch(str(record.get("blob")))
        if not match:
            continue
        document = documents.get(record["blob"]) or {}
        byproducts.append(_compact({
            "name": "evaluation record", "digest": {"sha256": match.group(1)},
            "mediaType": record.get("media_type"),
            "annotations": {
                "kind": "evaluation", "dataset": record.get("dataset"), "metrics": document.get("metrics"),
                "thresholdsMet": record.get("thresholds_met"), "model": document.get("model"),
            },
        }))
    return byproducts


def _timestamp(millis: Any) -> str | None:
    """Epoch milliseconds as an RFC 3339 UTC timestamp (SLSA ``Timestamp``)."""
    if millis is None:
        return None
    moment = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without ``None`` fields, recursively in nested dicts (unset fields are
    omitted, not null, in in-toto's JSON encoding)."""
    result = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = _compact(item) or None
        if item is not None:
            result[key] = item
    return result


# --- DSSE -------------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding (protocol.md, "Signature definition"):
    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths in ASCII decimal bytes."""
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(encoded_type), encoded_type, len(payload), payload)


def sign_dsse(statement: Mapping[str, Any], signing_key: SigningKey) -> dict[str, Any]:
    """``statement`` as a DSSE envelope signed with ``signing_key`` (Ed25519, RFC 8032).

    The envelope is ``{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"}]}``,
    ``keyid`` being ``signing_key.key_id``; it holds nothing of the private key.

    Raises:
        FormatError: ``statement`` has no RFC 8785 canonical form (NaN, non-string keys…).
    """
    try:
        payload = canonical_json(dict(statement))
    except CanonicalizationError as exc:
        raise FormatError(f"the statement cannot be serialized as canonical JSON: {exc}") from None
    signature = signing_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": signing_key.key_id, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def verify_dsse(envelope: Mapping[str, Any], public_key: PublicKey) -> dict[str, Any]:
    """The statement in ``envelope``, once a signature by ``public_key`` verifies over its PAE.

    Raises:
        FormatError: not a DSSE envelope of an in-toto statement (fields, base64, JSON).
        SignatureError: no signature with ``public_key``'s key id verifies.
    """
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise FormatError(f"payloadType is {envelope.get('payloadType')!r}, not {PAYLOAD_TYPE!r}")
    payload = _b64("payload", envelope.get("payload"))
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise FormatError("the envelope has no signatures")
    message = pae(PAYLOAD_TYPE, payload)
    mine = [s for s in signatures if isinstance(s, Mapping) and s.get("keyid") == public_key.key_id]
    if not mine:
        raise SignatureError(f"the envelope has no signature by key id {public_key.key_id}")
    for entry in mine:
        try:
            public_key.verify(_b64("sig", entry.get("sig")), message)
        except SignatureError:
            continue
        return _statement(payload)
    raise SignatureError(f"the envelope's signature by key id {public_key.key_id} does not verify: it was altered")


def _b64(what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise FormatError(f"envelope field {what!r} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"envelope field {what!r} is not valid base64") from None


def _statement(payload: bytes) -> dict[str, Any]:
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise FormatError(f"the signed payload is not JSON: {exc}") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise FormatError(f"the signed payload is not an in-toto Statement v1 ({STATEMENT_TYPE})")
    return statement
