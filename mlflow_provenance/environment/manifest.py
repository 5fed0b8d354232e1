"""The environment manifest as a document: identity, digest, status, summary, transport.

A manifest is a JSON object described by the JSON Schema shipped beside this module
(``schema/environment-manifest-v1.schema.json``). Its identity is
``sha256:<hex>`` over its RFC 8785 canonical bytes; those exact bytes are what the ledger
stores (content-addressed, in ``prov_blobs``) and what the run artifact
``provenance/environment.json`` holds, so ``sha256sum environment.json`` matches the
run's ``provenance.env.digest`` tag.

Readers keep fields they do not know (a newer writer may add some): :class:`Manifest`
wraps the parsed object and never drops keys.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Mapping

from mlflow_provenance import transport
from mlflow_provenance.canonical import CanonicalDocument
from mlflow_provenance.errors import FormatError

SCHEMA_ID = "https://mlflow-provenance.dev/schemas/environment-manifest/v1"
SCHEMA_VERSION = 1
MEDIA_TYPE = "application/vnd.mlflow-provenance.environment.v1+json"

TAG_PREFIX = "provenance.env."
TAG_DIGEST = "provenance.env.digest"
TAG_STATUS = "provenance.env.status"
TAG_ERROR = "provenance.env.error"
#: Summary tags, readable at a glance in the MLflow UI.
TAG_PYTHON = "provenance.env.python"
TAG_OS = "provenance.env.os"
TAG_GPU = "provenance.env.gpu"
TAG_IMAGE = "provenance.env.image"
TAG_GIT_COMMIT = "provenance.env.git_commit"
#: Transport of a client's manifest to a server in ``create_run`` (consumed by the server
#: store, never stored as tags): zlib-compressed canonical bytes, base64, in parts.
TAG_PART_PREFIX = "provenance.env.manifest.part."
PART_CHARS = transport.PART_CHARS
MAX_MANIFEST_BYTES = transport.MAX_DOCUMENT_BYTES

STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
STATUS_MISSING = "missing"

_SUMMARY_LIMIT = 250


class Manifest(CanonicalDocument):
    """A manifest document with its canonical bytes and digest."""

    WHAT = "environment manifest"
    ERROR = FormatError

    @classmethod
    def from_bytes(cls, content: bytes, expected_digest: str | None = None) -> "Manifest":
        """Parse a stored or received manifest, keeping unknown fields.

        Raises:
            FormatError: not a JSON object, not canonical, or not the expected digest.
        """
        manifest = cls.parse(content)
        if expected_digest is not None and manifest.digest != expected_digest:
            raise FormatError(
                f"environment manifest digest is {manifest.digest}, but {expected_digest} was claimed"
            )
        return manifest

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list((self.document.get("capture") or {}).get("errors") or [])

    @property
    def status(self) -> str:
        return STATUS_PARTIAL if self.errors else STATUS_COMPLETE

    def summary_tags(self) -> dict[str, str]:
        """The digest, status and one-line summaries, as run tags."""
        doc = self.document
        tags = {
            TAG_DIGEST: self.digest,
            TAG_STATUS: self.status,
            TAG_PYTHON: _python_summary(doc.get("python") or {}),
            TAG_OS: _os_summary(doc.get("os") or {}),
            TAG_GPU: _gpu_summary(doc.get("gpu") or {}),
            TAG_IMAGE: _image_summary(doc.get("container") or {}),
            TAG_GIT_COMMIT: _git_summary((doc.get("code") or {}).get("git") or {}),
        }
        return {key: value[:_SUMMARY_LIMIT] for key, value in tags.items()}

    def git_diff(self) -> str | None:
        """The uncommitted diff, when small enough to have been kept."""
        diff = ((self.document.get("code") or {}).get("git") or {}).get("diff") or {}
        return diff.get("content")


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of manifests (draft 2020-12)."""
    text = resources.files(__package__).joinpath("schema/environment-manifest-v1.schema.json").read_text()
    return json.loads(text)


def validate(document: Mapping[str, Any]) -> None:
    """Check a manifest against the shipped schema.

    Raises:
        FormatError: naming the first offending field and what the schema wants there.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise FormatError(f"environment manifest field {where}: {error.message}")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


# --- transport: client → server inside create_run --------------------------------------------


def transport_tags(manifest: Manifest) -> dict[str, str]:
    """Tags carrying ``manifest`` to a server store in ``create_run`` (:mod:`mlflow_provenance.transport`)."""
    return {**transport.pack(manifest.content, prefix=TAG_PART_PREFIX), TAG_DIGEST: manifest.digest}


def is_transport_tag(key: str) -> bool:
    return key.startswith(TAG_PART_PREFIX)


def from_transport(tags: Mapping[str, str]) -> Manifest | None:
    """The manifest carried by ``tags``, or ``None`` if they carry none.

    Raises:
        FormatError: parts missing, not base64/zlib, too large, or not matching the
            claimed digest.
    """
    content = transport.unpack(tags, prefix=TAG_PART_PREFIX, what="environment manifest")
    if content is None:
        return None
    claimed = tags.get(TAG_DIGEST)
    if not claimed:
        raise FormatError(f"environment manifest parts arrived without {TAG_DIGEST}")
    return Manifest.from_bytes(content, expected_digest=claimed)


# --- one-line summaries --------------------------------------------------------------------------


def _python_summary(python: Mapping[str, Any]) -> str:
    if python.get("error"):
        return "unknown (probe failed)"
    count = len(python.get("distributions") or [])
    return f"{python.get('implementation', '?')} {python.get('version', '?')}, {count} packages"


def _os_summary(os_: Mapping[str, Any]) -> str:
    if os_.get("error"):
        return "unknown (probe failed)"
    pretty = (os_.get("distribution") or {}).get("pretty_name")
    libc = os_.get("libc") or {}
    parts = [
        pretty,
        f"{os_.get('name', '?')} {os_.get('release', '?')} {os_.get('architecture', '?')}",
        f"{libc.get('name')} {libc.get('version')}" if libc.get("name") else None,
    ]
    return "; ".join(p for p in parts if p)


def _gpu_summary(gpu: Mapping[str, Any]) -> str:
    if gpu.get("error"):
        return "unknown (probe failed)"
    if not gpu.get("available"):
        return f"none ({gpu.get('reason', 'no NVIDIA driver')})"
    devices = gpu.get("devices") or []
    if not devices:
        return f"none (driver {gpu.get('driver_version')}, no devices)"
    names: dict[str, int] = {}
    for device in devices:
        names[str(device.get("name"))] = names.get(str(device.get("name")), 0) + 1
    listing = ", ".join(f"{count} × {name}" for name, count in names.items())
    return f"{listing} (driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_driver_version')})"


def _image_summary(container: Mapping[str, Any]) -> str:
    if container.get("error"):
        return "unknown (probe failed)"
    if not container.get("in_container"):
        return "none (not in a container)"
    api = container.get("api") or {}
    image = api.get("image") or {}
    if api.get("used"):
        digests = image.get("repo_digests") or []
        return digests[0] if digests else f"{image.get('reference')} ({image.get('id')})"
    short = (container.get("id") or "")[:12] or "id unknown"
    return f"container {short}; image unknown ({api.get('reason', 'Docker API not used')})"


def _git_summary(git: Mapping[str, Any]) -> str:
    if git.get("error"):
        return "unknown (probe failed)"
    if not git.get("available"):
        return f"none ({git.get('reason', 'no git')})"
    commit = git.get("commit") or "no commits"
    return f"{commit} (dirty)" if git.get("dirty") else commit
