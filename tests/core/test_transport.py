"""Tests for carrying documents in MLflow tags (mlflow_provenance.transport).

Malformed part tags are built here by hand with zlib and base64, independently of ``pack``.
"""

from __future__ import annotations

import base64
import os
import zlib

import pytest

from mlflow_provenance.errors import FormatError
from mlflow_provenance.transport import MAX_DOCUMENT_BYTES, PART_CHARS, pack, unpack

PREFIX = "provenance.test.part."


def parts_of(packed: str) -> dict[str, str]:
    """Split an already base64-encoded payload into part tags, like a writer would."""
    chunks = [packed[i : i + PART_CHARS] for i in range(0, len(packed), PART_CHARS)] or [""]
    return {f"{PREFIX}{i:04d}": chunk for i, chunk in enumerate(chunks)}


def carry(compressed: bytes) -> dict[str, str]:
    return parts_of(base64.b64encode(compressed).decode("ascii"))


def read(tags: dict[str, str]) -> bytes | None:
    return unpack(tags, prefix=PREFIX, what="test document")


# --- round trips ---------------------------------------------------------------------------


def test_empty_content_round_trip():
    tags = pack(b"", prefix=PREFIX)
    assert list(tags) == [f"{PREFIX}0000"]
    assert tags[f"{PREFIX}0000"] != ""  # an empty zlib stream still has a header
    assert read(tags) == b""


def test_small_content_round_trip():
    content = b'{"kind":"dataset","name":"train"}'
    tags = pack(content, prefix=PREFIX)
    assert list(tags) == [f"{PREFIX}0000"]
    assert zlib.decompress(base64.b64decode(tags[f"{PREFIX}0000"])) == content
    assert read(tags) == content


def test_large_incompressible_content_round_trip():
    content = os.urandom(8 * PART_CHARS)  # base64 grows it by 4/3: about 11 parts
    tags = pack(content, prefix=PREFIX)
    assert len(tags) > 5
    assert list(tags) == [f"{PREFIX}{i:04d}" for i in range(len(tags))]
    assert all(0 < len(part) <= PART_CHARS for part in tags.values())
    assert all(len(part) == PART_CHARS for part in list(tags.values())[:-1])
    assert read(tags) == content


def test_compressible_content_fits_one_part():
    content = b"abc" * 100_000
    tags = pack(content, prefix=PREFIX)
    assert len(tags) == 1
    assert read(tags) == content


def test_part_order_in_mapping_does_not_matter():
    content = os.urandom(6 * PART_CHARS)
    tags = pack(content, prefix=PREFIX)
    shuffled = dict(reversed(list(tags.items())))
    assert list(shuffled) != list(tags)
    assert read(shuffled) == content


def test_other_prefixes_ignored():
    content = b"payload" * 10
    tags = {
        "mlflow.runName": "run",
        "provenance.other.part.0000": "not base64 !!!",
        "provenance.test.digest": "sha256:abc",
        **pack(content, prefix=PREFIX),
        "x" + PREFIX + "0001": "ignored",
    }
    assert read(tags) == content


def test_unpack_returns_none_without_parts():
    assert read({}) is None
    assert read({"mlflow.runName": "run", "provenance.other.part.0000": "AAAA"}) is None


def test_prefixes_are_independent():
    a, b = pack(b"first", prefix="a."), pack(b"second", prefix="b.")
    tags = {**a, **b}
    assert unpack(tags, prefix="a.", what="a") == b"first"
    assert unpack(tags, prefix="b.", what="b") == b"second"


def test_exactly_max_document_bytes_accepted():
    content = b"\0" * MAX_DOCUMENT_BYTES
    assert read(carry(zlib.compress(content))) == content


# --- errors -----------------------------------------------------------------------------------


def test_missing_middle_part():
    tags = pack(os.urandom(6 * PART_CHARS), prefix=PREFIX)
    assert len(tags) > 5
    del tags[f"{PREFIX}0002"]
    with pytest.raises(FormatError, match="not contiguous"):
        read(tags)


def test_missing_first_part():
    tags = pack(os.urandom(3 * PART_CHARS), prefix=PREFIX)
    del tags[f"{PREFIX}0000"]
    with pytest.raises(FormatError, match="not contiguous"):
        read(tags)


def test_missing_last_part_is_a_truncated_stream():
    tags = pack(os.urandom(3 * PART_CHARS), prefix=PREFIX)
    del tags[f"{PREFIX}{len(tags) - 1:04d}"]
    with pytest.raises(FormatError):
        read(tags)


def test_duplicate_index_spellings_rejected():
    tags = pack(os.urandom(2 * PART_CHARS), prefix=PREFIX)
    tags[f"{PREFIX}1"] = tags[f"{PREFIX}0001"]
    with pytest.raises(FormatError, match="not contiguous"):
        read(tags)


@pytest.mark.parametrize("index", ["abc", "", "0x01", "1.0"])
def test_non_numeric_index(index):
    tags = pack(b"content", prefix=PREFIX)
    tags[PREFIX + index] = "AAAA"
    with pytest.raises(FormatError, match="non-numeric index"):
        read(tags)


@pytest.mark.parametrize("part", ["!!!not base64!!!", "eJw", "eJ w=", "é"])
def test_not_base64(part):
    with pytest.raises(FormatError, match="base64"):
        read({f"{PREFIX}0000": part})


def test_corrupted_zlib():
    with pytest.raises(FormatError, match="zlib"):
        read(carry(b"this is not a zlib stream at all"))
    compressed = bytearray(zlib.compress(b"some content that is long enough " * 20))
    compressed[-1] ^= 0xFF  # break the Adler-32 checksum
    with pytest.raises(FormatError):
        read(carry(bytes(compressed)))


def test_zlib_bomb_larger_than_limit():
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1024 * 1024)
    compressed = b"".join(compressor.compress(chunk) for _ in range(MAX_DOCUMENT_BYTES // len(chunk) + 1))
    compressed += compressor.flush()
    assert len(compressed) < 100_000  # a small payload ...
    with pytest.raises(FormatError, match="larger than"):  # ... that would inflate past the limit
        read(carry(compressed))


def test_one_byte_over_limit_rejected():
    with pytest.raises(FormatError, match="larger than"):
        read(carry(zlib.compress(b"\0" * (MAX_DOCUMENT_BYTES + 1))))


def test_trailing_zlib_stream_rejected():
    compressed = zlib.compress(b"first document") + zlib.compress(b"second document")
    assert zlib.decompress(compressed) == b"first document"  # zlib alone would ignore it
    with pytest.raises(FormatError, match="trailing data"):
        read(carry(compressed))


def test_trailing_garbage_rejected():
    with pytest.raises(FormatError, match="trailing data"):
        read(carry(zlib.compress(b"document") + b"\x00"))


@pytest.mark.parametrize("cut", [1, 4, 10])
def test_truncated_stream_rejected(cut):
    compressed = zlib.compress(os.urandom(2000))
    with pytest.raises(FormatError, match="truncated"):
        read(carry(compressed[:-cut]))


def test_format_error_names_the_document():
    with pytest.raises(FormatError, match="test document"):
        read(carry(b"garbage"))
