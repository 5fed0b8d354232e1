"""The Python interpreter and every installed distribution — the manifest's ``python`` section.

For each distribution: name, version, where it was installed from (PEP 610
``direct_url.json``: editable, local path, VCS, archive URL) and whether any of its files
changed after installation. The last check reads the wheel ``RECORD``: a file whose size
differs from RECORD's, or whose mtime is newer than RECORD itself, is hashed and compared
with RECORD's hash (PEP 376/627 ``sha256=`` urlsafe-base64). Hashing every installed byte
would cost seconds per process; the size/mtime screen keeps it to the few files that
could differ. A file altered with its mtime forged back and its size kept escapes the
screen — this is an inventory of the environment, not a defence against its owner.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from mlflow_provenance.environment.redaction import strip_url_credentials

#: At most this many modified files are named per distribution (the count is always exact).
MAX_LISTED_MODIFIED = 20


def python_info() -> dict[str, Any]:
    """The interpreter: version, implementation, executable, prefixes."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "compiler": platform.python_compiler(),
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "virtualenv": sys.prefix != sys.base_prefix,
    }


def distributions() -> list[dict[str, Any]]:
    """Every importable distribution, the first on ``sys.path`` winning (as pip sees them).

    A ``.dist-info`` without readable metadata or version (an interrupted install) is listed
    by :func:`unreadable_distributions` instead, not allowed to spoil the inventory.
    """
    seen: set[str] = set()
    result = []
    for dist in metadata.distributions():
        identity = _identity(dist)
        if identity is None:
            continue
        name, version = identity
        normalized = re.sub(r"[-_.]+", "-", name).lower()
        if normalized in seen:
            continue
        seen.add(normalized)
        result.append(_describe(dist, name, version))
    result.sort(key=lambda d: d["name"].lower())
    return result


def unreadable_distributions() -> list[str]:
    """Metadata directories on ``sys.path`` that name no distribution (no Name or Version)."""
    return sorted(str(getattr(d, "_path", "?")) for d in metadata.distributions() if _identity(d) is None)


def _identity(dist: metadata.Distribution) -> tuple[str, str] | None:
    try:
        name, version = dist.metadata["Name"], dist.version
    except Exception:  # noqa: BLE001 - importlib_metadata raises its own MetadataNotFound
        return None
    if not name or not version:
        return None
    return str(name), str(version)


def freeze(dists: list[dict[str, Any]]) -> list[str]:
    """``pip freeze``'s lines for ``dists``: ``name==version``, ``-e <path>``, ``name @ <url>``."""
    lines = []
    for dist in dists:
        origin = dist.get("origin") or {}
        url = origin.get("url")
        if origin.get("editable") and url:
            lines.append(f"-e {url}")
        elif origin.get("vcs") and url:
            lines.append(f"{dist['name']} @ {origin['vcs']}+{url}@{origin.get('commit', '')}")
        elif url:
            lines.append(f"{dist['name']} @ {url}")
        else:
            lines.append(f"{dist['name']}=={dist['version']}")
    return lines


def _describe(dist: metadata.Distribution, name: str, version: str) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name, "version": version}
    origin = _origin(dist)
    if origin:
        info["origin"] = origin
    info["editable"] = bool(origin.get("editable"))
    info["local"] = bool(origin.get("url", "").startswith("file:"))
    info.update(_modified_files(dist))
    return info


def _origin(dist: metadata.Distribution) -> dict[str, Any]:
    """PEP 610 ``direct_url.json``, credentials stripped; empty for index installs."""
    text = dist.read_text("direct_url.json")
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {"error": "direct_url.json is not valid JSON"}
    origin: dict[str, Any] = {"url": strip_url_credentials(str(doc.get("url", "")), None)}
    dir_info = doc.get("dir_info") or {}
    if "dir_info" in doc:
        origin["kind"] = "directory"
        origin["editable"] = bool(dir_info.get("editable"))
    vcs_info = doc.get("vcs_info")
    if isinstance(vcs_info, dict):
        origin["kind"] = "vcs"
        origin["vcs"] = vcs_info.get("vcs")
        origin["commit"] = vcs_info.get("commit_id")
    if "archive_info" in doc:
        origin["kind"] = "archive"
        archive = doc.get("archive_info") or {}
        if archive.get("hash") or archive.get("hashes"):
            origin["hash"] = archive.get("hash") or archive.get("hashes")
    return origin


def _modified_files(dist: metadata.Distribution) -> dict[str, Any]:
    """``modified`` (bool or ``None`` when there is no RECORD) and the files that differ."""
    record_text = dist.read_text("RECORD")
    meta_dir = getattr(dist, "_path", None)
    if not record_text or meta_dir is None:
        return {"modified": None, "record": "no RECORD (installed without a wheel record)"}
    try:
        installed_at = os.stat(Path(meta_dir) / "RECORD").st_mtime
    except OSError:
        return {"modified": None, "record": "RECORD unreadable"}
    base = Path(dist.locate_file(""))
    modified: list[str] = []
    for row in csv.reader(record_text.splitlines()):
        if len(row) != 3:
            continue
        path, digest, size = row
        if not digest.startswith("sha256="):
            continue  # RECORD itself, .pyc files and INSTALLER-written files carry no hash
        full = base / path
        try:
            stat = os.stat(full)
        except OSError:
            modified.append(path)
            continue
        if (size and str(stat.st_size) != size) or stat.st_mtime > installed_at + 1:
            if _record_hash(full) != digest:
                modified.append(path)
    result: dict[str, Any] = {"modified": bool(modified)}
    if modified:
        result["modified_files"] = sorted(modified)[:MAX_LISTED_MODIFIED]
        result["modified_count"] = len(modified)
    return result


def _record_hash(path: Path) -> str:
    """``sha256=<urlsafe b64, no padding>`` of a file, as RECORD writes it (PEP 376)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return "sha256=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def site_directories_signature() -> tuple[tuple[str, float], ...]:
    """The mtimes of the package directories: an install or uninstall changes one.

    Only ``site-packages``/``dist-packages`` directories count; the script's own directory
    (``sys.path[0]``) changes whenever the program writes a file there.
    """
    signature = []
    for entry in sys.path:
        if not entry.rstrip("/\\").endswith(("site-packages", "dist-packages")):
            continue
        try:
            signature.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            continue
    return tuple(signature)
