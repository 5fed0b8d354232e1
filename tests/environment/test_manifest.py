"""The manifest document: digest over canonical bytes, schema, status, summary tags, transport."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import string
import zlib
from typing import Any

import pytest

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.environment import manifest
from mlflow_provenance.environment.collector import Collector
from mlflow_provenance.environment.manifest import (
    MAX_MANIFEST_BYTES,
    TAG_DIGEST,
    TAG_PART_PREFIX,
    Manifest,
    from_transport,
    transport_tags,
    validate,
)
from mlflow_provenance.errors import FormatError

#: MLflow's limit on a tag value.
MLFLOW_TAG_VALUE_LIMIT = 8000

SUMMARY_KEYS = {
    "provenance.env.digest",
    "provenance.env.status",
    "provenance.env.python",
    "provenance.env.os",
    "provenance.env.gpu",
    "provenance.env.image",
    "provenance.env.git_commit",
}


@pytest.fixture(scope="module")
def captured() -> dict[str, Any]:
    """A real capture of this process (probing takes a moment: once per module)."""
    return Collector().capture().document


@pytest.fixture
def document(captured: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(captured)


def sha256_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def pack(content: bytes, digest: str | None = None, part_chars: int = manifest.PART_CHARS) -> dict[str, str]:
    """Transport tags for arbitrary bytes, built without ``transport_tags``."""
    packed = base64.b64encode(zlib.compress(content)).decode()
    tags = {
        f"{TAG_PART_PREFIX}{i // part_chars:04d}": packed[i : i + part_chars]
        for i in range(0, len(packed), part_chars)
    }
    tags[TAG_DIGEST] = digest or sha256_digest(content)
    return tags


def part_keys(tags: dict[str, str]) -> list[str]:
    return sorted(key for key in tags if key.startswith(TAG_PART_PREFIX))


def large_document(document: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(1234)
    document["x_large_blob"] = "".join(rng.choices(string.ascii_letters + string.digits, k=100_000))
    return document


# --- identity ----------------------------------------------------------------------------------


def test_digest_is_sha256_of_canonical_bytes() -> None:
    doc = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "\u2028"}, "schema_version": 1}
    m = Manifest.from_document(doc)
    assert m.content == canonical_json(doc)
    assert m.content.startswith(b'{"a":{"y":')  # keys sorted, no whitespace
    assert m.digest == sha256_digest(m.content)
    assert m.document == doc
    assert Manifest.from_document(dict(reversed(list(doc.items())))).digest == m.digest


def test_different_documents_have_different_digests() -> None:
    assert Manifest.from_document({"a": 1}).digest != Manifest.from_document({"a": 2}).digest


def test_from_bytes_round_trips_canonical_content(document: dict[str, Any]) -> None:
    original = Manifest.from_document(document)
    read = Manifest.from_bytes(original.content)
    assert read.document == document
    assert read.content == original.content
    assert read.digest == original.digest
    assert Manifest.from_bytes(original.content, expected_digest=original.digest).digest == original.digest


@pytest.mark.parametrize(
    "content",
    [
        b'{"b":1,"a":2}',  # keys out of order
        b'{"a": 1}',  # whitespace
        b'{"a":1}\n',  # trailing newline
        b'{"a":1.0}',  # 1.0 is written 1
        b'{"a":"\\u00e9"}',  # needless escape
        b'{"a":1,"a":2}',  # duplicate key
        b'\xef\xbb\xbf{"a":1}',  # byte order mark
    ],
)
def test_from_bytes_rejects_non_canonical_bytes(content: bytes) -> None:
    with pytest.raises(FormatError, match="canonical|JSON"):
        Manifest.from_bytes(content)


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"1", b"null"])
def test_from_bytes_rejects_non_objects(content: bytes) -> None:
    with pytest.raises(FormatError, match="JSON object"):
        Manifest.from_bytes(content)


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b'{"a":1', b"\xff\xfe\x00"])
def test_from_bytes_rejects_invalid_json(content: bytes) -> None:
    with pytest.raises(FormatError):
        Manifest.from_bytes(content)


@pytest.mark.parametrize(
    "content",
    [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e400}', b'{"a":"\\ud800"}', b"[" * 100_000],
    ids=["nan", "infinity", "overflow", "lone-surrogate", "deep-nesting"],
)
def test_from_bytes_rejects_json_that_has_no_canonical_form(content: bytes) -> None:
    with pytest.raises(FormatError):
        Manifest.from_bytes(content)


def test_from_bytes_rejects_wrong_expected_digest(document: dict[str, Any]) -> None:
    m = Manifest.from_document(document)
    other = Manifest.from_document({**document, "captured_at": "2000-01-01T00:00:00.000000Z"})
    with pytest.raises(FormatError, match="digest"):
        Manifest.from_bytes(m.content, expected_digest=other.digest)
    with pytest.raises(FormatError, match="digest"):
        Manifest.from_bytes(m.content, expected_digest=m.digest.replace("sha256:", "sha512:"))


def test_unknown_fields_are_kept_and_valid(document: dict[str, Any]) -> None:
    document["x_future_section"] = {"nested": [1, {"deep": "value"}]}
    document["capture"]["x_writer_note"] = "from a newer writer"
    document["python"]["x_new_python_field"] = 7
    document["python"]["distributions"][0]["x_license"] = "MIT"
    document["invocation"]["x_launcher"] = {"kind": "torchrun"}
    validate(document)  # every object in the schema is open
    content = Manifest.from_document(document).content
    read = Manifest.from_bytes(content)
    assert read.document["x_future_section"] == {"nested": [1, {"deep": "value"}]}
    assert read.document["capture"]["x_writer_note"] == "from a newer writer"
    assert read.document["python"]["x_new_python_field"] == 7
    assert read.document["python"]["distributions"][0]["x_license"] == "MIT"
    assert read.document["invocation"]["x_launcher"] == {"kind": "torchrun"}
    assert read.content == content
    validate(read.document)


def test_git_diff_reads_the_kept_diff() -> None:
    m = Manifest.from_document({"code": {"git": {"diff": {"sha256": "x", "size": 5, "content": "+line"}}}})
    assert m.git_diff() == "+line"
    assert Manifest.from_document({"code": {"git": {"available": False}}}).git_diff() is None
    assert Manifest.from_document({}).git_diff() is None


# --- schema --------------------------------------------------------------------------------------


def test_schema_is_the_shipped_v1_schema() -> None:
    schema = manifest.schema()
    assert schema["$id"] == manifest.SCHEMA_ID
    assert schema["properties"]["schema_version"] == {"const": manifest.SCHEMA_VERSION}


def test_real_capture_validates(document: dict[str, Any]) -> None:
    validate(document)
    assert document["$schema"] == manifest.SCHEMA_ID
    assert document["schema_version"] == 1


def test_validate_rejects_schema_version_2(document: dict[str, Any]) -> None:
    document["schema_version"] = 2
    with pytest.raises(FormatError, match="field schema_version"):
        validate(document)


def test_validate_rejects_missing_python_section(document: dict[str, Any]) -> None:
    del document["python"]
    with pytest.raises(FormatError, match=r"\(top level\).*'python' is a required property"):
        validate(document)


def test_validate_rejects_distribution_without_version(document: dict[str, Any]) -> None:
    del document["python"]["distributions"][0]["version"]
    with pytest.raises(FormatError, match=r"^environment manifest field python\b"):
        validate(document)


def test_validate_names_the_nested_offending_field(document: dict[str, Any]) -> None:
    del document["python"]["distributions"][0]["version"]
    with pytest.raises(FormatError) as info:
        validate(document)
    message = str(info.value)
    assert "python/distributions/0" in message
    assert "'version' is a required property" in message
    assert len(message) < 1000


def test_validate_rejects_wrong_types(document: dict[str, Any]) -> None:
    document["capture"]["duration_ms"] = -1
    with pytest.raises(FormatError, match="field capture/duration_ms"):
        validate(document)


def test_failed_section_validates_and_makes_the_manifest_partial(document: dict[str, Any]) -> None:
    document["os"] = {"error": "RuntimeError: boom"}
    document["capture"]["errors"] = [{"probe": "os", "error": "RuntimeError: boom"}]
    validate(document)
    m = Manifest.from_document(document)
    assert m.status == manifest.STATUS_PARTIAL
    assert m.errors == [{"probe": "os", "error": "RuntimeError: boom"}]
    assert m.summary_tags()["provenance.env.os"] == "unknown (probe failed)"


def test_status_complete_without_errors(document: dict[str, Any]) -> None:
    document["capture"]["errors"] = []
    m = Manifest.from_document(document)
    assert m.status == manifest.STATUS_COMPLETE
    assert m.errors == []
    assert Manifest.from_document({}).status == manifest.STATUS_COMPLETE


# --- summary tags --------------------------------------------------------------------------------


def test_summary_tags_of_a_real_capture(document: dict[str, Any]) -> None:
    m = Manifest.from_document(document)
    tags = m.summary_tags()
    assert set(tags) == SUMMARY_KEYS
    assert tags["provenance.env.digest"] == m.digest
    assert tags["provenance.env.status"] == m.status
    python = document["python"]
    assert tags["provenance.env.python"] == (
        f"{python['implementation']} {python['version']}, {len(python['distributions'])} packages"
    )
    assert document["os"]["name"] in tags["provenance.env.os"]
    for key, value in tags.items():
        assert isinstance(value, str) and value, key
        assert len(value) <= 250, key


def test_summary_tags_are_cut_to_250_characters() -> None:
    devices = [{"index": i, "name": f"Accelerator model number {i} " + "x" * 40} for i in range(20)]
    doc = {
        "gpu": {"available": True, "driver_version": "550.54", "cuda_driver_version": "12.4", "devices": devices},
        "os": {"name": "Linux", "release": "r" * 400, "architecture": "x86_64"},
    }
    tags = Manifest.from_document(doc).summary_tags()
    assert tags["provenance.env.gpu"].startswith("1 × Accelerator model number 0 ")
    assert len(tags["provenance.env.gpu"]) == 250
    assert len(tags["provenance.env.os"]) == 250
    assert all(len(value) <= 250 for value in tags.values())


def test_summary_tags_describe_gpu_container_and_git() -> None:
    doc = {
        "gpu": {
            "available": True, "driver_version": "550.54", "cuda_driver_version": "12.4",
            "devices": [{"index": 0, "name": "H100"}, {"index": 1, "name": "H100"}, {"index": 2, "name": "A10"}],
        },
        "container": {
            "in_container": True,
            "api": {"used": True, "image": {"repo_digests": ["repo@sha256:" + "a" * 64, "other@sha256:b"]}},
        },
        "code": {"git": {"available": True, "commit": "c" * 40, "dirty": True}},
    }
    tags = Manifest.from_document(doc).summary_tags()
    assert tags["provenance.env.gpu"] == "2 × H100, 1 × A10 (driver 550.54, CUDA 12.4)"
    assert tags["provenance.env.image"] == "repo@sha256:" + "a" * 64
    assert tags["provenance.env.git_commit"] == "c" * 40 + " (dirty)"

    doc["code"]["git"] = {"available": True, "commit": "d" * 40, "dirty": False}
    doc["gpu"] = {"available": False, "reason": "no NVIDIA driver: missing"}
    doc["container"] = {"in_container": False}
    tags = Manifest.from_document(doc).summary_tags()
    assert tags["provenance.env.git_commit"] == "d" * 40
    assert tags["provenance.env.gpu"] == "none (no NVIDIA driver: missing)"
    assert tags["provenance.env.image"] == "none (not in a container)"


def test_summary_tags_of_failed_sections() -> None:
    doc = {name: {"error": "boom"} for name in ("python", "os", "gpu", "container")}
    doc["code"] = {"git": {"error": "boom"}}
    doc["capture"] = {"errors": [{"probe": "python", "error": "boom"}]}
    tags = Manifest.from_document(doc).summary_tags()
    assert tags["provenance.env.status"] == "partial"
    for key in ("python", "os", "gpu", "image", "git_commit"):
        assert tags[f"provenance.env.{key}"] == "unknown (probe failed)", key


# --- transport -----------------------------------------------------------------------------------


def test_transport_round_trips_a_real_capture(document: dict[str, Any]) -> None:
    m = Manifest.from_document(document)
    tags = transport_tags(m)
    assert tags[TAG_DIGEST] == m.digest
    assert part_keys(tags) and all(manifest.is_transport_tag(key) for key in part_keys(tags))
    assert not manifest.is_transport_tag(TAG_DIGEST)
    back = from_transport(tags)
    assert back is not None
    assert back.content == m.content
    assert back.digest == m.digest
    assert back.document == document


def test_transport_round_trips_a_large_manifest_in_many_parts(document: dict[str, Any]) -> None:
    m = Manifest.from_document(large_document(document))
    tags = transport_tags(m)
    keys = part_keys(tags)
    assert len(keys) > 3
    assert keys == [f"{TAG_PART_PREFIX}{i:04d}" for i in range(len(keys))]
    for key, value in tags.items():
        assert len(value) <= MLFLOW_TAG_VALUE_LIMIT, key
        assert len(key) <= 250, key
    shuffled = dict(random.Random(7).sample(list(tags.items()), len(tags)))
    shuffled["mlflow.user"] = "someone"  # unrelated tags are ignored
    back = from_transport(shuffled)
    assert back is not None
    assert back.digest == m.digest
    assert back.content == m.content
    assert back.document["x_large_blob"] == document["x_large_blob"]


def test_from_transport_without_parts_is_none() -> None:
    assert from_transport({}) is None
    assert from_transport({TAG_DIGEST: "sha256:" + "0" * 64, "mlflow.runName": "x"}) is None


@pytest.fixture
def large_tags(document: dict[str, Any]) -> dict[str, str]:
    tags = transport_tags(Manifest.from_document(large_document(document)))
    assert len(part_keys(tags)) > 3
    return tags


def test_from_transport_rejects_a_missing_middle_part(large_tags: dict[str, str]) -> None:
    del large_tags[part_keys(large_tags)[1]]
    with pytest.raises(FormatError, match="contiguous"):
        from_transport(large_tags)


def test_from_transport_rejects_a_missing_last_part(large_tags: dict[str, str]) -> None:
    del large_tags[part_keys(large_tags)[-1]]
    with pytest.raises(FormatError):
        from_transport(large_tags)


def test_from_transport_rejects_a_tampered_part(large_tags: dict[str, str]) -> None:
    key = part_keys(large_tags)[1]
    value = large_tags[key]
    position = len(value) // 2
    replacement = "A" if value[position] != "A" else "B"
    large_tags[key] = value[:position] + replacement + value[position + 1 :]
    with pytest.raises(FormatError):
        from_transport(large_tags)


def test_from_transport_rejects_swapped_parts(large_tags: dict[str, str]) -> None:
    first, second = part_keys(large_tags)[:2]
    large_tags[first], large_tags[second] = large_tags[second], large_tags[first]
    with pytest.raises(FormatError):
        from_transport(large_tags)


def test_from_transport_rejects_a_wrong_claimed_digest(document: dict[str, Any]) -> None:
    tags = transport_tags(Manifest.from_document(document))
    tags[TAG_DIGEST] = "sha256:" + "0" * 64
    with pytest.raises(FormatError, match="digest"):
        from_transport(tags)


def test_from_transport_rejects_a_missing_digest(document: dict[str, Any]) -> None:
    tags = transport_tags(Manifest.from_document(document))
    del tags[TAG_DIGEST]
    with pytest.raises(FormatError, match="provenance.env.digest"):
        from_transport(tags)


@pytest.mark.parametrize("bad", ["!!!not base64!!!", "YWJj ZA==", "YWJjZA"])
def test_from_transport_rejects_non_base64(bad: str) -> None:
    tags = {f"{TAG_PART_PREFIX}0000": bad, TAG_DIGEST: "sha256:" + "0" * 64}
    with pytest.raises(FormatError, match="base64"):
        from_transport(tags)


def test_from_transport_rejects_base64_that_is_not_zlib() -> None:
    tags = {f"{TAG_PART_PREFIX}0000": base64.b64encode(b'{"a":1}').decode(), TAG_DIGEST: "sha256:" + "0" * 64}
    with pytest.raises(FormatError, match="zlib"):
        from_transport(tags)


def test_from_transport_rejects_a_non_numeric_part_index(document: dict[str, Any]) -> None:
    tags = transport_tags(Manifest.from_document(document))
    tags[f"{TAG_PART_PREFIX}abc"] = "AAAA"
    with pytest.raises(FormatError, match="non-numeric"):
        from_transport(tags)


def test_from_transport_rejects_a_zlib_bomb() -> None:
    bomb = zlib.compress(b"0" * (MAX_MANIFEST_BYTES + 1))
    assert len(bomb) < 100_000  # it compresses tiny
    packed = base64.b64encode(bomb).decode()
    tags = {
        f"{TAG_PART_PREFIX}{i // manifest.PART_CHARS:04d}": packed[i : i + manifest.PART_CHARS]
        for i in range(0, len(packed), manifest.PART_CHARS)
    }
    tags[TAG_DIGEST] = "sha256:" + "0" * 64
    with pytest.raises(FormatError, match="larger than"):
        from_transport(tags)


def test_from_transport_accepts_content_of_exactly_the_maximum_size() -> None:
    # The limit is on the inflated size: a canonical document right at the limit is read.
    prefix, suffix = b'{"a":"', b'"}'
    content = prefix + b"0" * (MAX_MANIFEST_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(content) == MAX_MANIFEST_BYTES
    back = from_transport(pack(content))
    assert back is not None
    assert back.digest == sha256_digest(content)


def test_from_transport_rejects_valid_json_that_is_not_canonical() -> None:
    content = b'{"schema_version": 1, "b": 2, "a": 1}'
    tags = pack(content)  # the digest claimed is that of these exact bytes
    with pytest.raises(FormatError, match="canonical"):
        from_transport(tags)


def test_from_transport_rejects_json_with_nan() -> None:
    content = b'{"a":NaN}'
    with pytest.raises(FormatError):
        from_transport(pack(content))


def test_from_transport_of_hand_packed_canonical_bytes() -> None:
    content = canonical_json({"schema_version": 1, "note": "packed by hand"})
    back = from_transport(pack(content, part_chars=8))
    assert back is not None
    assert back.document == {"schema_version": 1, "note": "packed by hand"}
    assert back.digest == sha256_digest(content)
    assert json.loads(back.content) == back.document
