"""Attaching the environment manifest to a run at ``create_run`` (issue 3).

Where the manifest comes from:

* **embedded** (the store runs in the training process): captured here, for runs made by
  ``mlflow.start_run`` and ``MlflowClient.create_run`` alike;
* **server**: the server cannot see the client's machine, so the client's run-context
  provider (:mod:`.run_context`) sends its manifest in ``create_run``'s tags; the store
  checks it (canonical form, digest, schema), removes the transport tags and records it.
  A run created by a client without the plugin gets ``provenance.env.status = missing``.

Either way the manifest's canonical bytes are stored content-addressed in the ledger
(``prov_blobs``), bound into the ``create_run`` event as a record, in MLflow's own
transaction; the digest and one-line summaries become tags; and after the commit the
manifest is written as the run artifact ``provenance/environment.json`` (with
``provenance/git.diff`` for a small uncommitted diff).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

from mlflow.entities import RunTag

from mlflow_provenance import config
from mlflow_provenance.adapters import artifacts
from mlflow_provenance.environment import capture_environment
from mlflow_provenance.environment import manifest as env
from mlflow_provenance.errors import FormatError
from mlflow_provenance.recorder import Attachment, Blob

_logger = logging.getLogger(__name__)

ARTIFACT_DIR = "provenance"
ARTIFACT_MANIFEST = "environment.json"
ARTIFACT_DIFF = "git.diff"
TAG_SOURCE = "provenance.env.source"
RECORD_KIND = "environment-manifest"
#: Tags only the store writes (at create_run).
OWNED_TAG_PREFIX = env.TAG_PREFIX


def owned_tag_error(key: str) -> Exception:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(
        f"Tag '{key}' is set by mlflow-provenance when the run is created, from the environment "
        f"manifest recorded in the ledger, and cannot be changed or deleted afterwards. Use a tag "
        f"outside the '{OWNED_TAG_PREFIX}' prefix.",
        INVALID_PARAMETER_VALUE,
    )


@dataclass(frozen=True)
class RunEnvironment:
    """What ``create_run`` adds: tags, the ledger attachment, and the manifest (if any)."""

    tags: list[RunTag]
    attachment: Attachment
    manifest: env.Manifest | None


def for_new_run(tags: Sequence[RunTag] | None) -> RunEnvironment:
    """The tags to create a run with, and the environment record to bind into its event.

    Never raises for a bad or absent manifest: the run is created and marked
    ``missing`` (the promotion gate then refuses it), with the reason in a tag.
    """
    tags = list(tags or [])
    ours = {t.key: t.value for t in tags if t.key.startswith(env.TAG_PREFIX)}
    kept = [t for t in tags if not t.key.startswith(env.TAG_PREFIX)]
    manifest: env.Manifest | None = None
    reason = None
    source = "client"
    try:
        manifest = env.from_transport(ours)
        if manifest is not None:
            env.validate(manifest.document)
    except FormatError as exc:
        manifest, reason = None, f"the client's environment manifest was rejected: {exc}"
    if manifest is None and reason is None:
        if config.is_server_process():
            reason = (
                "no environment manifest: the run was created through the server by a client "
                "without mlflow-provenance (install it on the client, then use mlflow.start_run)"
            )
        else:
            try:
                manifest, source = capture_environment(), "store"
            except Exception as exc:  # noqa: BLE001 - boundary: capture must never fail a run
                reason = f"environment capture failed: {type(exc).__name__}: {exc}"
    if manifest is None:
        _logger.warning("mlflow-provenance: run created without an environment manifest: %s", reason)
        record = {"kind": RECORD_KIND, "blob": None, "status": env.STATUS_MISSING, "reason": reason}
        extra = {env.TAG_STATUS: env.STATUS_MISSING, env.TAG_ERROR: reason[:5000]}
        return RunEnvironment(kept + _tags(extra), Attachment(record), None)
    record = {
        "kind": RECORD_KIND,
        "blob": manifest.digest,
        "media_type": env.MEDIA_TYPE,
        "status": manifest.status,
        "source": source,
        "errors": len(manifest.errors),
    }
    blob = Blob(manifest.digest, env.MEDIA_TYPE, manifest.content)
    extra = {**manifest.summary_tags(), TAG_SOURCE: source}
    return RunEnvironment(kept + _tags(extra), Attachment(record, (blob,)), manifest)


def write_artifacts(run: Any, manifest: env.Manifest | None) -> None:
    """Write ``provenance/environment.json`` (and a small diff) into the run's artifacts.

    The ledger holds the authoritative copy; a failure here is logged, not raised (the
    run has been created and committed).
    """
    if manifest is None:
        return
    try:
        with tempfile.TemporaryDirectory(prefix="mlflow-provenance-") as tmp:
            with open(os.path.join(tmp, ARTIFACT_MANIFEST), "wb") as f:
                f.write(manifest.content)
            diff = manifest.git_diff()
            if diff:
                with open(os.path.join(tmp, ARTIFACT_DIFF), "w", encoding="utf-8") as f:
                    f.write(diff)
            artifacts.log_directory(run.info.artifact_uri, tmp, ARTIFACT_DIR)
    except Exception as exc:  # noqa: BLE001 - boundary: the run exists; the ledger has the manifest
        _logger.warning(
            "mlflow-provenance: could not write %s/%s for run %s (the ledger holds it): %s",
            ARTIFACT_DIR, ARTIFACT_MANIFEST, run.info.run_id, exc,
        )


def _tags(values: dict[str, str]) -> list[RunTag]:
    return [RunTag(key, value) for key, value in values.items()]
