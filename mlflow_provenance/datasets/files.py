"""Full-content digests of files, directories and globs.

Every byte is hashed with SHA-256 (through OpenSSL, via :mod:`hashlib`, reading into one
reusable buffer so the hash runs at the library's speed). A file's digest is the plain
SHA-256 of its bytes. A directory's (or a glob's) digest is the SHA-256 of a manifest:

    for each regular file, sorted by its relative POSIX path (as UTF-8 bytes):
        <relative path> NUL <size in decimal> NUL <sha256 hex of the file> LF

The algorithm and these parameters are part of the recorded description
(``mlflow-provenance/dir-manifest-v1``), as model-transparency records its shard size in
the hash name. Files are hashed in parallel threads. A stat cache (path, size, mtime,
ctime, inode, device) skips files that have not changed since they were last hashed.
"""

from __future__ import annotations

import concurrent.futures as futures
import glob as _glob
import hashlib
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

from mlflow_provenance.errors import ProvenanceError

BUFFER_BYTES = 4 * 1024 * 1024
MANIFEST_FORMAT = "mlflow-provenance/dir-manifest-v1"
MANIFEST_ENTRY = "<relative POSIX path> NUL <size> NUL <sha256 hex> LF, sorted by path bytes"


class DatasetInputError(ProvenanceError, ValueError):
    """The data given to ``log_dataset`` cannot be read or is of an unsupported kind."""


@dataclass(frozen=True)
class ContentDigest:
    """A full-content digest and how it was computed."""

    digest: str  # "sha256:<hex>"
    description: dict[str, Any]

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


# --- one file ----------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str], progress: "Progress | None" = None) -> str:
    """SHA-256 hex of every byte of ``path``."""
    h = hashlib.sha256()
    buffer = bytearray(BUFFER_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            h.update(view[:n])
            if progress is not None:
                progress.advance(n)
    return h.hexdigest()


# --- stat cache --------------------------------------------------------------------------------


class StatCache:
    """Digests of files keyed by what ``stat`` says about them, in a small SQLite file.

    A file is re-read when any of size, mtime, ctime, inode or device differ (setting an
    mtime back with ``touch -d`` changes the ctime). Safe across threads and processes.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection | None:
        """This thread's connection, or None when there is no usable cache (then nothing is cached)."""
        if self._path is None:
            return None
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
                db.execute(
                    "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                    " ctime_ns INTEGER, ino INTEGER, dev INTEGER, sha256 TEXT)"
                )
            except (sqlite3.Error, OSError):
                self._path = None  # a corrupt or unwritable cache only costs re-reading
                return None
            self._local.db = db
        return db

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def get(self, path: str, st: os.stat_result) -> str | None:
        db = self._db()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT size, mtime_ns, ctime_ns, ino, dev, sha256 FROM digests WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or tuple(row[:5]) != self._key(st):
            return None
        return row[5]

    def put(self, path: str, st: os.stat_result, sha256: str) -> None:
        db = self._db()
        if db is None:
            return
        try:
            db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)", (path, *self._key(st), sha256))
        except sqlite3.Error:
            pass  # a cache that cannot be written only costs a re-read next time


def default_cache() -> StatCache:
    from mlflow_provenance.config import provenance_home

    return StatCache(provenance_home() / "digest-cache.sqlite")


# --- progress ----------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on ``stream`` for long hashing (bytes done of total)."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None, enabled: bool | None = None,
                 interval_s: float = 0.5) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = total >= 256 * 1024 * 1024 and getattr(self.stream, "isatty", lambda: False)()
        self.enabled = enabled
        self._interval = interval_s
        self._started = self._last = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, n: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last >= self._interval:
                self._last = now
                self._draw(now)

    def close(self) -> None:
        if self.enabled:
            self.done = max(self.done, self.total)
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / max(now - self._started, 1e-9) / 2**20
        self.stream.write(
            f"\rmlflow-provenance: hashing {self.label}: {pct:5.1f}% "
            f"({self.done / 2**20:,.0f} of {self.total / 2**20:,.0f} MiB, {rate:,.0f} MiB/s)"
        )
        self.stream.flush()


# --- files, directories, globs -----------------------------------------------------------------


@dataclass
class _Entry:
    relative: str
    absolute: str
    stat: os.stat_result
    sha256: str = field(default="")


