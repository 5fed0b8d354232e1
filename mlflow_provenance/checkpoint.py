"""Signed tree heads: C2SP tlog-checkpoint bodies inside C2SP signed notes.

A checkpoint (https://c2sp.org/tlog-checkpoint) commits to a log's origin, size
and Merkle root::

    <origin>\\n<size>\\n<base64 root>\\n[<extension line>\\n ...]

It is published as a signed note (https://c2sp.org/signed-note): the body, a
blank line, then one line per signature::

    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The encoding is byte-compatible with Go's ``golang.org/x/mod/sumdb/note``, so
standard transparency-log tooling (witnesses, monitors) can read these notes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from mlflow_provenance.errors import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    SignatureError,
)
from mlflow_provenance.keys import Keyring, PublicKey, SigningKey, check_key_name

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "add_signature",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]

#: C2SP signed-note: signature lines start with U+2014 EM DASH and a space.
SIGNATURE_PREFIX = "\u2014 "
#: Go's sumdb/note rejects notes with more signatures than this; so do we.
MAX_SIGNATURES = 100
_SIZE = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x1f]")
_NOTE_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # any control char but \n
_HASH_SIZE = 32


def _b64decode_canonical(text: str) -> bytes | None:
    """Standard base64 with padding, rejecting non-canonical encodings."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the log's origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise FormatError("checkpoint origin must be a non-empty string")
        if _CONTROL.search(self.origin):
            raise FormatError(
                f"checkpoint origin {self.origin!r} must be one line without control characters"
            )
        if type(self.size) is not int or self.size < 0:
            raise FormatError(f"checkpoint size must be a non-negative integer, got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            raise FormatError(f"checkpoint root must be a {_HASH_SIZE}-byte SHA-256 hash")
        if isinstance(self.extensions, str):
            raise FormatError("checkpoint extensions must be a sequence of lines, not a string")
        exts = tuple(self.extensions)
        for line in exts:
            # tlog-checkpoint: extension lines are non-empty; signed-note: the
            # text holds no control characters but newline.
            if not isinstance(line, str) or not line or _CONTROL.search(line):
                raise FormatError(
                    f"checkpoint extension line {line!r} must be a non-empty single line"
                )
        object.__setattr__(self, "extensions", exts)

    def body(self) -> bytes:
        """The checkpoint text, UTF-8; every line, the last included, ends in ``\\n``."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class NoteSignature:
    """One parsed signed-note signature line (not yet verified)."""

    name: str
    key_hash: bytes  # 4 bytes
    signature: bytes  # the rest of the blob: 64 bytes for Ed25519

    def line(self) -> str:
        """The signature line, ``— <name> <base64(key hash || signature)>\\n``."""
        blob = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"

    @property
    def key_label(self) -> str:
        """``name+hash`` as used in verifier keys and error messages."""
        return f"{self.name}+{self.key_hash.hex()}"


def _signature_for(text: bytes, key: SigningKey) -> NoteSignature:
    # signed-note: an Ed25519 signature is over the note text, final newline included.
    return NoteSignature(key.name, key.public_key.note_key_hash, key.sign(text))


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey) -> str:
    """The signed note carrying ``checkpoint``, signed by ``key``.

    Raises:
        FormatError: the checkpoint is invalid (see :class:`Checkpoint`).
    """
    body = checkpoint.body()
    return body.decode("utf-8") + "\n" + _signature_for(body, key).line()


def _split_note(note_text: str | bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text bytes and parsed signature lines.

    Follows the parsing rules of C2SP signed-note (as implemented by Go's
    ``note.Open``): valid UTF-8 without control characters other than newline; the
    text ends at the last blank line; every following line is a signature line;
    at most :data:`MAX_SIGNATURES` of them.
    """
    if isinstance(note_text, bytes):
        try:
            note_text = note_text.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("signed note is not valid UTF-8") from None
    if not isinstance(note_text, str):
        raise FormatError("a signed note must be text")
    try:
        note_text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("signed note contains invalid Unicode (a lone surrogate)") from None
    if _NOTE_CONTROL.search(note_text):
        raise FormatError(
            "signed note contains a control character other than newline (a \\r from a "
            "Windows line ending?)"
        )
    split = note_text.rfind("\n\n")
    if split < 0:
        raise FormatError(
            "signed note has no blank line separating the text from its signatures"
        )
    text, sig_block = note_text[: split + 1], note_text[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise FormatError("signed note must end with signature lines, each ending in a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"signed note has more than {MAX_SIGNATURES} signatures")
    signatures = [_parse_signature_line(line, n) for n, line in enumerate(lines, 1)]
    return text.encode("utf-8"), signatures


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise FormatError(
            f"signed note signature line {number} must start with '— ' (U+2014 EM DASH "
            f"and a space), got {line[:40]!r}"
        )
    name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        check_key_name(name)
    except FormatError as exc:
        raise FormatError(f"signed note signature line {number}: {exc}") from None
    blob = _b64decode_canonical(b64) if b64 else None
    # signed-note: a 4-byte key hash followed by a non-empty signature.
    if blob is None or len(blob) < 5:
        raise FormatError(
            f"signed note signature line {number} ({name}): signature is not base64 of a "
            "key hash and signature"
        )
    return NoteSignature(name, blob[:4], blob[4:])


def _checkpoint_from_text(text: bytes) -> Checkpoint:
    """Parse a tlog-checkpoint body (https://c2sp.org/tlog-checkpoint)."""
    lines = text.decode("utf-8").split("\n")[:-1]  # the text ends in "\n"
    if len(lines) < 3:
        raise FormatError(
            "checkpoint must have at least three lines: origin, tree size and root hash"
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise FormatError("checkpoint origin line is empty")
    if not _SIZE.fullmatch(size_text):
        raise FormatError(
            f"checkpoint tree size {size_text!r} must be a decimal integer without "
            "leading zeros"
        )
    root = _b64decode_canonical(root_text)
    if root is None or len(root) != _HASH_SIZE:
        raise FormatError(
            f"checkpoint root hash {root_text!r} must be the base64 of {_HASH_SIZE} bytes"
        )
    for line in extensions:
        if not line:
            raise FormatError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def parse_checkpoint(note_text: str | bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a signed checkpoint note without verifying any signature.

    Raises:
        FormatError: the note or the checkpoint inside it is malformed.
    """
    text, signatures = _split_note(note_text)
    return _checkpoint_from_text(text), signatures


def add_signature(note_text: str | bytes, key: SigningKey) -> str:
    """Add ``key``'s signature to a signed checkpoint (cosigning).

    An existing signature line for the same key name and hash is replaced, as Go's
    ``note.Sign`` does. Existing signatures are kept as they are, not verified.

    Raises:
        FormatError: the note or the checkpoint inside it is malformed.
    """
    text, signatures = _split_note(note_text)
    _checkpoint_from_text(text)
    mine = _signature_for(text, key)
    kept = [
        s for s in signatures if (s.name, s.key_hash) != (mine.name, mine.key_hash)
    ]
    if len(kept) + 1 > MAX_SIGNATURES:
        raise FormatError(f"signed note would have more than {MAX_SIGNATURES} signatures")
    return text.decode("utf-8") + "\n" + "".join(s.line() for s in [*kept, mine])


def _verifies(key: PublicKey, signature: bytes, text: bytes) -> bool:
    try:
        key.verify(signature, text)
    except SignatureError:
        return False
    return True


def open_checkpoint(
    note_text: str | bytes,
    keyring: Keyring,
    *,
    origin: str | None = None,
    at: datetime | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint against ``keyring`` and return the checkpoint.

    Verification follows C2SP signed-note: signature lines whose key name and key
    hash match no keyring entry are ignored; a signature from a *known* key that
    does not verify rejects the whole note (as Go's ``note.Open`` does); only the
    first line per key counts. The checkpoint is returned only if at least one
    signature verifies with a key that is valid at ``at`` (when ``at`` is given).

    Raises:
        ConfigurationError: ``keyring`` is empty, or ``at`` has no timezone.
        FormatError: the note is malformed.
        SignatureError: a known key's signature does not verify, or no signature
            from a trusted key (valid at ``at``) is present; the message lists the
            keys seen and the keys the keyring trusts.
        IntegrityError: ``origin`` is given and the checkpoint names another origin.
    """
    if len(keyring) == 0:
        raise ConfigurationError(
            "the keyring is empty, and an empty keyring trusts nothing; add the log's "
            "verifier key"
        )
    if at is not None and (not isinstance(at, datetime) or at.utcoffset() is None):
        raise ConfigurationError(f"'at' must be a timezone-aware datetime, got {at!r}")
    text, signatures = _split_note(note_text)
    checkpoint = _checkpoint_from_text(text)

    accepted = False
    seen: set[tuple[str, bytes]] = set()
    notes: list[str] = []
    for sig in signatures:
        ident = (sig.name, sig.key_hash)
        if ident in seen:
            continue  # only the first signature line per key counts
        seen.add(ident)
        candidates = keyring.find(sig.name, sig.key_hash)
        if not candidates:
            notes.append(f"{sig.key_label} (not in the keyring)")
            continue
        verified = [e for e in candidates if _verifies(e.public_key, sig.signature, text)]
        if not verified:
            raise SignatureError(
                f"checkpoint for {checkpoint.origin!r} at size {checkpoint.size}: the "
                f"signature by trusted key {sig.key_label} does not verify; the "
                "checkpoint or its signature was altered"
            )
        if at is None or any(e.valid_at(at) for e in verified):
            accepted = True
        else:
            notes.append(
                f"{sig.key_label} (valid signature, but the key is not trusted at "
                f"{at.isoformat()})"
            )
    if not accepted:
        found = "; ".join(notes) if notes else "none"
        raise SignatureError(
            f"checkpoint for {checkpoint.origin!r} at size {checkpoint.size} has no "
            f"signature from a trusted key. Signatures found: {found}. The keyring "
            f"trusts: {keyring.describe()}. Check that the keyring belongs to this log."
        )
    if origin is not None and checkpoint.origin != origin:
        raise IntegrityError(
            f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}; it "
            "belongs to another log"
        )
    return checkpoint
