"""Exports of a model version, for the CLI and the dashboard (issue 6).

Takes the snapshot (:mod:`mlflow_provenance.exports.snapshot`) and renders it; for SLSA,
also reads the model's artifact files (the statement's subjects) through MLflow's
artifact repositories and signs the statement with the ledger key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mlflow_provenance import config
from mlflow_provenance.adapters import artifacts
from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.exports.snapshot import Snapshot, take_snapshot

FORMATS = {
    "bundle": ("bundle.json", "application/json"),
    "prov-json": ("prov.json", "application/json"),
    "prov-o": ("prov.ttl", "text/turtle"),
    "slsa": ("slsa.dsse.json", "application/json"),
    "openlineage": ("openlineage.json", "application/json"),
}


def export_model(engine: sa.engine.Engine, name: str, version: str, fmt: str, *, serving: bool = False) -> tuple[bytes, str, str]:
    """(content, file name, media type) of ``fmt`` for model ``name`` version ``version``.

    Raises:
        ConfigurationError: unknown format or model version, no ledger or checkpoint, no
            signing key for ``slsa``, model artifacts not readable.
    """
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    snapshot = take_snapshot(engine, config.trusted_keyring(), model=(name, str(version)))
    suffix, media_type = FORMATS[fmt]
    filename = f"{name}-v{version}.{suffix}"
    with tempfile.TemporaryDirectory(prefix="mlflow-provenance-export-") as tmp:
        path = Path(tmp) / filename
        _render(snapshot, fmt, path, serving)
        return path.read_bytes(), filename, media_type


def _render(snapshot: Snapshot, fmt: str, path: Path, serving: bool) -> None:
    if fmt == "bundle":
        from mlflow_provenance.exports.bundle import write_bundle

        write_bundle(snapshot, path)
    elif fmt in ("prov-json", "prov-o"):
        from mlflow_provenance.exports import prov

        document = prov.to_prov_document(snapshot)
        (prov.write_prov_json if fmt == "prov-json" else prov.write_prov_turtle)(document, path)
    elif fmt == "slsa":
        from mlflow_provenance.exports import slsa

        key = config.existing_signing_key()  # the ledger's key signs; never created here
        statement = slsa.to_statement(snapshot, model_artifact_subjects(snapshot))
        path.write_text(json.dumps(slsa.sign_dsse(statement, key), indent=2))
    else:
        from mlflow_provenance.exports import openlineage

        path.write_text(json.dumps(openlineage.to_run_events(snapshot), indent=2))


def model_artifact_subjects(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The model's artifact files as in-toto subjects: ``{"name", "digest": {"sha256"}}``.

    Raises:
        ConfigurationError: the version has no logged model or its artifacts cannot be read.
    """
    model = snapshot.model or {}
    location = _artifact_location(model)
    with tempfile.TemporaryDirectory(prefix="mlflow-provenance-subjects-") as tmp:
        try:
            local = artifacts.download(location, tmp)
        except Exception as exc:  # noqa: BLE001 - boundary: any artifact store error
            raise ConfigurationError(f"cannot read the model's artifacts at {location}: {exc}") from exc
        subjects = []
        for root, _, files in os.walk(local):
            for file_name in sorted(files):
                full = Path(root) / file_name
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
                subjects.append({"name": f"{model.get('name')}/{full.relative_to(local).as_posix()}",
                                 "digest": {"sha256": digest}})
    if not subjects:
        raise ConfigurationError(f"model {model.get('name')}/{model.get('version')} has no artifact files at {location}")
    return sorted(subjects, key=lambda s: s["name"])


def _artifact_location(model: dict[str, Any]) -> str:
    from mlflow.tracking import MlflowClient

    if model.get("model_id"):
        return MlflowClient().get_logged_model(model["model_id"]).artifact_location
    source = model.get("source") or ""
    if not source:
        raise ConfigurationError("the model version has no source to read artifacts from")
    return source
