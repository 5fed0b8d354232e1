"""Carrying a document from a client to a server store inside ordinary MLflow tags.

MLflow's REST API has no field for our documents (environment manifests, evaluation
records), and a tag value is cut at 8,000 characters. So the client packs the document's
canonical bytes — zlib-compressed, base64 — into numbered *part* tags of a write that
must carry it anyway (``create_run``, ``log_batch``), with the digest in a companion tag;
the provenance store on the server takes the parts out, checks them and records the
document. The parts are never stored as tags.
"""

from __future__ import annotations

import base64
import zlib
from typing import Mapping

from mlflow_provenance.errors import FormatError

PART_CHARS = 6000
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024


def pack(content: bytes, *, prefix: str) -> dict[str, str]:
    """Part tags ``<prefix>0000``, ``<prefix>0001``… carrying ``content``."""
    packed = base64.b64encode(zlib.compress(content, 6)).decode("ascii")
    parts = [packed[i : i + PART_CHARS] for i in range(0, len(packed), PART_CHARS)] or [""]
    return {f"{prefix}{index:04d}": part for index, part in enumerate(parts)}


def unpack(tags: Mapping[str, str], *, prefix: str, what: str) -> bytes | None:
    """The bytes carried by the part tags in ``tags``, or ``None`` if there are none.

    Raises:
        FormatError: parts missing or out of order, not base64/zlib, larger than
            :data:`MAX_DOCUMENT_BYTES`, or followed by trailing data.
    """
    parts = {key[len(prefix):]: value for key, value in tags.items() if key.startswith(prefix)}
    if not parts:
        return None
    try:
        indices = sorted(int(index) for index in parts)
    except ValueError as exc:
        raise FormatError(f"{what} part with a non-numeric index: {exc}") from exc
    if indices != list(range(len(indices))):
        raise FormatError(f"{what} parts are not contiguous: got {indices}")
    packed = "".join(parts[key] for key in sorted(parts, key=int))
    try:
        compressed = base64.b64decode(packed, validate=True)
        inflater = zlib.decompressobj()
        content = inflater.decompress(compressed, MAX_DOCUMENT_BYTES)
    except (ValueError, zlib.error) as exc:
        raise FormatError(f"{what} parts are not base64 zlib data: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise FormatError(f"{what} is truncated, has trailing data, or is larger than {MAX_DOCUMENT_BYTES} bytes")
    return content
