"""Bad input gets a clear error that names the fix, and nothing is written (issue #2, item 8)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlflow_provenance import ledger_schema
from mlflow_provenance.errors import ConfigurationError
from tests.conftest import inner_db_uri, run_cli


@pytest.fixture
def configured_key(tmp_path, monkeypatch) -> Path:
    """A signing key made with keygen and set as MLFLOW_PROVENANCE_KEY."""
    path = tmp_path / "k.pem"
    assert run_cli("keygen", "--out", str(path))[0] == 0
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(path))
    return path


def _store(uri: str):
    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    return ProvenanceTrackingStore(uri)


def test_embedded_mode_creates_a_private_key_once_and_says_where(sqlite_uri, provenance_home, capfd):
    _store(sqlite_uri)
    key = provenance_home / "signing_key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = capfd.readouterr().err
    assert f"created a signing key at {key}" in first
    _store(sqlite_uri.replace("mlflow.db", "other.db"))
    assert "created a signing key" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"not a key at all", "MLFLOW_PROVENANCE_KEY"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "MLFLOW_PROVENANCE_KEY"),
    ],
    ids=["garbage", "truncated-pem"],
)
def test_corrupt_key_file_is_refused_before_anything_is_written(tmp_path, monkeypatch, content, expected):
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    key.chmod(0o600)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    db = tmp_path / "fresh.db"
    with pytest.raises(ConfigurationError) as info:
        _store(f"provenance+sqlite:///{db}")
    assert str(key) in str(info.value)
    assert not db.exists() or sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_table_names() == []


def test_wrong_key_type_is_refused(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = tmp_path / "ec.key"
    key.write_bytes(pem)
    key.chmod(0o600)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(key))
    with pytest.raises(ConfigurationError, match="Ed25519"):
        _store(f"provenance+sqlite:///{tmp_path}/x.db")


def test_world_readable_key_is_refused(tmp_path, monkeypatch):
    assert run_cli("keygen", "--out", str(tmp_path / "k.pem"))[0] == 0
    (tmp_path / "k.pem").chmod(0o644)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEY", str(tmp_path / "k.pem"))
    with pytest.raises(ConfigurationError, match="chmod 600"):
        _store(f"provenance+sqlite:///{tmp_path}/x.db")


def test_key_material_never_appears_in_errors_or_repr(tmp_path, monkeypatch):
    from mlflow_provenance.keys import load_signing_key

    path = tmp_path / "k.pem"
    run_cli("keygen", "--out", str(path))
    secret_lines = [line for line in path.read_text().splitlines() if "-----" not in line]
    key = load_signing_key(path)
    assert all(line not in repr(key) for line in secret_lines)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError) as info:
        load_signing_key(path)
    assert all(line not in str(info.value) for line in secret_lines)


def test_missing_keyring_is_a_configuration_error_for_verify(sqlite_uri, monkeypatch, tmp_path, verify):
    _store(sqlite_uri)
    monkeypatch.setenv("MLFLOW_PROVENANCE_KEYRING", str(tmp_path / "nope.yaml"))
    code, _ = verify(sqlite_uri)
    assert code == 2


@pytest.mark.parametrize("uri", ["provenance+file:///tmp/mlruns", "provenance+mssql://u@h/db"])
def test_unsupported_inner_scheme_names_the_supported_ones(uri):
    import mlflow

    # Through MLflow: no entry point matches, and MLflow's error lists ours.
    mlflow.set_tracking_uri(uri)
    with pytest.raises(Exception, match=r"provenance\+sqlite"):
        mlflow.MlflowClient().get_registered_model("m")
    # Built directly: our own error names every supported inner scheme.
    with pytest.raises(ConfigurationError, match=r"sqlite, postgresql, .*mysql") as info:
        _store(uri)
    assert "provenance+sqlite:///mlflow.db" in str(info.value)


def test_plain_mlflow_uri_is_usable_through_the_mlflow_entry_point(sqlite_uri):
    import mlflow

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore
    from mlflow.tracking._tracking_service.utils import _get_store

    mlflow.set_tracking_uri(sqlite_uri)
    assert isinstance(_get_store(), ProvenanceTrackingStore)


def test_ledger_of_a_newer_format_is_refused_and_left_untouched(sqlite_uri):
    _store(sqlite_uri)
    engine = sa.create_engine(inner_db_uri(sqlite_uri))
    with engine.begin() as conn:
        conn.execute(
            sa.update(ledger_schema.prov_meta)
            .where(ledger_schema.prov_meta.c.key == "format_version")
            .values(value=str(ledger_schema.FORMAT_VERSION + 1))
        )
        before = conn.exec_driver_sql("SELECT COUNT(*) FROM prov_events").scalar()
    from mlflow_provenance.adapters.binding import dispose_engines

    dispose_engines()
    from mlflow_provenance.adapters import binding

    binding._recorders.clear()
    with pytest.raises(ConfigurationError, match="newer"):
        _store(sqlite_uri)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM prov_events").scalar() == before
    code, _ = run_cli("verify", "--tracking-uri", sqlite_uri)
    assert code == 2


def test_keygen_refuses_to_overwrite(tmp_path):
    path = tmp_path / "k.pem"
    assert run_cli("keygen", "--out", str(path))[0] == 0
    original = path.read_bytes()
    assert run_cli("keygen", "--out", str(path))[0] == 2
    assert path.read_bytes() == original


def test_verify_on_a_database_without_ledger_is_a_configuration_error(tmp_path, verify, configured_key):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{tmp_path}/plain.db", str(tmp_path / "art"))
    code, _ = verify(f"provenance+sqlite:///{tmp_path}/plain.db")
    assert code == 2


def test_verify_of_a_missing_database_file_does_not_create_it(tmp_path, verify, configured_key):
    code, _ = verify(f"provenance+sqlite:///{tmp_path}/absent.db")
    assert code == 2
    assert not Path(tmp_path / "absent.db").exists()


def test_unreachable_database_is_a_configuration_error_not_an_integrity_failure(tmp_path, configured_key):
    code, _ = run_cli("verify", "--tracking-uri", "provenance+postgresql://postgres@127.0.0.1:1/none")
    assert code == 2


def test_scoped_verify_of_an_unknown_run_is_a_configuration_error(sqlite_uri, verify):
    _store(sqlite_uri)
    code, _ = verify(sqlite_uri, "--run-id", "0123456789abcdef")
    assert code == 2
