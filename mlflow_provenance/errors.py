"""The error hierarchy.

Every error this package raises derives from :class:`ProvenanceError`. Two branches
matter to callers, and map to the CLI's exit codes (DESIGN.md §7):

* :class:`IntegrityError` — the evidence is bad: something was altered (exit 1).
* :class:`ConfigurationError` — the check itself could not run: a missing key,
  an unsupported URI, a malformed file (exit 2).

Each error carries a message that says what to do about it.
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Root of every error raised by mlflow-provenance."""

    def diagnostics(self) -> str:
        """A user-facing explanation, suitable for printing by a CLI."""
        return str(self)


class ConfigurationError(ProvenanceError):
    """The operation could not run: bad input, bad configuration, missing key material."""


class FormatError(ConfigurationError):
    """A document (key, keyring, checkpoint, ledger row) is not in the expected format."""


class CanonicalizationError(ProvenanceError):
    """A value cannot be encoded as RFC 8785 canonical JSON (NaN, Infinity, non-string keys...)."""


class IntegrityError(ProvenanceError):
    """Evidence was checked and found to be altered, missing or forged."""


class SignatureError(IntegrityError):
    """A signature does not verify against any trusted key."""


class MerkleProofError(IntegrityError):
    """An inclusion or consistency proof does not verify."""
