"""Tests for full-content digests of files, directories and globs
(mlflow_provenance.datasets.files).

Expected digests are computed here independently: a file's with :mod:`hashlib` (and the
``sha256sum`` tool), a directory's or glob's by building the manifest exactly as the
module docstring documents it::

    for each regular file, sorted by its relative POSIX path (as UTF-8 bytes):
        <relative path> NUL <size in decimal> NUL <sha256 hex of the file> LF

and taking the SHA-256 of the concatenation.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlflow_provenance.datasets import files
from mlflow_provenance.datasets.files import (
    BUFFER_BYTES,
    DatasetInputError,
    Progress,
    StatCache,
    digest_path,
)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# --- helpers -----------------------------------------------------------------------------------


def make_tree(root: Path, tree: dict[str, bytes]) -> Path:
    """Create ``root`` holding ``tree`` (relative POSIX path -> content)."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, data in tree.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def expected_manifest(tree: dict[str, bytes]) -> bytes:
    """The manifest of ``tree``, built from the documented format (not from the code)."""
    lines = []
    for relative, data in tree.items():
        line = (relative.encode("utf-8") + b"\x00" + str(len(data)).encode("ascii") + b"\x00"
                + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
        lines.append((relative.encode("utf-8"), line))
    lines.sort(key=lambda item: item[0])  # by path bytes
    return b"".join(line for _, line in lines)


def expected_digest(tree: dict[str, bytes]) -> str:
    return "sha256:" + hashlib.sha256(expected_manifest(tree)).hexdigest()


def file_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace ``files.sha256_file`` by a wrapper recording each file it reads."""
    calls: list[str] = []
    real = files.sha256_file

    def counting(path: Any, progress: Any = None) -> str:
        calls.append(os.path.relpath(os.fspath(path)))
        return real(path, progress)

    monkeypatch.setattr(files, "sha256_file", counting)
    return calls


# --- one file ----------------------------------------------------------------------------------


def test_file_digest_is_sha256_of_its_bytes(tmp_path: Path) -> None:
    data = b"id,label\n1,cat\n2,dog\n" * 1000
    path = tmp_path / "train.csv"
    path.write_bytes(data)

    result = digest_path(path)

    assert result.digest == file_digest(data)
    assert result.hex == hashlib.sha256(data).hexdigest()


def test_file_digest_matches_sha256sum(tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        if os.environ.get("CI"):
            pytest.fail("coreutils sha256sum is required in CI")
        pytest.skip("sha256sum is not installed")
    path = tmp_path / "blob.bin"
    path.write_bytes(random.Random(7).randbytes(123_457))

    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout

    assert digest_path(path).hex == out.split()[0]


def test_file_description(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"x" * 4242)

    description = digest_path(path).description

    assert description["kind"] == "file"
    assert description["algorithm"] == "sha256"
    assert description["bytes"] == 4242
    assert description["path"] == str(path.resolve())


def test_file_given_as_relative_path_reports_absolute_path(tmp_path: Path) -> None:
    # conftest chdirs into tmp_path
    Path("rel.txt").write_bytes(b"relative")

    result = digest_path("rel.txt")

    assert result.digest == file_digest(b"relative")
    assert result.description["path"] == str((tmp_path / "rel.txt").resolve())


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    result = digest_path(path)

    assert result.digest == "sha256:" + EMPTY_SHA256
    assert result.digest == file_digest(b"")
    assert result.description["bytes"] == 0


def test_file_larger_than_the_read_buffer(tmp_path: Path) -> None:
    assert BUFFER_BYTES == 4 * 1024 * 1024
    data = bytearray(random.Random(11).randbytes(9 * 1024 * 1024 + 7))
    assert len(data) > 2 * BUFFER_BYTES  # three reads, the last one partial
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    first = digest_path(path)
    assert first.digest == file_digest(bytes(data))
    assert first.description["bytes"] == 9 * 1024 * 1024 + 7

    data[-1] ^= 0x01  # only the last byte, in the third (partial) buffer
    path.write_bytes(data)
    last_changed = digest_path(path)
    assert last_changed.digest != first.digest
    assert last_changed.digest == file_digest(bytes(data))

    data[BUFFER_BYTES] ^= 0x80  # the first byte of the second buffer
    path.write_bytes(data)
    boundary_changed = digest_path(path)
    assert boundary_changed.digest not in (first.digest, last_changed.digest)
    assert boundary_changed.digest == file_digest(bytes(data))


def test_sha256_file_directly(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(BUFFER_BYTES + 1)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()


# --- directories -------------------------------------------------------------------------------


def test_directory_known_answer(tmp_path: Path) -> None:
    tree = {"a.txt": b"hello\n", "b.bin": b"\x00\x01\x02"}
    root = make_tree(tmp_path / "ds", tree)
    # Spelled out once, by hand, so the helper itself is checked too.
    manifest = (
        b"a.txt\x006\x00" + hashlib.sha256(b"hello\n").hexdigest().encode() + b"\n"
        + b"b.bin\x003\x00" + hashlib.sha256(b"\x00\x01\x02").hexdigest().encode() + b"\n"
    )
    assert expected_manifest(tree) == manifest

    assert digest_path(root).digest == "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_directory_sorted_by_path_bytes_with_nested_dirs(tmp_path: Path) -> None:
    # Byte order: "B" (0x42) < "a"; "a-b" (0x2D) < "a.b" (0x2E) < "a/x" (0x2F) < "a0" (0x30);
    # "é" (0xC3 0xA9) sorts after "z". os.walk would list the root's files before "a/x".
    tree = {
        "a0": b"zero",
        "a.b": b"dot",
        "a-b": b"dash",
        "a/x": b"nested one",
        "a/deeper/y.csv": b"1,2\n3,4\n",
        "B.txt": b"upper",
        "z": b"",
        "é.txt": "accent".encode(),
    }
    root = make_tree(tmp_path / "ds", tree)

    result = digest_path(root)

    assert result.digest == expected_digest(tree)
    order = [line.split(b"\x00")[0] for line in expected_manifest(tree).splitlines()]
    assert order == [b"B.txt", b"a-b", b"a.b", b"a/deeper/y.csv", b"a/x", b"a0", b"z", "é.txt".encode()]


def test_directory_description(tmp_path: Path) -> None:
    tree = {"x/1.csv": b"abc", "x/2.csv": b"defgh", "top": b"z"}
    root = make_tree(tmp_path / "ds", tree)

    description = digest_path(root).description

    assert description["kind"] == "directory"
    assert description["algorithm"] == "sha256"
    assert description["manifest"] == "mlflow-provenance/dir-manifest-v1"
    assert description["files"] == 3
    assert description["bytes"] == 3 + 5 + 1
    assert description["path"] == str(root.resolve())
    assert "NUL" in description["entry"]


def test_renaming_a_file_changes_the_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ds", {"a.csv": b"same bytes", "b.csv": b"other"})
    before = digest_path(root).digest

    (root / "a.csv").rename(root / "c.csv")
    after = digest_path(root).digest

    assert after != before
    assert after == expected_digest({"c.csv": b"same bytes", "b.csv": b"other"})


def test_moving_a_file_into_a_subdirectory_changes_the_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ds", {"a.csv": b"same bytes"})
    before = digest_path(root).digest
    (root / "sub").mkdir()
    (root / "a.csv").rename(root / "sub" / "a.csv")

    after = digest_path(root).digest

    assert after != before
    assert after == expected_digest({"sub/a.csv": b"same bytes"})


def test_moving_bytes_between_files_changes_the_digest(tmp_path: Path) -> None:
    # The concatenation of all bytes stays "abcdef"; only the split between files differs.
    one = make_tree(tmp_path / "one", {"a": b"abc", "b": b"def"})
    two = make_tree(tmp_path / "two", {"a": b"ab", "b": b"cdef"})

    assert digest_path(one).digest != digest_path(two).digest
    assert digest_path(two).digest == expected_digest({"a": b"ab", "b": b"cdef"})


def test_adding_an_empty_file_changes_the_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ds", {"a": b"data"})
    before = digest_path(root).digest

    (root / "empty").write_bytes(b"")
    after = digest_path(root).digest

    assert after != before
    assert after == expected_digest({"a": b"data", "empty": b""})


def test_order_of_creation_does_not_matter(tmp_path: Path) -> None:
    tree = {f"d{i % 3}/f{i:02d}.txt": f"content {i}".encode() for i in range(12)}
    forward = make_tree(tmp_path / "forward", tree)
    backward = make_tree(tmp_path / "backward", dict(reversed(list(tree.items()))))
    shuffled_items = list(tree.items())
    random.Random(5).shuffle(shuffled_items)
    shuffled = make_tree(tmp_path / "shuffled", dict(shuffled_items))

    digests = {digest_path(p).digest for p in (forward, backward, shuffled)}

    assert digests == {expected_digest(tree)}


def test_symlink_to_a_file_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"linked content\n")
    copied = make_tree(tmp_path / "copied", {"data.csv": b"linked content\n", "other": b"o"})
    linked = make_tree(tmp_path / "linked", {"other": b"o"})
    (linked / "data.csv").symlink_to(outside)

    result = digest_path(linked)

    assert result.digest == digest_path(copied).digest
    assert result.digest == expected_digest({"data.csv": b"linked content\n", "other": b"o"})
    assert result.description["bytes"] == len(b"linked content\n") + 1  # the target's size


def test_symlink_to_a_directory_is_not_followed(tmp_path: Path) -> None:
    target = make_tree(tmp_path / "elsewhere", {"secret.csv": b"not part of it"})
    root = make_tree(tmp_path / "ds", {"own.csv": b"own"})
    (root / "linked_dir").symlink_to(target, target_is_directory=True)

    result = digest_path(root)

    assert result.digest == expected_digest({"own.csv": b"own"})
    assert result.description["files"] == 1


def test_directory_holding_only_a_symlinked_directory_is_empty(tmp_path: Path) -> None:
    target = make_tree(tmp_path / "elsewhere", {"f": b"x"})
    root = tmp_path / "ds"
    root.mkdir()
    (root / "link").symlink_to(target, target_is_directory=True)

    with pytest.raises(DatasetInputError, match="holds no files"):
        digest_path(root)


def test_empty_directory_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "empty_ds"
    root.mkdir()

    with pytest.raises(DatasetInputError, match="holds no files") as info:
        digest_path(root)
    assert str(root) in str(info.value)


def test_directory_of_empty_subdirectories_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()

    with pytest.raises(DatasetInputError, match="holds no files"):
        digest_path(root)


def test_fifo_inside_a_directory_is_skipped(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ds", {"real.csv": b"1\n"})
    os.mkfifo(root / "pipe")

    assert digest_path(root).digest == expected_digest({"real.csv": b"1\n"})


def test_dangling_symlink_inside_a_directory_is_skipped(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ds", {"real.csv": b"1\n"})
    (root / "dangling").symlink_to(tmp_path / "does-not-exist")

    assert digest_path(root).digest == expected_digest({"real.csv": b"1\n"})


# --- globs -------------------------------------------------------------------------------------


@pytest.fixture
def glob_tree(tmp_path: Path) -> dict[str, bytes]:
    tree = {
        "a.csv": b"a,1\n",
        "b.csv": b"b,2\n",
        "notes.txt": b"not a csv",
        "sub/c.csv": b"c,3\n",
        "sub/deep/d.csv": b"d,4\n",
        "sub/e.json": b"{}",
    }
    make_tree(tmp_path / "data", tree)
    return tree


def test_glob_matches_only_the_pattern(tmp_path: Path, glob_tree: dict[str, bytes]) -> None:
    result = digest_path("data/*.csv")  # relative to tmp_path, the cwd

    # paths are relative to the non-magic base "data", not to the cwd
    assert result.digest == expected_digest({"a.csv": glob_tree["a.csv"], "b.csv": glob_tree["b.csv"]})
    assert result.digest != expected_digest({"data/a.csv": glob_tree["a.csv"], "data/b.csv": glob_tree["b.csv"]})
    assert result.description["kind"] == "glob"
    assert result.description["pattern"] == "data/*.csv"
    assert result.description["base"] == str(tmp_path / "data")
    assert result.description["files"] == 2
    assert result.description["bytes"] == 8
    assert result.description["manifest"] == "mlflow-provenance/dir-manifest-v1"


def test_absolute_glob_gives_the_same_digest(tmp_path: Path, glob_tree: dict[str, bytes]) -> None:
    assert digest_path(str(tmp_path / "data" / "*.csv")).digest == digest_path("data/*.csv").digest


def test_recursive_glob(tmp_path: Path, glob_tree: dict[str, bytes]) -> None:
    result = digest_path("data/**/*.csv")

    wanted = {k: v for k, v in glob_tree.items() if k.endswith(".csv")}
    assert set(wanted) == {"a.csv", "b.csv", "sub/c.csv", "sub/deep/d.csv"}
    assert result.digest == expected_digest(wanted)
    assert result.description["files"] == 4


def test_glob_matching_every_file_equals_the_directory_digest(tmp_path: Path,
                                                               glob_tree: dict[str, bytes]) -> None:
    # "**/*" also matches directories; only regular files enter the manifest
    assert digest_path("data/**/*").digest == digest_path("data").digest == expected_digest(glob_tree)


def test_glob_without_match_is_rejected(tmp_path: Path, glob_tree: dict[str, bytes]) -> None:
    with pytest.raises(DatasetInputError) as info:
        digest_path("data/*.parquet")
    assert "data/*.parquet" in str(info.value)
    assert "matches no file" in str(info.value)


def test_existing_path_with_magic_characters_is_not_a_glob(tmp_path: Path) -> None:
    path = tmp_path / "weird[1].csv"
    path.write_bytes(b"literal")

    result = digest_path(path)

    assert result.description["kind"] == "file"
    assert result.digest == file_digest(b"literal")


# --- errors ------------------------------------------------------------------------------------


def test_nonexistent_path_is_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "missing.csv"

    with pytest.raises(DatasetInputError) as info:
        digest_path(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_fifo_is_neither_file_nor_directory(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    with pytest.raises(DatasetInputError, match="neither a regular file nor a directory") as info:
        digest_path(fifo)
    assert str(fifo) in str(info.value)


# --- stat cache --------------------------------------------------------------------------------


def test_unchanged_directory_is_not_read_again(tmp_path: Path, counted: list[str]) -> None:
    tree = {"a": b"1", "b": b"22", "sub/c": b"333"}
    root = make_tree(tmp_path / "ds", tree)
    cache = StatCache(tmp_path / "c.sqlite")

    first = digest_path(root, cache=cache)
    assert sorted(counted) == ["ds/a", "ds/b", "ds/sub/c"]
    counted.clear()

    second = digest_path(root, cache=cache)

    assert counted == []
    assert second.digest == first.digest == expected_digest(tree)


def test_modified_file_is_the_only_one_read_again(tmp_path: Path, counted: list[str]) -> None:
    tree = {"a": b"1", "b": b"22", "sub/c": b"333"}
    root = make_tree(tmp_path / "ds", tree)
    cache = StatCache(tmp_path / "c.sqlite")
    first = digest_path(root, cache=cache)
    counted.clear()

    (root / "b").write_bytes(b"twenty-two")  # new content and new size
    second = digest_path(root, cache=cache)

    assert counted == ["ds/b"]
    assert second.digest != first.digest
    assert second.digest == expected_digest({**tree, "b": b"twenty-two"})


def test_forged_mtime_after_same_size_change_is_still_detected(tmp_path: Path, counted: list[str]) -> None:
    tree = {"a": b"original", "b": b"untouched"}
    root = make_tree(tmp_path / "ds", tree)
    cache = StatCache(tmp_path / "c.sqlite")
    first = digest_path(root, cache=cache)
    counted.clear()
    before = os.stat(root / "a")
    time.sleep(0.05)  # ctime has a coarse (jiffy) granularity: let it move on

    (root / "a").write_bytes(b"ORIGINAL")  # same size
    os.utime(root / "a", ns=(before.st_atime_ns, before.st_mtime_ns))  # forge the mtime back
    after = os.stat(root / "a")
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns  # the only witness left

    second = digest_path(root, cache=cache)

    assert counted == ["ds/a"]
    assert second.digest != first.digest
    assert second.digest == expected_digest({"a": b"ORIGINAL", "b": b"untouched"})


def test_cache_survives_a_new_instance(tmp_path: Path, counted: list[str]) -> None:
    tree = {"a": b"1", "b": b"2"}
    root = make_tree(tmp_path / "ds", tree)
    first = digest_path(root, cache=StatCache(tmp_path / "c.sqlite"))
    assert len(counted) == 2
    counted.clear()

    second = digest_path(root, cache=StatCache(tmp_path / "c.sqlite"))

    assert counted == []
    assert second.digest == first.digest == expected_digest(tree)


def test_cache_for_a_single_file(tmp_path: Path, counted: list[str]) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"single")
    cache = StatCache(tmp_path / "cache" / "nested" / "c.sqlite")  # parent is created

    first = digest_path(path, cache=cache)
    second = digest_path(path, cache=cache)

    assert len(counted) == 1
    assert first.digest == second.digest == file_digest(b"single")


def test_cache_without_path_never_caches(tmp_path: Path, counted: list[str]) -> None:
    root = make_tree(tmp_path / "ds", {"a": b"1", "b": b"2"})
    cache = StatCache(None)

    digest_path(root, cache=cache)
    digest_path(root, cache=cache)
    digest_path(root)  # no cache given: none is used either
    digest_path(root)

    assert sorted(counted) == sorted(["ds/a", "ds/b"] * 4)
    assert cache.get(str(root / "a"), os.stat(root / "a")) is None


def test_cache_does_not_trust_entries_for_another_stat(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    cache = StatCache(tmp_path / "c.sqlite")
    st = os.stat(path)
    cache.put(str(path), st, "f" * 64)

    assert cache.get(str(path), st) == "f" * 64
    path.write_bytes(b"abcd")
    assert cache.get(str(path), os.stat(path)) is None
    assert cache.get(str(tmp_path / "other"), st) is None


def test_corrupt_cache_file_does_not_break_hashing(tmp_path: Path) -> None:
    tree = {"a": b"1", "b": b"2"}
    root = make_tree(tmp_path / "ds", tree)
    cache_path = tmp_path / "c.sqlite"
    cache_path.write_bytes(b"this is not an SQLite database\x00" * 512)

    assert digest_path(root, cache=StatCache(cache_path)).digest == expected_digest(tree)


def test_cache_with_garbage_rows_is_ignored(tmp_path: Path) -> None:
    """A valid SQLite file with a table of another shape: the errors are caught in get/put."""
    import sqlite3

    cache_path = tmp_path / "c.sqlite"
    db = sqlite3.connect(cache_path)
    db.execute("CREATE TABLE digests (unrelated TEXT)")
    db.commit()
    db.close()
    tree = {"a": b"1", "b": b"2"}
    root = make_tree(tmp_path / "ds", tree)

    assert digest_path(root, cache=StatCache(cache_path)).digest == expected_digest(tree)
    assert digest_path(root, cache=StatCache(cache_path)).digest == expected_digest(tree)


# --- parallel hashing --------------------------------------------------------------------------


def test_parallel_hashing_gives_the_same_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(50)
    tree = {f"part-{i:03d}/{i}.bin": rng.randbytes(rng.randrange(0, 20_000)) for i in range(50)}
    root = make_tree(tmp_path / "ds", tree)
    threads: set[str] = set()
    real = files.sha256_file

    def recording(path: Any, progress: Any = None) -> str:
        threads.add(threading.current_thread().name)
        time.sleep(0.001)  # give the other workers a chance to pick up files
        return real(path, progress)

    monkeypatch.setattr(files, "sha256_file", recording)

    serial = digest_path(root, workers=1)
    assert threads == {threading.current_thread().name}
    threads.clear()
    parallel = digest_path(root, workers=8)

    assert parallel.digest == serial.digest == expected_digest(tree)
    assert parallel.description["files"] == 50
    assert len(threads) > 1  # it did run on several worker threads
    assert all(name.startswith("mlflow-provenance-hash") for name in threads)


# --- a file changing while it is hashed --------------------------------------------------------


@pytest.fixture
def growing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sha256_file`` that appends to the file it has just read (a writer racing the hash)."""
    real = files.sha256_file

    def appending(path: Any, progress: Any = None) -> str:
        digest = real(path, progress)
        with open(path, "ab") as f:
            f.write(b"appended while hashing")
        return digest

    monkeypatch.setattr(files, "sha256_file", appending)


def test_file_changing_while_hashed_is_rejected(tmp_path: Path, growing: None) -> None:
    path = tmp_path / "live.log"
    path.write_bytes(b"line 1\n")

    with pytest.raises(DatasetInputError, match="changed while it was being hashed") as info:
        digest_path(path)
    assert str(path) in str(info.value)


def test_directory_file_changing_while_hashed_is_rejected_and_not_cached(
        tmp_path: Path, growing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "ds", {"live.log": b"line 1\n"})
    cache = StatCache(tmp_path / "c.sqlite")

    with pytest.raises(DatasetInputError, match="changed while it was being hashed"):
        digest_path(root, cache=cache)

    monkeypatch.undo()  # the real sha256_file again
    content = (root / "live.log").read_bytes()
    assert content == b"line 1\nappended while hashing"
    assert digest_path(root, cache=cache).digest == expected_digest({"live.log": content})


# --- progress ----------------------------------------------------------------------------------


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_percent_and_mib() -> None:
    stream = io.StringIO()
    progress = Progress("x", 8 * 2**20, stream=stream, enabled=True, interval_s=0)

    progress.advance(2 * 2**20)

    text = stream.getvalue()
    assert "x" in text
    assert "25.0%" in text
    assert "MiB" in text
    assert "2 of 8 MiB" in text

    progress.close()
    text = stream.getvalue()
    assert "100.0%" in text
    assert text.endswith("\n")


def test_progress_interval_throttles_drawing() -> None:
    stream = io.StringIO()
    progress = Progress("x", 100, stream=stream, enabled=True, interval_s=3600)
    for _ in range(10):
        progress.advance(1)
    assert stream.getvalue() == ""
    assert progress.done == 10


def test_progress_is_off_by_default_for_small_totals_and_non_tty_streams() -> None:
    assert Progress("x", 1024, stream=FakeTty()).enabled is False  # small total, even on a tty
    assert Progress("x", 2**40, stream=io.StringIO()).enabled is False  # large total, not a tty
    assert Progress("x", 2**40, stream=FakeTty()).enabled is True  # both: on

    stream = io.StringIO()
    quiet = Progress("x", 1024, stream=stream, interval_s=0)
    quiet.advance(512)
    quiet.close()
    assert stream.getvalue() == ""


def test_digest_path_progress_prints_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "shown.bin"
    path.write_bytes(b"p" * (BUFFER_BYTES + 10))

    result = digest_path(path, progress=True)

    captured = capsys.readouterr()
    assert result.digest == file_digest(b"p" * (BUFFER_BYTES + 10))
    assert captured.out == ""
    assert str(path) in captured.err
    assert "100.0%" in captured.err
    assert "MiB" in captured.err
    assert captured.err.endswith("\n")


def test_digest_path_is_quiet_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "ds", {"a": b"1"})
    digest_path(root)
    digest_path(root / "a")
    assert capsys.readouterr().err == ""
