"""Tests for signed checkpoints (mlflow_provenance.checkpoint).

Known answer: the PeterNeumann / EnochRoot note, keys and signatures from Go's
golang.org/x/mod/sumdb/note note_test.go (the reference signed-note
implementation), which pins the key-hash, signature-line and signature encoding.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlflow_provenance.checkpoint import (
    Checkpoint,
    NoteSignature,
    _split_note,
    add_signature,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from mlflow_provenance.errors import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    SignatureError,
)
from mlflow_provenance.keys import Keyring, PublicKey, SigningKey, generate_signing_key

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # from PRIVATE+KEY+PeterNeumann+...
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORIGIN = "mlflow.example/provenance/exp-1"
ROOT = hashlib.sha256(b"root").digest()


def peter_key() -> SigningKey:
    seed = base64.b64decode(PETER_SEED_B64)[1:]
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed), "PeterNeumann")


# --- the Go reference note ----------------------------------------------------------


def test_go_reference_note_verifies() -> None:
    text, sigs = _split_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert text == TEXT.encode()
    peter, enoch = PublicKey.from_vkey(PETER_VKEY), PublicKey.from_vkey(ENOCH_VKEY)
    assert [(s.name, s.key_hash) for s in sigs] == [
        ("PeterNeumann", peter.note_key_hash),
        ("EnochRoot", enoch.note_key_hash),
    ]
    peter.verify(sigs[0].signature, text)
    enoch.verify(sigs[1].signature, text)
    assert sigs[0].line() == PETER_SIG and sigs[1].line() == ENOCH_SIG
    with pytest.raises(SignatureError):
        peter.verify(sigs[0].signature, text.replace(b"cryptography", b"cryptographY"))


def test_signing_reproduces_go_signature_byte_for_byte() -> None:
    # Ed25519 is deterministic (RFC 8032), so our signature line must equal Go's.
    key = peter_key()
    assert key.public_key.vkey() == PETER_VKEY
    blob = key.public_key.note_key_hash + key.sign(TEXT.encode())
    assert f"\u2014 PeterNeumann {base64.b64encode(blob).decode()}\n" == PETER_SIG


# --- round trips ----------------------------------------------------------------------


def test_sign_and_open_round_trip() -> None:
    key = generate_signing_key("log.example")
    cp = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext-two"))
    note = sign_checkpoint(cp, key)
    body = f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\next one\next-two\n"
    assert cp.body() == body.encode()
    assert note.startswith(body + "\n\u2014 log.example ")
    assert note.endswith("\n") and note.count("\n") == 7
    parsed, sigs = parse_checkpoint(note)
    assert parsed == cp and len(sigs) == 1 and len(sigs[0].signature) == 64
    ring = Keyring.from_signing_key(key)
    assert open_checkpoint(note, ring) == cp
    assert open_checkpoint(note.encode(), ring, origin=ORIGIN, at=T0) == cp


def test_empty_tree_checkpoint() -> None:
    key = generate_signing_key()
    cp = Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert open_checkpoint(sign_checkpoint(cp, key), Keyring.from_signing_key(key)) == cp


def test_cosigning() -> None:
    log, witness = generate_signing_key("log"), generate_signing_key("witness")
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    cosigned = add_signature(note, witness)
    assert cosigned.startswith(note)
    assert [s.name for s in parse_checkpoint(cosigned)[1]] == ["log", "witness"]
    assert add_signature(cosigned, witness) == cosigned  # replaces, not duplicates
    open_checkpoint(cosigned, Keyring.from_signing_key(witness))
    open_checkpoint(cosigned, Keyring.from_signing_key(log))


# --- verification failures ---------------------------------------------------------


@pytest.fixture()
def signed() -> tuple[str, SigningKey]:
    key = generate_signing_key("log.example")
    return sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), key), key


def _tamper_signature(note: str) -> str:
    body, sig_line = note.split("\n\n")
    prefix, blob = sig_line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1
    return f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: n.replace("\n42\n", "\n43\n"),  # size
        lambda n: n.replace(ORIGIN, ORIGIN + "x"),  # origin
        lambda n: n.replace(
            base64.b64encode(ROOT).decode(),
            base64.b64encode(hashlib.sha256(b"other").digest()).decode(),
        ),  # root
        lambda n: n.replace("\n\n", "\nextension\n\n"),  # an added extension line
        _tamper_signature,
    ],
    ids=["size", "origin", "root", "extension", "signature"],
)
def test_tampering_is_detected(signed: tuple[str, SigningKey], tamper) -> None:
    note, key = signed
    bad = tamper(note)
    assert bad != note
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(bad, Keyring.from_signing_key(key))


def test_unknown_key_is_rejected_with_helpful_message(signed: tuple[str, SigningKey]) -> None:
    note, key = signed
    other = generate_signing_key("other-log")
    with pytest.raises(SignatureError) as err:
        open_checkpoint(note, Keyring.from_signing_key(other))
    message = str(err.value)
    assert f"log.example+{key.public_key.note_key_hash.hex()} (not in the keyring)" in message
    assert f"other-log+{other.public_key.note_key_hash.hex()}" in message


def test_unknown_signatures_are_ignored(signed: tuple[str, SigningKey]) -> None:
    note, key = signed
    # A stranger's (even garbage) signature line does not affect verification.
    stranger = NoteSignature("stranger", b"\x01\x02\x03\x04", b"\x00" * 64).line()
    assert open_checkpoint(note + stranger, Keyring.from_signing_key(key)).size == 42
    assert open_checkpoint(
        note.replace("\n\n", "\n\n" + stranger), Keyring.from_signing_key(key)
    ).size == 42


def test_bad_signature_from_known_key_rejects_note(signed: tuple[str, SigningKey]) -> None:
    note, key = signed
    good_line = note.split("\n\n")[1]
    bad_line = _tamper_signature(note).split("\n\n")[1]
    body = note.split("\n\n")[0]
    # As Go's note.Open: a known key's bad signature rejects, even beside a good one.
    with pytest.raises(SignatureError):
        open_checkpoint(f"{body}\n\n{bad_line}{good_line}", Keyring.from_signing_key(key))


def test_validity_window(signed: tuple[str, SigningKey]) -> None:
    note, key = signed
    ring = Keyring()
    ring.add(key.public_key, not_before=T0, not_after=T0 + timedelta(days=90))
    assert open_checkpoint(note, ring, at=T0 + timedelta(days=1)).size == 42
    assert open_checkpoint(note, ring).size == 42  # no time given: windows not applied
    for when in (T0 - timedelta(seconds=1), T0 + timedelta(days=91)):
        with pytest.raises(SignatureError, match="not trusted at"):
            open_checkpoint(note, ring, at=when)
    with pytest.raises(ConfigurationError):
        open_checkpoint(note, ring, at=datetime(2026, 2, 1))  # naive


def test_rotated_keys(signed: tuple[str, SigningKey]) -> None:
    note, old = signed
    new = generate_signing_key("log.example")
    ring = Keyring()
    ring.add(old.public_key, not_after=T0)
    ring.add(new.public_key, not_before=T0)
    cosigned = add_signature(note, new)
    assert open_checkpoint(cosigned, ring, at=T0 + timedelta(days=5)).size == 42
    with pytest.raises(SignatureError):
        open_checkpoint(note, ring, at=T0 + timedelta(days=5))


def test_wrong_origin(signed: tuple[str, SigningKey]) -> None:
    note, key = signed
    with pytest.raises(IntegrityError, match="another log"):
        open_checkpoint(note, Keyring.from_signing_key(key), origin="elsewhere")


def test_empty_keyring(signed: tuple[str, SigningKey]) -> None:
    with pytest.raises(ConfigurationError, match="trusts nothing"):
        open_checkpoint(signed[0], Keyring())


# --- malformed input ------------------------------------------------------------------

GOOD_BODY = f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"


@pytest.mark.parametrize(
    "note",
    [
        # Go's TestOpen badMsgs
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
        # ours
        GOOD_BODY.replace("\n", "\r\n") + "\n" + PETER_SIG,
        GOOD_BODY + "\n" + PETER_SIG.replace("\u2014", "-"),
        GOOD_BODY + "\n" + "\u2014 PeterNeumann AAAA\n",  # blob too short
        GOOD_BODY + "\n" + "\u2014 PeterNeumann\n",
        GOOD_BODY.replace("\n42\n", "\n042\n") + "\n" + PETER_SIG,
        GOOD_BODY.replace("\n42\n", "\n-1\n") + "\n" + PETER_SIG,
        GOOD_BODY.replace("\n42\n", "\nforty-two\n") + "\n" + PETER_SIG,
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n\n" + PETER_SIG,
        f"{ORIGIN}\n42\nnot-base64\n\n" + PETER_SIG,
        f"\n42\n{base64.b64encode(ROOT).decode()}\n\n" + PETER_SIG,
        f"{ORIGIN}\n42\n\n" + PETER_SIG,
        "a\n\n" + GOOD_BODY + "\n" + PETER_SIG,  # an empty line inside the body
        b"\xff" + GOOD_BODY.encode() + b"\n" + PETER_SIG.encode(),
        GOOD_BODY + "\ud800\n\n" + PETER_SIG,
    ],
)
def test_malformed_notes(note: str | bytes) -> None:
    with pytest.raises(FormatError):
        parse_checkpoint(note)
    with pytest.raises(FormatError):
        open_checkpoint(note, Keyring.from_signing_key(peter_key()))


GO_BAD_NOTES = [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
    TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG * 101,
]


@pytest.mark.parametrize("note", GO_BAD_NOTES)
def test_go_bad_notes_fail_at_the_note_layer(note: str | bytes) -> None:
    with pytest.raises(FormatError):
        _split_note(note)
    _split_note(TEXT + "\n" + PETER_SIG * 100)  # exactly the limit is fine


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": True},
        {"root": b"\x00" * 31},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
        {"extensions": "abc"},
    ],
)
def test_invalid_checkpoints(kwargs: dict) -> None:
    args = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(FormatError):
        Checkpoint(**args)


def test_extensions_become_a_tuple() -> None:
    assert Checkpoint(ORIGIN, 1, ROOT, ["x"]).extensions == ("x",)  # type: ignore[arg-type]
