"""Ed25519 keys: named public keys (C2SP signed-note verifier keys, https://c2sp.org/signed-note),
signing keys kept in 0600 PKCS#8 PEM files, and keyrings of trusted keys with validity windows.

A key has two identifiers: :attr:`PublicKey.key_id`, the hex SHA-256 of the raw public key
(this package's stable id), and :attr:`PublicKey.note_key_hash`, the 4-byte signed-note key
hash on checkpoint signature lines. Reprs and error messages never show private key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlflow_provenance.errors import ConfigurationError, FormatError, SignatureError

__all__ = [
    "DEFAULT_KEY_NAME", "Keyring", "KeyringEntry", "PublicKey", "SigningKey", "check_key_name",
    "dump_keyring", "generate_signing_key", "load_keyring", "load_signing_key", "write_signing_key",
]  # fmt: skip

DEFAULT_KEY_NAME = "mlflow-provenance"
#: C2SP signed-note: the signature-type identifier byte of Ed25519.
_ALG_ED25519 = 0x01
_HEX8 = re.compile(r"[0-9a-f]{8}")
_KEY_FIX = (
    "set MLFLOW_PROVENANCE_KEY to an existing key file or create one with "
    "`mlflow-provenance keygen --out PATH`"
)


def check_key_name(name: str) -> None:
    """Check a key name: C2SP signed-note names are non-empty, without whitespace or ``+``.

    Raises:
        FormatError: the name breaks those rules.
    """
    if not isinstance(name, str) or not name:
        raise FormatError("a key name must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name):
        raise FormatError(f"key name {name!r} is invalid: it may not contain '+' or whitespace")


@dataclass(frozen=True)
class PublicKey:
    """A named Ed25519 public key (``raw`` is the 32-byte RFC 8032 encoding)."""

    name: str
    raw: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise FormatError(f"Ed25519 public key {self.name!r} must be 32 bytes")

    def __repr__(self) -> str:
        return f"PublicKey({self.vkey()!r})"

    @property
    def key_id(self) -> str:
        """Lowercase hex SHA-256 of the raw public key: this package's key id."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def note_key_hash(self) -> bytes:
        """C2SP signed-note key hash: SHA-256(name || 0x0A || 0x01 || raw)[:4]."""
        data = self.name.encode("utf-8") + b"\n" + bytes([_ALG_ED25519]) + self.raw
        return hashlib.sha256(data).digest()[:4]

    def vkey(self) -> str:
        """C2SP signed-note verifier key: ``<name>+<hex key hash>+<base64(0x01||raw)>``."""
        material = base64.b64encode(bytes([_ALG_ED25519]) + self.raw).decode("ascii")
        return f"{self.name}+{self.note_key_hash.hex()}+{material}"

    @classmethod
    def from_vkey(cls, text: str) -> PublicKey:
        """Parse a C2SP signed-note verifier key (see :meth:`vkey`).

        Raises:
            FormatError: not ``name+hash+key``; a bad name, hash, base64, signature type
                or key length; or a hash that does not match the name and key.
        """
        if not isinstance(text, str):
            raise FormatError("a verifier key must be a string")
        parts = text.split("+", 2)  # base64 may itself contain '+'
        if len(parts) != 3:
            raise FormatError(f"verifier key {text!r} must have the form NAME+KEYHASH+BASE64KEY")
        name, hash_hex, material = parts
        check_key_name(name)
        if not _HEX8.fullmatch(hash_hex):
            raise FormatError(f"verifier key {name!r}: hash {hash_hex!r} is not 8 lowercase hex")
        try:
            decoded = base64.b64decode(material, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if not decoded or base64.b64encode(decoded).decode("ascii") != material:
            raise FormatError(f"verifier key {name!r}: the key is not valid base64")
        if decoded[0] != _ALG_ED25519:
            raise FormatError(
                f"verifier key {name!r}: signature type 0x{decoded[0]:02x} is not supported "
                "(only 0x01, Ed25519)"
            )
        if len(decoded) != 33:
            raise FormatError(f"verifier key {name!r}: Ed25519 keys are 32 bytes, not {len(decoded) - 1}")
        key = cls(name, decoded[1:])
        if key.note_key_hash.hex() != hash_hex:
            raise FormatError(
                f"verifier key {name!r}: hash {hash_hex} does not match the name and key "
                f"(expected {key.note_key_hash.hex()}); the key was altered or mistyped"
            )
        return key

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature (RFC 8032 §5.1.7) over ``message``.

        Raises:
            SignatureError: the signature does not verify with this key.
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError, TypeError):
            raise SignatureError(
                f"signature does not verify with key {self.name}+"
                f"{self.note_key_hash.hex()} (key id {self.key_id})"
            ) from None


