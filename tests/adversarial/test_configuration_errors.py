"""Exit code 2 — "the check could not run" — never 1 ("tampered"), for a broken setup."""

from __future__ import annotations

import os
import shutil

import pytest



def test_missing_keyring_file_exits_2(db, verify, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEYRING", str(tmp_path / "no-such-keyring.yaml"))
    code, report = verify(db.uri)
    assert code == 2 and report == {}


def test_corrupt_key_file_exits_2(db, verify, monkeypatch, tmp_path):
    key = tmp_path / "corrupt.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    code, report = verify(db.uri)
    assert code == 2 and report == {}


@pytest.mark.parametrize("uri", ["provenance+file:///tmp/mlruns", "provenance+mssql://sa@localhost/mlflow",
                                 "provenance+databricks"])
def test_unsupported_inner_scheme_exits_2(uri, verify, legit_key, monkeypatch):
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(legit_key))
    code, report = verify(uri)
    assert code == 2 and report == {}


def test_database_without_a_ledger_exits_2(db, verify, tmp_path):
    plain = tmp_path / "plain.db"
    shutil.copyfile(db.path, plain)
    import sqlite3

    con = sqlite3.connect(plain)
    with con:
        for kind, name in con.execute(
            "SELECT type, name FROM sqlite_master WHERE (type = 'trigger' AND name LIKE 'prov_%') "
            "OR (type = 'table' AND name LIKE 'prov_%')"
        ).fetchall():
            con.execute(f'DROP {kind.upper()} "{name}"')
    con.close()
    code, report = verify(f"provenance+sqlite:///{plain}")
    assert code == 2 and report == {}


def test_missing_database_file_exits_2(verify, legit_key, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(legit_key))
    code, _ = verify(f"provenance+sqlite:///{tmp_path / 'nothing-here.db'}")
    assert code == 2
    assert not (tmp_path / "nothing-here.db").exists()
