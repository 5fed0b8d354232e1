"""The ``code`` section: git against real temporary repositories, and the entry script.

Expected values come from git itself (``git rev-parse``, ``git diff``) run by the test, or
from hashing the files the test wrote, never from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mlflow_provenance.environment.code import MAX_INLINE_DIFF, GitError, entry_point, git_info


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config; identity from the environment; no discovery above tmp_path."""
    config = tmp_path / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = main\n[user]\n\tname = Test\n\temail = test@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name, value in {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}.items():
        monkeypatch.setenv(name, value)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str) -> str:
    return git_bytes(repo, *args).decode()


def git_bytes(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True)
    return done.stdout


def make_repo(path: Path, files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files if files is not None else {"train.py": "print('hello')\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def same_dir(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


# --- clean, dirty, untracked ---------------------------------------------------------------------


def test_clean_repository(tmp_path):
    repo = make_repo(tmp_path / "repo")
    info = git_info(repo)
    assert info["available"] is True
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert len(info["commit"]) == 40
    assert info["branch"] == "main"
    assert info["detached"] is False
    assert info["dirty"] is False
    assert info["untracked_files"] == 0
    assert info["remote_url"] is None
    assert "diff" not in info
    assert same_dir(info["root"], repo)
    json.dumps(info)


def test_branch_name_follows_checkout(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature/long-name")
    assert git_info(repo)["branch"] == "feature/long-name"


def test_commit_follows_new_commits(tmp_path):
    repo = make_repo(tmp_path / "repo")
    first = git_info(repo)["commit"]
    (repo / "more.py").write_text("x = 1\n")
    git(repo, "add", "more.py")
    git(repo, "commit", "-q", "-m", "second")
    second = git_info(repo)["commit"]
    assert second != first
    assert second == git(repo, "rev-parse", "HEAD").strip()
    assert first == git(repo, "rev-parse", "HEAD~1").strip()


def test_modified_tracked_file_is_dirty_with_diff(tmp_path):
    repo = make_repo(tmp_path / "repo", {"train.py": "lr = 0.1\n", "README.md": "# x\n"})
    (repo / "train.py").write_text("lr = 0.05  # tuned\n")
    expected = git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")
    assert expected  # the test's own premise
    info = git_info(repo)
    assert info["dirty"] is True
    assert info["untracked_files"] == 0
    diff = info["diff"]
    assert diff["sha256"] == hashlib.sha256(expected).hexdigest()
    assert diff["size"] == len(expected)
    assert diff["against"] == "HEAD"
    assert diff["content"] == expected.decode()
    assert "-lr = 0.1" in diff["content"] and "+lr = 0.05  # tuned" in diff["content"]
    assert "README.md" not in diff["content"]


def test_staged_and_unstaged_changes_both_in_diff(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    (repo / "a.py").write_text("a = 2\n")
    git(repo, "add", "a.py")
    (repo / "b.py").write_text("b = 2\n")
    (repo / "new.py").write_text("new = True\n")
    git(repo, "add", "new.py")
    expected = git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")
    info = git_info(repo)
    assert info["dirty"] is True
    assert info["diff"]["sha256"] == hashlib.sha256(expected).hexdigest()
    for fragment in ("+a = 2", "+b = 2", "+new = True"):
        assert fragment in info["diff"]["content"]


def test_deleted_tracked_file_is_dirty(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n", "gone.py": "bye\n"})
    (repo / "gone.py").unlink()
    info = git_info(repo)
    assert info["dirty"] is True
    assert info["diff"]["sha256"] == hashlib.sha256(git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")).hexdigest()
    assert "-bye" in info["diff"]["content"]


def test_binary_change_hashed(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n"})
    (repo / "weights.bin").write_bytes(bytes(range(256)) * 4)
    git(repo, "add", "weights.bin")
    git(repo, "commit", "-q", "-m", "weights")
    (repo / "weights.bin").write_bytes(bytes(reversed(range(256))) * 4)
    expected = git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")
    assert b"GIT binary patch" in expected
    info = git_info(repo)
    assert info["diff"]["sha256"] == hashlib.sha256(expected).hexdigest()
    assert info["diff"]["size"] == len(expected)


def test_untracked_file_only_is_not_dirty(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "notes.txt").write_text("scratch\n")
    info = git_info(repo)
    assert info["dirty"] is False
    assert info["untracked_files"] == 1
    assert "diff" not in info
    (repo / "more").mkdir()
    (repo / "more" / "x.txt").write_text("x\n")
    (repo / "y.txt").write_text("y\n")
    # an untracked directory counts as one entry in ``git status --untracked-files=normal``
    assert git_info(repo)["untracked_files"] == 3


def test_ignored_files_are_not_untracked(tmp_path):
    repo = make_repo(tmp_path / "repo", {".gitignore": "*.log\n", "a.py": "a\n"})
    (repo / "run.log").write_text("noise\n")
    info = git_info(repo)
    assert info["untracked_files"] == 0
    assert info["dirty"] is False


# --- diff size limit -----------------------------------------------------------------------------


def test_large_diff_is_hashed_but_not_inlined(tmp_path):
    repo = make_repo(tmp_path / "repo", {"data.txt": "seed\n"})
    (repo / "data.txt").write_text("".join(f"line {i:07d} of a large change\n" for i in range(4000)))
    expected = git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")
    assert len(expected) > MAX_INLINE_DIFF
    info = git_info(repo)
    diff = info["diff"]
    assert diff["content"] is None
    assert diff["size"] == len(expected)
    assert diff["sha256"] == hashlib.sha256(expected).hexdigest()
    assert info["dirty"] is True


def test_diff_limit_boundary_is_inclusive(tmp_path):
    """A diff of exactly MAX_INLINE_DIFF bytes is kept; one byte more is not."""
    repo = make_repo(tmp_path / "repo", {"one.txt": "a\n"})
    target = repo / "one.txt"

    def diff_for(n: int) -> bytes:
        target.write_text("x" * n + "\n")
        return git_bytes(repo, "diff", "HEAD", "--binary", "--no-color")

    overhead = len(diff_for(10)) - 10  # a one-line file: the diff grows one byte per byte
    n = MAX_INLINE_DIFF - overhead
    assert len(diff_for(n)) == MAX_INLINE_DIFF
    info = git_info(repo)
    assert info["diff"]["size"] == MAX_INLINE_DIFF
    assert info["diff"]["content"] is not None
    assert len(diff_for(n + 1)) == MAX_INLINE_DIFF + 1
    info = git_info(repo)
    assert info["diff"]["size"] == MAX_INLINE_DIFF + 1
    assert info["diff"]["content"] is None


# --- remotes -------------------------------------------------------------------------------------


def test_https_remote_credentials_stripped(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://user:s3cret@github.com/org/repo.git")
    info = git_info(repo)
    assert info["remote_url"] == "https://github.com/org/repo.git"
    assert "user" not in info["remote_url"]
    dumped = json.dumps(info)
    assert "s3cret" not in dumped
    assert "user:" not in dumped


def test_token_as_username_stripped(tmp_path):
    repo = make_repo(tmp_path / "repo")
    token = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    git(repo, "remote", "add", "origin", f"https://{token}@github.com/org/repo.git")
    info = git_info(repo)
    assert token not in json.dumps(info)
    assert info["remote_url"] == "https://github.com/org/repo.git"


def test_ssh_remote_kept(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "git@github.com:org/repo.git")
    assert git_info(repo)["remote_url"] == "git@github.com:org/repo.git"


def test_origin_preferred_among_remotes(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "aaa-fork", "https://example.com/fork.git")
    git(repo, "remote", "add", "origin", "https://example.com/origin.git")
    git(repo, "remote", "add", "upstream", "https://example.com/upstream.git")
    assert git_info(repo)["remote_url"] == "https://example.com/origin.git"


def test_first_remote_without_origin(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "upstream", "https://example.com/upstream.git")
    assert git_info(repo)["remote_url"] == "https://example.com/upstream.git"


# --- unusual states ------------------------------------------------------------------------------


def test_detached_head(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "x.py").write_text("x\n")
    git(repo, "add", "x.py")
    git(repo, "commit", "-q", "-m", "second")
    first = git(repo, "rev-parse", "HEAD~1").strip()
    git(repo, "checkout", "-q", "--detach", first)
    info = git_info(repo)
    assert info["branch"] is None
    assert info["detached"] is True
    assert info["commit"] == first
    assert info["dirty"] is False


def test_repository_without_commits(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n"}, commit=False)
    info = git_info(repo)
    assert info["available"] is True
    assert info["commit"] is None
    assert info["untracked_files"] == 1
    assert info["dirty"] is False
    assert "diff" not in info
    git(repo, "add", "a.py")  # staged, still no commit: dirty, but nothing to diff against
    info = git_info(repo)
    assert info["commit"] is None
    assert info["dirty"] is True
    assert "diff" not in info


def test_directory_that_is_not_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    info = git_info(plain)
    assert info["available"] is False
    assert str(plain) in info["reason"]
    assert "not in a git work tree" in info["reason"]
    assert "commit" not in info


def test_start_is_a_file_in_a_subdirectory(tmp_path):
    repo = make_repo(tmp_path / "repo", {"src/pkg/train.py": "print(1)\n", "README.md": "r\n"})
    info = git_info(repo / "src" / "pkg" / "train.py")
    assert info["available"] is True
    assert same_dir(info["root"], repo)
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("changed at the top\n")  # outside the start's directory
    info = git_info(str(repo / "src" / "pkg" / "train.py"))  # str accepted too
    assert info["dirty"] is True
    assert "+changed at the top" in info["diff"]["content"]


def test_start_is_a_file_outside_any_repository(tmp_path):
    script = tmp_path / "loose" / "script.py"
    script.parent.mkdir()
    script.write_text("pass\n")
    info = git_info(script)
    assert info["available"] is False
    assert str(script.parent) in info["reason"]


def test_git_missing_from_path(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    info = git_info(repo)
    assert info["available"] is False
    assert "git is not installed" in info["reason"]


def test_unreadable_repository_raises_git_error(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".git" / "index").write_bytes(b"this is not an index")
    with pytest.raises(GitError):
        git_info(repo)


def test_capture_does_not_rewrite_the_index(tmp_path):
    """Locks off: ``git status`` must not refresh the index of a repository in use."""
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n"})
    index = repo / ".git" / "index"
    before = index.read_bytes()
    stamp = os.stat(repo / "a.py").st_mtime_ns + 5_000_000_000
    os.utime(repo / "a.py", ns=(stamp, stamp))  # stale stat data: plain ``git status`` would rewrite it
    info = git_info(repo)
    assert info["dirty"] is False
    assert index.read_bytes() == before
    assert not (repo / ".git" / "index.lock").exists()


# --- the entry point -----------------------------------------------------------------------------


@pytest.fixture
def no_main_file(monkeypatch):
    """``__main__`` without a ``__file__`` (pytest's own script would otherwise be found)."""
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))


def test_entry_point_script(tmp_path, no_main_file):
    script = tmp_path / "train.py"
    body = b"import sys\nprint('training', sys.argv)\n"
    script.write_bytes(body)
    info = entry_point([str(script), "--epochs", "3"])
    assert info == {"kind": "script", "path": str(script.resolve()), "sha256": hashlib.sha256(body).hexdigest()}


def test_entry_point_relative_script(tmp_path, no_main_file, monkeypatch):
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "run.py"
    script.write_bytes(b"pass\n")
    monkeypatch.chdir(tmp_path)
    info = entry_point(["sub/run.py"])
    assert info["kind"] == "script"
    assert info["path"] == os.path.join(os.path.abspath(tmp_path), "sub", "run.py")
    assert info["sha256"] == hashlib.sha256(b"pass\n").hexdigest()


@pytest.mark.parametrize("argv", [["-c"], ["-m"], ["-"], [], [""], ["does-not-exist.py"]])
def test_entry_point_interactive(argv, no_main_file):
    assert entry_point(argv) == {"kind": "interactive", "path": None}


def test_entry_point_directory_is_not_a_script(tmp_path, no_main_file):
    assert entry_point([str(tmp_path)])["kind"] == "interactive"


def test_entry_point_prefers_main_file(tmp_path, monkeypatch):
    real = tmp_path / "real_main.py"
    real.write_bytes(b"# the real main\n")
    other = tmp_path / "other.py"
    other.write_bytes(b"# argv[0]\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(real)
    monkeypatch.setitem(sys.modules, "__main__", main)
    info = entry_point([str(other)])
    assert info["path"] == str(real.resolve())
    assert info["sha256"] == hashlib.sha256(b"# the real main\n").hexdigest()


def test_entry_point_defaults_to_sys_argv(tmp_path, no_main_file, monkeypatch):
    script = tmp_path / "from_sys_argv.py"
    script.write_bytes(b"x = 42\n")
    monkeypatch.setattr(sys, "argv", [str(script), "--flag"])
    info = entry_point()
    assert info["kind"] == "script"
    assert info["sha256"] == hashlib.sha256(b"x = 42\n").hexdigest()
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert entry_point()["kind"] == "interactive"