class SigningKey:
    """A named Ed25519 private key. ``repr`` shows only the name and key id."""

    __slots__ = ("_private", "_public")

    def __init__(self, private_key: Ed25519PrivateKey, name: str = DEFAULT_KEY_NAME) -> None:
        """Wrap ``private_key`` under ``name``.

        Raises ConfigurationError for a non-Ed25519 key, FormatError for an invalid name.
        """
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ConfigurationError("a signing key must be an Ed25519 private key")
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._private = private_key
        self._public = PublicKey(name, raw)

    @property
    def name(self) -> str:
        """The key name used on signature lines."""
        return self._public.name

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self._public

    @property
    def key_id(self) -> str:
        """The public key's :attr:`PublicKey.key_id`."""
        return self._public.key_id

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature (RFC 8032 §5.1.6) over ``message``."""
        return self._private.sign(message)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM. Handle with care."""
        pkcs8, pem = serialization.PrivateFormat.PKCS8, serialization.Encoding.PEM
        return self._private.private_bytes(pem, pkcs8, serialization.NoEncryption())

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.key_id!r})"

    def __reduce__(self) -> Any:
        raise TypeError("SigningKey cannot be pickled; load it from its key file instead")


def generate_signing_key(name: str = DEFAULT_KEY_NAME) -> SigningKey:
    """A fresh random Ed25519 signing key named ``name``.

    Raises:
        FormatError: ``name`` is not a valid signed-note key name.
    """
    return SigningKey(Ed25519PrivateKey.generate(), name)


