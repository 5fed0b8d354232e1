"""The ``python`` section: interpreter facts, installed distributions, RECORD checks, freeze lines.

Fake distributions are written into a temporary directory put at the front of
``sys.path``; their mtimes are set explicitly, since the RECORD check hashes a file only
when its size differs from RECORD's or its mtime is newer than RECORD's by over a second.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlflow_provenance.environment import manifest, packages

#: RECORD's own mtime in the fake installs; package files are older unless a test says otherwise.
INSTALLED_AT = time.time() - 10_000


def record_hash(data: bytes) -> str:
    """PEP 376 hash column, computed independently of the code under test."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def set_mtime(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def make_dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, bytes] | None = None,
    *,
    direct_url: Any = None,
    record: bool = True,
    extra_rows: list[tuple[str, str, str]] | None = None,
) -> Path:
    """Install a fake distribution under ``site``; returns its ``.dist-info`` directory."""
    files = {f"{name}/__init__.py": b"VALUE = 1\n"} if files is None else files
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    metadata_bytes = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    (info / "METADATA").write_bytes(metadata_bytes)
    if direct_url is not None:
        text = direct_url if isinstance(direct_url, str) else json.dumps(direct_url)
        (info / "direct_url.json").write_text(text)
    rows = [(rel, record_hash(data), str(len(data))) for rel, data in files.items()]
    rows.append((f"{info.name}/METADATA", record_hash(metadata_bytes), str(len(metadata_bytes))))
    rows.extend(extra_rows or [])
    rows.append((f"{info.name}/RECORD", "", ""))
    if record:
        with open(info / "RECORD", "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        set_mtime(info / "RECORD", INSTALLED_AT)
    for rel in files:
        set_mtime(site / rel, INSTALLED_AT - 60)
    set_mtime(info / "METADATA", INSTALLED_AT - 60)
    return info


def find(name: str) -> dict[str, Any]:
    """The entry ``distributions()`` gives for ``name`` (exactly one must exist)."""
    matches = [d for d in packages.distributions() if d["name"] == name]
    assert len(matches) == 1, f"expected one {name!r} in distributions(), found {matches}"
    return matches[0]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "fake-site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


def distribution_schema() -> dict[str, Any]:
    python = manifest.schema()["properties"]["python"]["oneOf"][1]
    return python["properties"]["distributions"]["items"]


# --- python_info ---------------------------------------------------------------------------------


def test_python_info_describes_this_interpreter() -> None:
    info = packages.python_info()
    assert info["version"] == platform.python_version()
    assert info["version"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert info["implementation"] == platform.python_implementation()
    assert info["executable"] == sys.executable
    assert info["prefix"] == sys.prefix
    assert info["base_prefix"] == sys.base_prefix
    assert info["virtualenv"] is (sys.prefix != sys.base_prefix)
    assert isinstance(info["compiler"], str)


# --- the real environment ------------------------------------------------------------------------


def test_real_environment_lists_mlflow_and_pytest_with_their_versions() -> None:
    dists = packages.distributions()
    by_name = {normalize(d["name"]): d for d in dists}
    for name in ("mlflow", "pytest", "jsonschema"):
        assert name in by_name, f"{name} missing from distributions()"
        assert by_name[name]["version"] == importlib.metadata.version(name)
    # One entry per normalized name, sorted case-insensitively by name.
    assert len(by_name) == len(dists)
    assert [d["name"].lower() for d in dists] == sorted(d["name"].lower() for d in dists)
    validator = jsonschema.Draft202012Validator(distribution_schema())
    for dist in dists:
        errors = [e.message for e in validator.iter_errors(dist)]
        assert not errors, f"{dist['name']}: {errors}"
        assert dist["modified"] in (True, False, None)


def test_freeze_of_real_environment_has_one_line_per_distribution() -> None:
    dists = packages.distributions()
    lines = packages.freeze(dists)
    assert len(lines) == len(dists)
    for line, dist in zip(lines, dists):
        if not (dist.get("origin") or {}).get("url"):
            assert line == f"{dist['name']}=={dist['version']}"
        elif dist.get("editable"):
            assert line == f"-e {dist['origin']['url']}"
        else:
            assert line.startswith(f"{dist['name']} @ ")


# --- RECORD: modified files ----------------------------------------------------------------------


def test_untouched_distribution_is_not_modified(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    dist = find("fakepkg")
    assert dist["version"] == "1.2.3"
    assert dist["modified"] is False
    assert "modified_files" not in dist
    assert "modified_count" not in dist
    assert dist["editable"] is False
    assert dist["local"] is False
    assert "origin" not in dist


def test_same_size_change_with_newer_mtime_is_found(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    target = site / "fakepkg/__init__.py"
    target.write_bytes(b"VALUE = 2\n")  # same length as b"VALUE = 1\n"
    set_mtime(target, INSTALLED_AT + 100)
    dist = find("fakepkg")
    assert dist["modified"] is True
    assert dist["modified_files"] == ["fakepkg/__init__.py"]
    assert dist["modified_count"] == 1


def test_size_change_is_found_even_with_an_old_mtime(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    target = site / "fakepkg/__init__.py"
    target.write_bytes(b"VALUE = 12345\n")
    set_mtime(target, INSTALLED_AT - 60)
    dist = find("fakepkg")
    assert dist["modified"] is True
    assert dist["modified_files"] == ["fakepkg/__init__.py"]


def test_deleted_file_is_modified(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3", {"fakepkg/__init__.py": b"A = 1\n", "fakepkg/util.py": b"B = 2\n"})
    (site / "fakepkg/util.py").unlink()
    dist = find("fakepkg")
    assert dist["modified"] is True
    assert dist["modified_files"] == ["fakepkg/util.py"]
    assert dist["modified_count"] == 1


def test_touched_file_with_identical_content_is_not_modified(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    set_mtime(site / "fakepkg/__init__.py", INSTALLED_AT + 100)  # screened in, hash decides
    dist = find("fakepkg")
    assert dist["modified"] is False
    assert "modified_files" not in dist


def test_same_size_change_with_old_mtime_escapes_the_screen_as_documented(site: Path) -> None:
    # The module docstring says a same-size edit with the mtime forged back is not seen:
    # only screened files are hashed.
    make_dist(site, "fakepkg", "1.2.3")
    target = site / "fakepkg/__init__.py"
    target.write_bytes(b"VALUE = 9\n")
    set_mtime(target, INSTALLED_AT - 60)
    assert find("fakepkg")["modified"] is False


def test_mtime_within_one_second_of_record_is_not_screened(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    target = site / "fakepkg/__init__.py"
    target.write_bytes(b"VALUE = 3\n")
    set_mtime(target, INSTALLED_AT + 0.5)
    assert find("fakepkg")["modified"] is False
    set_mtime(target, INSTALLED_AT + 2)
    assert find("fakepkg")["modified"] is True


def test_path_with_a_comma_is_read_from_quoted_record(site: Path) -> None:
    files = {"fakepkg/__init__.py": b"X = 1\n", "fakepkg/data,1.txt": b"payload\n"}
    info = make_dist(site, "fakepkg", "1.2.3", files)
    assert '"fakepkg/data,1.txt",sha256=' in (info / "RECORD").read_text()  # CSV-quoted
    assert find("fakepkg")["modified"] is False
    target = site / "fakepkg/data,1.txt"
    target.write_bytes(b"PAYLOAD\n")  # same size
    set_mtime(target, INSTALLED_AT + 100)
    dist = find("fakepkg")
    assert dist["modified"] is True
    assert dist["modified_files"] == ["fakepkg/data,1.txt"]


def test_without_record_modified_is_none(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3", record=False)
    dist = find("fakepkg")
    assert dist["modified"] is None
    assert "modified_files" not in dist
    assert "RECORD" in dist["record"]


def test_rows_without_hash_are_not_checked(site: Path) -> None:
    # RECORD itself and .pyc files carry no hash; a missing one is not a modification.
    make_dist(site, "fakepkg", "1.2.3", extra_rows=[("fakepkg/__pycache__/__init__.cpython-311.pyc", "", "")])
    assert find("fakepkg")["modified"] is False


def test_modified_files_are_listed_up_to_the_limit_and_counted_exactly(site: Path) -> None:
    count = packages.MAX_LISTED_MODIFIED + 5
    files = {f"fakepkg/m{i:02d}.py": b"x = 0\n" for i in range(count)}
    files["fakepkg/__init__.py"] = b""
    make_dist(site, "fakepkg", "1.2.3", files)
    for i in range(count):
        (site / f"fakepkg/m{i:02d}.py").unlink()
    dist = find("fakepkg")
    assert dist["modified"] is True
    assert dist["modified_count"] == count
    assert dist["modified_files"] == [f"fakepkg/m{i:02d}.py" for i in range(packages.MAX_LISTED_MODIFIED)]
    errors = [e.message for e in jsonschema.Draft202012Validator(distribution_schema()).iter_errors(dist)]
    assert not errors


# --- direct_url.json (PEP 610) and freeze ---------------------------------------------------------


def test_index_install_freezes_as_name_equals_version(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3")
    dist = find("fakepkg")
    assert packages.freeze([dist]) == ["fakepkg==1.2.3"]


def test_editable_install(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3", direct_url={"url": "file:///src/x", "dir_info": {"editable": True}})
    dist = find("fakepkg")
    assert dist["editable"] is True
    assert dist["local"] is True
    assert dist["origin"]["url"] == "file:///src/x"
    assert dist["origin"]["kind"] == "directory"
    assert packages.freeze([dist]) == ["-e file:///src/x"]


def test_local_directory_install_not_editable(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3", direct_url={"url": "file:///src/x", "dir_info": {}})
    dist = find("fakepkg")
    assert dist["editable"] is False
    assert dist["local"] is True
    assert packages.freeze([dist]) == ["fakepkg @ file:///src/x"]


def test_archive_url_has_credentials_stripped(site: Path) -> None:
    make_dist(
        site, "fakepkg", "1.2.3",
        direct_url={"url": "https://user:pw-9d1c@host/x.whl", "archive_info": {"hashes": {"sha256": "ab" * 32}}},
    )
    dist = find("fakepkg")
    assert dist["origin"]["url"] == "https://host/x.whl"
    assert dist["origin"]["kind"] == "archive"
    assert dist["origin"]["hash"] == {"sha256": "ab" * 32}
    assert dist["editable"] is False
    assert dist["local"] is False
    assert "pw-9d1c" not in json.dumps(dist)
    assert "user" not in dist["origin"]["url"]
    assert packages.freeze([dist]) == ["fakepkg @ https://host/x.whl"]


def test_vcs_install_freezes_with_commit(site: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    make_dist(
        site, "fakepkg", "1.2.3",
        direct_url={
            "url": "https://tok3n-77@github.com/o/r.git",
            "vcs_info": {"vcs": "git", "commit_id": commit, "requested_revision": "main"},
        },
    )
    dist = find("fakepkg")
    assert dist["origin"]["kind"] == "vcs"
    assert dist["origin"]["vcs"] == "git"
    assert dist["origin"]["commit"] == commit
    assert "tok3n-77" not in json.dumps(dist)
    assert packages.freeze([dist]) == [f"fakepkg @ git+https://github.com/o/r.git@{commit}"]


def test_invalid_direct_url_json_is_reported_not_raised(site: Path) -> None:
    make_dist(site, "fakepkg", "1.2.3", direct_url="{not json")
    dist = find("fakepkg")
    assert "error" in dist["origin"]
    assert dist["editable"] is False
    assert dist["local"] is False
    assert packages.freeze([dist]) == ["fakepkg==1.2.3"]


def test_freeze_lines_for_each_origin_kind() -> None:
    dists = [
        {"name": "a", "version": "1"},
        {"name": "b", "version": "2", "origin": {"url": "file:///b", "editable": True}},
        {"name": "c", "version": "3", "origin": {"url": "https://h/c.git", "vcs": "git", "commit": "abc"}},
        {"name": "d", "version": "4", "origin": {"url": "https://h/d.tar.gz"}},
        {"name": "e", "version": "5", "origin": {"error": "direct_url.json is not valid JSON"}},
    ]
    assert packages.freeze(dists) == [
        "a==1", "-e file:///b", "c @ git+https://h/c.git@abc", "d @ https://h/d.tar.gz", "e==5",
    ]


# --- which distribution wins -------------------------------------------------------------------


def test_first_distribution_on_sys_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    make_dist(second, "dupepkg", "1.0", {"dupepkg/__init__.py": b"OLD = 1\n"})
    make_dist(first, "dupepkg", "2.0", {"dupepkg/__init__.py": b"NEW = 1\n"})
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))  # now ahead of ``second``
    assert sys.path.index(str(first)) < sys.path.index(str(second))
    dist = find("dupepkg")
    assert dist["version"] == "2.0"
    assert dist["modified"] is False  # checked against its own RECORD, not the shadowed one


def test_names_are_deduplicated_after_normalization(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    make_dist(first, "Dupe_Pkg", "2.0")
    make_dist(second, "dupe.pkg", "1.0")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    matches = [d for d in packages.distributions() if normalize(d["name"]) == "dupe-pkg"]
    assert [(d["name"], d["version"]) for d in matches] == [("Dupe_Pkg", "2.0")]


def test_dist_info_without_metadata_is_skipped(site: Path) -> None:
    # ``import mlflow`` imports the importlib_metadata backport, whose finder joins sys.meta_path.
    pytest.importorskip("importlib_metadata")
    (site / "broken-1.0.dist-info").mkdir()
    make_dist(site, "fakepkg", "1.2.3")
    names = {normalize(d["name"]) for d in packages.distributions()}
    assert "fakepkg" in names
    assert "broken" not in names


def test_dist_without_version_does_not_break_the_schema(site: Path) -> None:
    info = site / "nover-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nover\n")
    matches = [d for d in packages.distributions() if d["name"] == "nover"]
    for dist in matches:
        errors = [e.message for e in jsonschema.Draft202012Validator(distribution_schema()).iter_errors(dist)]
        assert not errors, errors
        assert all("None" not in line for line in packages.freeze([dist]))


# --- site directories ----------------------------------------------------------------------------


def test_site_directories_signature_counts_only_package_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site_dir = tmp_path / "lib" / "site-packages"
    dist_dir = tmp_path / "dist-packages"
    other = tmp_path / "scripts"
    for d in (site_dir, dist_dir, other):
        d.mkdir(parents=True)
    missing = tmp_path / "gone" / "site-packages"
    monkeypatch.setattr(sys, "path", [str(other), str(site_dir), str(missing), str(dist_dir) + "/"])
    signature = packages.site_directories_signature()
    assert [entry for entry, _ in signature] == [str(site_dir), str(dist_dir) + "/"]
    assert signature[0][1] == os.stat(site_dir).st_mtime
    set_mtime(site_dir, os.stat(site_dir).st_mtime + 50)
    assert packages.site_directories_signature() != signature
