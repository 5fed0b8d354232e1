"""Which code ran — the manifest's ``code`` section.

The entry script (its path and SHA-256) and, when it lives in a git work tree, the
commit, branch, remote URL (credentials stripped), whether the tree is dirty, and the
SHA-256 of the uncommitted diff against ``HEAD`` (with the diff itself when it is small
enough to keep: :data:`MAX_INLINE_DIFF`). Git is run as a subprocess with locks off, so
a capture never blocks or alters a repository someone is working in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from mlflow_provenance.environment.redaction import strip_url_credentials

#: Diffs up to this many bytes are kept in the manifest (and written as an artifact).
MAX_INLINE_DIFF = 64 * 1024
GIT_TIMEOUT_S = 10.0


class GitError(Exception):
    """A git command failed in a repository that exists."""


def entry_point(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The script this process runs, with its digest; ``interactive`` without one."""
    argv = list(sys.argv if argv is None else argv)
    main = sys.modules.get("__main__")
    candidate = getattr(main, "__file__", None) or (argv[0] if argv else "")
    if not candidate or candidate in ("-c", "-m", "-") or not os.path.isfile(candidate):
        return {"kind": "interactive", "path": None}
    path = os.path.abspath(candidate)
    return {"kind": "script", "path": path, "sha256": _file_sha256(path)}


def git_info(start: str | os.PathLike[str]) -> dict[str, Any]:
    """The git state of the work tree containing ``start``.

    Raises:
        GitError: ``start`` is in a repository but git could not read it.
    """
    start = Path(start)
    directory = start if start.is_dir() else start.parent
    try:
        top = _git(directory, "rev-parse", "--show-toplevel").strip()
    except FileNotFoundError:
        return {"available": False, "reason": "git is not installed"}
    except GitError:
        return {"available": False, "reason": f"{directory} is not in a git work tree"}
    root = Path(top)
    try:
        commit = _git(root, "rev-parse", "--verify", "-q", "HEAD").strip() or None
    except GitError:
        commit = None  # a repository without commits yet
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).strip() or None
    status = _git(root, "status", "--porcelain=v1", "--untracked-files=normal")
    changed = [line for line in status.splitlines() if line and not line.startswith("??")]
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    info: dict[str, Any] = {
        "available": True,
        "root": str(root),
        "commit": commit,
        "branch": None if branch == "HEAD" else branch,
        "detached": branch == "HEAD",
        "remote_url": _remote_url(root),
        "dirty": bool(changed),
        "untracked_files": len(untracked),
    }
    if changed and commit:
        diff = _git_bytes(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
        info["diff"] = {
            "sha256": hashlib.sha256(diff).hexdigest(),
            "size": len(diff),
            "against": "HEAD",
            "content": diff.decode("utf-8", "replace") if len(diff) <= MAX_INLINE_DIFF else None,
        }
    return info


def _remote_url(root: Path) -> str | None:
    remotes = _git(root, "remote", check=False).split()
    if not remotes:
        return None
    name = "origin" if "origin" in remotes else remotes[0]
    url = _git(root, "remote", "get-url", name, check=False).strip()
    return strip_url_credentials(url, None) or None


def _git(cwd: Path, *args: str, check: bool = True) -> str:
    return _git_bytes(cwd, *args, check=check).decode("utf-8", "replace")


def _git_bytes(cwd: Path, *args: str, check: bool = True) -> bytes:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args)} timed out after {GIT_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        if check:
            raise GitError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return b""
    return done.stdout


def _file_sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()