def write_signing_key(key: SigningKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` to ``path`` as unencrypted PKCS#8 PEM with mode 0600.

    The PEM goes to a 0600 temporary file in the same directory, which is then
    hard-linked into place: ``path`` never exists half-written, never with looser
    permissions, and an existing file is never replaced.

    Raises:
        ConfigurationError: ``path`` already exists, or its directory is missing or
            not writable.
    """
    target = Path(path)
    refuse = f"refusing to overwrite existing file {target}; choose another path or remove it"
    if target.exists() or target.is_symlink():
        raise ConfigurationError(refuse)
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write key file {target}: its directory does not exist")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".mlflow-provenance-key-", dir=target.parent)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, target)  # fails if the target appeared meanwhile
        except FileExistsError:
            raise ConfigurationError(refuse) from None
        except OSError:  # a filesystem without hard links
            if target.exists():
                raise ConfigurationError(refuse) from None
            os.replace(tmp_name, target)
    except OSError as exc:
        raise ConfigurationError(f"cannot write key file {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_signing_key(path: str | os.PathLike[str], name: str = DEFAULT_KEY_NAME) -> SigningKey:
    """Load an unencrypted PKCS#8 PEM Ed25519 private key written by :func:`write_signing_key`.

    Raises:
        ConfigurationError: the file is missing, unreadable, readable by group or
            others (POSIX; fail closed), not PEM, corrupt, encrypted, or not an
            Ed25519 key. The message names the path and the fix and never contains
            key material (the underlying exception is not chained either).
        FormatError: ``name`` is not a valid signed-note key name.
    """
    check_key_name(name)
    target = Path(path)
    where = f"signing key file {target}"
    encrypted = (
        f"{where} is encrypted; mlflow-provenance needs an unencrypted PKCS#8 key "
        "protected by file permissions (chmod 600)"
    )
    try:
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"{where} is not a regular file; {_KEY_FIX}")
        if os.name == "posix" and info.st_mode & 0o077:
            raise ConfigurationError(
                f"{where} is accessible by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 {target}"
            )
        data = target.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{where} does not exist; {_KEY_FIX}") from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {where}: {exc.strerror or exc}; it must be readable by you "
            "and nobody else (chmod 600)"
        ) from None
    if b"-----BEGIN" not in data:
        raise ConfigurationError(f"{where} is not a PEM file; {_KEY_FIX}")
    if b"ENCRYPTED" in data:
        raise ConfigurationError(encrypted)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigurationError(encrypted) from None
    except (ValueError, UnsupportedAlgorithm):
        # The library's message is dropped on purpose: never echo key bytes.
        raise ConfigurationError(f"{where} is corrupt or not a PKCS#8 private key; {_KEY_FIX}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigurationError(
            f"{where} holds a key of type {type(private).__name__}, not Ed25519; {_KEY_FIX}"
        )
    return SigningKey(private, name)


# --- keyrings -------------------------------------------------------------------


def _check_instant(value: datetime | None, what: str) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ConfigurationError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")


@dataclass(frozen=True)
class KeyringEntry:
    """A trusted key and the window in which its signatures count (inclusive bounds)."""

    public_key: PublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        _check_instant(self.not_before, "not_before")
        _check_instant(self.not_after, "not_after")
        if self.not_before and self.not_after and self.not_after < self.not_before:
            raise ConfigurationError(
                f"key {self.public_key.name} ({self.public_key.key_id}): not_after "
                f"{_fmt(self.not_after)} is before not_before {_fmt(self.not_before)}"
            )

    def valid_at(self, when: datetime) -> bool:
        """Whether ``when`` lies in ``[not_before, not_after]``; ConfigurationError if naive."""
        _check_instant(when, "when")
        if self.not_before is not None and when < self.not_before:
            return False
        return self.not_after is None or when <= self.not_after


class Keyring:
    """The set of public keys trusted to sign checkpoints and records."""

    def __init__(self, entries: Iterable[KeyringEntry] = ()) -> None:
        """A keyring holding ``entries``; raises ConfigurationError if a key appears twice."""
        self._entries: list[KeyringEntry] = []
        for entry in entries:
            self._insert(entry)

    @classmethod
    def from_signing_key(cls, key: SigningKey) -> Keyring:
        """A keyring trusting exactly ``key``'s public key, with no time bounds."""
        return cls([KeyringEntry(key.public_key)])

    def _insert(self, entry: KeyringEntry) -> None:
        if not isinstance(entry, KeyringEntry):
            raise ConfigurationError(f"keyring entries must be KeyringEntry, got {entry!r}")
        if self.entry_for_key_id(entry.public_key.key_id) is not None:
            raise ConfigurationError(
                f"key {entry.public_key.name} ({entry.public_key.key_id}) is already in the keyring"
            )
        self._entries.append(entry)

    def add(
        self,
        public_key: PublicKey,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> KeyringEntry:
        """Trust ``public_key`` within ``[not_before, not_after]`` and return its entry.

        Raises ConfigurationError: key already trusted, naive bound, or not_after < not_before.
        """
        entry = KeyringEntry(public_key, not_before, not_after)
        self._insert(entry)
        return entry

    @property
    def entries(self) -> tuple[KeyringEntry, ...]:
        """All entries, in insertion order."""
        return tuple(self._entries)

    def find(self, name: str, note_key_hash: bytes) -> list[KeyringEntry]:
        """Entries whose key has this signed-note ``name`` and 4-byte key hash."""
        key = (name, note_key_hash)
        return [e for e in self._entries if (e.public_key.name, e.public_key.note_key_hash) == key]

    def entry_for_key_id(self, key_id: str) -> KeyringEntry | None:
        """The entry whose :attr:`PublicKey.key_id` is ``key_id``, or None."""
        return next((e for e in self._entries if e.public_key.key_id == key_id), None)

    def valid_at(self, entry: KeyringEntry, when: datetime) -> bool:
        """Whether ``entry``'s key may sign at ``when`` (see :meth:`KeyringEntry.valid_at`)."""
        return entry.valid_at(when)

    def describe(self) -> str:
        """The trusted keys as ``name+hash`` strings, for error messages."""
        return ", ".join(
            f"{e.public_key.name}+{e.public_key.note_key_hash.hex()}" for e in self._entries
        ) or "(none)"

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[KeyringEntry]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Keyring({self.describe()})"


def _fmt(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_instant(value: Any, field: str, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise FormatError(
                f"{where}: {field} {value!r} is not an ISO 8601 timestamp like 2026-01-01T00:00:00Z"
            ) from None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise FormatError(f"{where}: {field} {value!r} needs a timezone, as in 2026-01-01T00:00:00Z")
    return value.astimezone(timezone.utc)


def load_keyring(path: str | os.PathLike[str]) -> Keyring:
    """Load a keyring file: YAML (JSON when named ``*.json``) of the form
    ``{"keys": [{"vkey": "...", "not_before": "2026-01-01T00:00:00Z", "not_after": null}]}``.

    Raises:
        ConfigurationError: the file is missing or unreadable.
        FormatError: invalid YAML/JSON, no ``keys`` list, unknown fields, a bad vkey or
            timestamp, not_after < not_before, a duplicate key, or no keys at all (an
            empty keyring trusts nothing). Messages name the path, the problem and the fix.
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"keyring file {target} does not exist; check the path, or create it listing the "
            "vkey printed by `mlflow-provenance keygen`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read keyring file {target}: {exc}") from None
    try:
        doc = json.loads(text) if target.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise FormatError(f"keyring file {target} is not valid YAML/JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise FormatError(
            f"keyring file {target} must be a mapping with a 'keys' list, like "
            "keys: [{vkey: NAME+HASH+KEY, not_before: 2026-01-01T00:00:00Z}]"
        )
    extra = set(doc) - {"keys"}
    if extra:
        raise FormatError(f"keyring file {target}: unknown top-level fields {sorted(extra)}")
    if not doc["keys"]:
        raise FormatError(
            f"keyring file {target} lists no keys; an empty keyring trusts nothing — add "
            "the vkey printed by `mlflow-provenance keygen`"
        )
    keyring = Keyring()
    for i, item in enumerate(doc["keys"]):
        where = f"keyring file {target}, key #{i + 1}"
        if not isinstance(item, dict) or "vkey" not in item:
            raise FormatError(f"{where}: each key must be a mapping with a 'vkey' field")
        unknown = set(item) - {"vkey", "not_before", "not_after"}
        if unknown:
            raise FormatError(f"{where}: unknown fields {sorted(unknown)}; use vkey, not_before, not_after")
        try:
            public_key = PublicKey.from_vkey(item["vkey"])
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None
        not_before = _parse_instant(item.get("not_before"), "not_before", where)
        not_after = _parse_instant(item.get("not_after"), "not_after", where)
        try:
            keyring.add(public_key, not_before, not_after)
        except ConfigurationError as exc:
            raise FormatError(f"{where}: {exc}") from None
    return keyring


def dump_keyring(keyring: Keyring) -> str:
    """The keyring as YAML in the format :func:`load_keyring` reads."""
    keys = [
        {
            "vkey": e.public_key.vkey(),
            "not_before": _fmt(e.not_before) if e.not_before else None,
            "not_after": _fmt(e.not_after) if e.not_after else None,
        }
        for e in keyring
    ]
    return yaml.safe_dump({"keys": keys}, sort_keys=False, default_flow_style=False)