def digest_path(
    target: str | os.PathLike[str],
    *,
    cache: StatCache | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> ContentDigest:
    """The full-content digest of a file, a directory, or a glob pattern.

    Raises:
        DatasetInputError: nothing exists at ``target``, a file cannot be read, or a glob
            matches no file.
    """
    text = os.fspath(target)
    if _glob.has_magic(text) and not os.path.exists(text):
        return _digest_glob(text, cache=cache, progress=progress, workers=workers)
    path = Path(text)
    try:
        st = path.stat()
    except OSError as exc:
        raise DatasetInputError(f"cannot read dataset {text}: {exc.strerror or exc}. Check the path.") from exc
    if path.is_dir():
        entries = _walk(path)
        if not entries:
            raise DatasetInputError(f"dataset directory {text} holds no files")
        return _digest_entries(entries, {"kind": "directory", "path": str(path.resolve())},
                               cache=cache, progress=progress, workers=workers, label=text)
    if not path.is_file():
        raise DatasetInputError(f"dataset {text} is neither a regular file nor a directory")
    entry = _Entry(path.name, str(path.resolve()), st)
    _hash_entries([entry], cache, _progress(text, st.st_size, progress), 1)
    return ContentDigest(
        "sha256:" + entry.sha256,
        {"kind": "file", "algorithm": "sha256", "path": entry.absolute, "bytes": st.st_size},
    )


def _digest_glob(pattern: str, **kwargs: Any) -> ContentDigest:
    base = _glob_base(pattern)
    matches = sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))
    if not matches:
        raise DatasetInputError(f"glob {pattern!r} matches no file")
    entries = []
    for match in matches:
        try:
            st = os.stat(match)
        except OSError as exc:
            raise DatasetInputError(f"cannot read dataset file {match}: {exc.strerror or exc}") from exc
        entries.append(_Entry(Path(os.path.relpath(match, base)).as_posix(), os.path.abspath(match), st))
    description = {"kind": "glob", "pattern": pattern, "base": os.path.abspath(base)}
    return _digest_entries(entries, description, label=pattern, **kwargs)


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts:
        if _glob.has_magic(part):
            break
        base.append(part)
    return str(Path(*base)) if base else "."


def _walk(root: Path) -> list[_Entry]:
    entries = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in files:
            absolute = os.path.join(directory, name)
            if not os.path.isfile(absolute):
                continue  # sockets, fifos, dangling links
            try:
                st = os.stat(absolute)  # follows a link to a file
            except OSError as exc:
                raise DatasetInputError(f"cannot read dataset file {absolute}: {exc.strerror or exc}") from exc
            entries.append(_Entry(Path(os.path.relpath(absolute, root)).as_posix(), absolute, st))
    return entries


def _digest_entries(
    entries: list[_Entry], description: dict[str, Any], *, cache: StatCache | None, progress: bool | None,
    workers: int | None, label: str,
) -> ContentDigest:
    total = sum(e.stat.st_size for e in entries)
    _hash_entries(entries, cache, _progress(label, total, progress), workers)
    entries.sort(key=lambda e: e.relative.encode("utf-8", "surrogateescape"))
    manifest = hashlib.sha256()
    for e in entries:
        manifest.update(f"{e.relative}\0{e.stat.st_size}\0{e.sha256}\n".encode("utf-8", "surrogateescape"))
    return ContentDigest(
        "sha256:" + manifest.hexdigest(),
        {
            **description,
            "algorithm": "sha256",
            "manifest": MANIFEST_FORMAT,
            "entry": MANIFEST_ENTRY,
            "files": len(entries),
            "bytes": total,
            "symlinks": "links to files are followed; links to directories are not",
        },
    )


def _progress(label: str, total: int, enabled: bool | None) -> Progress:
    return Progress(label, total, enabled=enabled)


def _hash_entries(entries: Iterable[_Entry], cache: StatCache | None, progress: Progress, workers: int | None) -> None:
    cache = cache if cache is not None else StatCache(None)
    todo = []
    for e in entries:
        cached = cache.get(e.absolute, e.stat)
        if cached:
            e.sha256 = cached
            progress.advance(e.stat.st_size)
        else:
            todo.append(e)

    def work(e: _Entry) -> None:
        try:
            e.sha256 = sha256_file(e.absolute, progress)
            after = os.stat(e.absolute)
        except OSError as exc:
            raise DatasetInputError(f"cannot read dataset file {e.absolute}: {exc.strerror or exc}") from exc
        if StatCache._key(after) != StatCache._key(e.stat):
            raise DatasetInputError(f"dataset file {e.absolute} changed while it was being hashed; try again")
        cache.put(e.absolute, e.stat, e.sha256)

    count = workers or min(32, (os.cpu_count() or 1) + 2)
    try:
        if len(todo) <= 1 or count == 1:
            for e in todo:
                work(e)
        else:
            with futures.ThreadPoolExecutor(max_workers=count, thread_name_prefix="mlflow-provenance-hash") as pool:
                for result in pool.map(work, todo):
                    pass
    finally:
        progress.close()
