"""Tests for Ed25519 keys and keyrings (mlflow_provenance.keys).

The PeterNeumann verifier/signer keys are the fixed vectors of Go's
golang.org/x/mod/sumdb/note note_test.go.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlflow_provenance.errors import ConfigurationError, FormatError, SignatureError
from mlflow_provenance.keys import (
    Keyring,
    KeyringEntry,
    PublicKey,
    SigningKey,
    dump_keyring,
    generate_signing_key,
    load_keyring,
    load_signing_key,
    write_signing_key,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
UTC = timezone.utc


def peter_signing_key() -> SigningKey:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])  # base64 may contain '+'

    assert seed[0] == 0x01 and len(seed) == 33
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed[1:]), "PeterNeumann")


# --- PublicKey / vkey ------------------------------------------------------------


def test_go_verifier_keys_parse_and_round_trip() -> None:
    for vkey, name, hash_hex in [
        (PETER_VKEY, "PeterNeumann", "c74f20a3"),
        (ENOCH_VKEY, "EnochRoot", "af0cfe78"),
    ]:
        key = PublicKey.from_vkey(vkey)
        assert key.name == name
        assert key.note_key_hash == bytes.fromhex(hash_hex)
        assert key.vkey() == vkey
        assert len(key.key_id) == 64 and key.key_id == key.key_id.lower()


def test_signer_seed_matches_go_verifier_key() -> None:
    assert peter_signing_key().public_key == PublicKey.from_vkey(PETER_VKEY)


def test_every_mangled_vkey_is_rejected() -> None:
    # As Go's TestNewVerifier: every proper substring and every one-byte change.
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(FormatError):
                    PublicKey.from_vkey(b[i:j])
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(FormatError):
            PublicKey.from_vkey(mangled)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        # Go: wrong length key, with adjusted key hash.
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "base64"),
        ("PeterNeumann+5bdbe860+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==", "32 bytes"),
        # Go: unknown algorithm, with adjusted key hash.
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "signature type"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "lowercase"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "whitespace"),
        ("PeterNeumann+c74f20a3", r"NAME\+KEYHASH\+BASE64KEY"),
        ("PeterNeumann+c74f20a3+!!!!", "base64"),
    ],
)
def test_bad_vkeys_name_the_problem(vkey: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        PublicKey.from_vkey(vkey)


def test_public_key_verify() -> None:
    key = generate_signing_key("test.example/log")
    sig = key.sign(b"hello")
    key.public_key.verify(sig, b"hello")
    with pytest.raises(SignatureError, match="test.example/log"):
        key.public_key.verify(sig, b"hellO")
    with pytest.raises(SignatureError):
        key.public_key.verify(bytes([sig[0] ^ 1]) + sig[1:], b"hello")
    with pytest.raises(SignatureError):
        generate_signing_key().public_key.verify(sig, b"hello")
    with pytest.raises(SignatureError):
        key.public_key.verify(sig[:-1], b"hello")


@pytest.mark.parametrize("name", ["", "a+b", "a b", "tab\there"])
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(FormatError):
        generate_signing_key(name)


# --- SigningKey files -------------------------------------------------------------


def test_repr_hides_private_material() -> None:
    key = generate_signing_key()
    seed = key._private.private_bytes(  # noqa: SLF001 - test peeks on purpose
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    for text in (repr(key), str(key), f"{key}"):
        assert key.key_id in text and "mlflow-provenance" in text
        assert seed.hex() not in text and base64.b64encode(seed).decode() not in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "signing.pem"
    write_signing_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in tmp_path.iterdir()] == ["signing.pem"]  # no temp file left
    loaded = load_signing_key(path)
    assert loaded.public_key == key.public_key
    assert loaded.name == "mlflow-provenance"
    assert load_signing_key(path, name="other").name == "other"
    key.public_key.verify(loaded.sign(b"m"), b"m")


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("precious")
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        write_signing_key(generate_signing_key(), path)
    assert path.read_text() == "precious"
    with pytest.raises(ConfigurationError, match="does not exist"):
        write_signing_key(generate_signing_key(), tmp_path / "missing-dir" / "k.pem")


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _pem(private: object, encryption: object = None) -> bytes:
    return private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def test_load_errors_name_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigurationError) as err:
        load_signing_key(missing)
    assert str(missing) in str(err.value)
    assert "MLFLOW_PROVENANCE_KEY" in str(err.value) and "keygen --out" in str(err.value)

    with pytest.raises(ConfigurationError, match="not a PEM"):
        load_signing_key(_write(tmp_path / "text.pem", b"hello"))

    garbage = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigurationError, match="corrupt"):
        load_signing_key(_write(tmp_path / "bad.pem", garbage))

    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigurationError, match="not Ed25519"):
        load_signing_key(_write(tmp_path / "ec.pem", _pem(ec_key)))

    ed = Ed25519PrivateKey.generate()
    encrypted = _pem(ed, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(ConfigurationError, match="encrypted"):
        load_signing_key(_write(tmp_path / "enc.pem", encrypted))

    with pytest.raises(ConfigurationError, match="not a regular file"):
        load_signing_key(tmp_path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_load_refuses_group_or_world_readable(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "k.pem", _pem(Ed25519PrivateKey.generate()), mode)
    with pytest.raises(ConfigurationError, match=f"group or others.*chmod 600 {path}"):
        load_signing_key(path)


def test_load_read_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs even as root, where chmod cannot make a file unreadable.
    path = _write(tmp_path / "k.pem", _pem(Ed25519PrivateKey.generate()))

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ConfigurationError, match=f"cannot read signing key file {path}"):
        load_signing_key(path)


def test_errors_never_contain_key_material(tmp_path: Path) -> None:
    pem_lines = _pem(Ed25519PrivateKey.generate()).splitlines()
    body = pem_lines[1].decode()
    # Corrupt the DER (keep the base64 valid) so cryptography itself fails.
    broken = body[:-8] + "AAAAAAA="
    data = b"\n".join([pem_lines[0], broken.encode(), pem_lines[-1]]) + b"\n"
    with pytest.raises(ConfigurationError, match="corrupt") as err:
        load_signing_key(_write(tmp_path / "broken.pem", data))
    text = str(err.value)
    assert body[:12] not in text and broken[-20:] not in text
    # The library's own exception is not chained, so tracebacks cannot leak it.
    assert err.value.__cause__ is None and err.value.__suppress_context__


# --- keyrings ---------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_keyring_lookup_and_windows() -> None:
    peter = PublicKey.from_vkey(PETER_VKEY)
    enoch = PublicKey.from_vkey(ENOCH_VKEY)
    ring = Keyring()
    e1 = ring.add(peter, not_before=T0, not_after=T0 + timedelta(days=30))
    e2 = ring.add(enoch)
    assert ring.find("PeterNeumann", bytes.fromhex("c74f20a3")) == [e1]
    assert ring.find("PeterNeumann", bytes.fromhex("c74f20a4")) == []
    assert ring.find("PeterNeuman", bytes.fromhex("c74f20a3")) == []
    assert ring.entry_for_key_id(enoch.key_id) is e2
    assert ring.entry_for_key_id("00" * 32) is None
    assert ring.valid_at(e1, T0) and ring.valid_at(e1, T0 + timedelta(days=30))
    assert not ring.valid_at(e1, T0 - timedelta(seconds=1))
    assert not ring.valid_at(e1, T0 + timedelta(days=30, seconds=1))
    assert ring.valid_at(e2, datetime(1970, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigurationError):
        ring.valid_at(e1, datetime(2026, 1, 2))  # naive
    with pytest.raises(ConfigurationError, match="already"):
        ring.add(peter)
    with pytest.raises(ConfigurationError, match="before"):
        KeyringEntry(peter, not_before=T0, not_after=T0 - timedelta(days=1))
    assert len(Keyring.from_signing_key(peter_signing_key())) == 1


def test_keyring_yaml_round_trip(tmp_path: Path) -> None:
    ring = Keyring()
    ring.add(PublicKey.from_vkey(PETER_VKEY), T0, T0 + timedelta(days=365))
    ring.add(PublicKey.from_vkey(ENOCH_VKEY), not_before=T0)
    text = dump_keyring(ring)
    assert "2026-01-01T00:00:00Z" in text and PETER_VKEY in text
    path = tmp_path / "keyring.yaml"
    path.write_text(text)
    loaded = load_keyring(path)
    assert loaded.entries == ring.entries


def test_keyring_json(tmp_path: Path) -> None:
    doc = {
        "keys": [
            {"vkey": PETER_VKEY, "not_before": "2026-01-01T00:00:00Z", "not_after": None},
            {"vkey": ENOCH_VKEY, "not_before": "2026-01-01T02:00:00+02:00"},
        ]
    }
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(doc))
    ring = load_keyring(path)
    assert [e.not_before for e in ring] == [T0, T0]
    assert ring.entries[0].not_after is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("keys: [\n", "not valid YAML"),
        ("keys: []\n", "an empty keyring trusts nothing"),
        ("{}\n", "'keys' list"),
        ("keys:\n  - vkey: nope\n", "key #1"),
        (f"keys:\n  - vkey: {PETER_VKEY}\n    not_afer: 2026-01-01T00:00:00Z\n", "unknown fields"),
        (f"keys:\n  - vkey: {PETER_VKEY}\n    not_before: 2026-01-01\n", "timezone"),
        (f"keys:\n  - vkey: {PETER_VKEY}\n    not_before: '2026-01-01T00:00:00'\n", "timezone"),
        (f"keys:\n  - vkey: {PETER_VKEY}\n    not_before: yesterday\n", "ISO 8601"),
        (
            f"keys:\n  - vkey: {PETER_VKEY}\n    not_before: 2026-02-01T00:00:00Z\n"
            "    not_after: 2026-01-01T00:00:00Z\n",
            "before",
        ),
        (f"keys:\n  - vkey: {PETER_VKEY}\n  - vkey: {PETER_VKEY}\n", "already"),
    ],
)
def test_bad_keyrings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keyring.yaml"
    path.write_text(content)
    with pytest.raises(FormatError, match=message) as err:
        load_keyring(path)
    assert str(path) in str(err.value)


def test_missing_keyring(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_keyring(tmp_path / "nope.yaml")
