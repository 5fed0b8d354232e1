"""RFC 9162 Merkle trees over SHA-256: hashes, a compact range, proofs.

* :func:`leaf_hash`, :func:`node_hash`, :data:`EMPTY_ROOT` and
  :func:`root_from_leaves` implement the Merkle Tree Hash of RFC 9162 §2.1.1.
* :class:`CompactRange` keeps the roots of the perfect subtrees on the right edge
  of a growing tree (as in transparency-dev/merkle ``compact``), so appending a
  leaf and computing the root cost O(log n) and the state fits in a database row.
* :func:`inclusion_proof` / :func:`verify_inclusion` implement RFC 9162 §2.1.3,
  :func:`consistency_proof` / :func:`verify_consistency` RFC 9162 §2.1.4.

Error policy: generating a proof from arguments that do not describe one
(``index >= size``, ``old_size > new_size``, a size beyond the leaves given) is a
caller mistake and raises :class:`ConfigurationError`. *Verifying* never raises
anything but :class:`MerkleProofError`: a proof, root or size that does not check
out — including impossible sizes and hashes of the wrong length — is evidence that
fails, not a configuration problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from mlflow_provenance.errors import ConfigurationError, FormatError, MerkleProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: RFC 9162 §2.1.1: MTH({}) = HASH(), the SHA-256 of the empty string.
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf, SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (RFC 9162 §2.1.1) of a list of leaf hashes.

    Runs in O(n) time and O(log n) memory. Returns :data:`EMPTY_ROOT` for no leaves.
    """
    stack: list[bytes] = []
    for i, h in enumerate(leaf_hashes):
        # Merge the completed perfect subtrees: one per trailing 1-bit of i.
        while i & 1:
            h = node_hash(stack.pop(), h)
            i >>= 1
        stack.append(h)
    return _fold_right_edge(stack)


def _fold_right_edge(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree roots (largest first) into the tree's root."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root


class CompactRange:
    """The right edge of a Merkle tree: one perfect-subtree root per 1-bit of size.

    ``hashes[0]`` is the root of the largest (leftmost) perfect subtree, the last
    entry the smallest. Appending merges equal-sized subtrees like a binary
    counter, so :meth:`append` does O(log n) hashing and :meth:`root` folds at most
    log2(n) hashes.
    """

    __slots__ = ("_size", "_hashes")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest subtree first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf, given by its :func:`leaf_hash`.

        Raises:
            ConfigurationError: ``leaf_hash`` is not 32 bytes.
        """
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ConfigurationError(
                f"a leaf hash must be {HASH_SIZE} bytes; pass leaf_hash(data), not the data"
            )
        h = leaf_hash
        i = self._size
        while i & 1:
            h = node_hash(self._hashes.pop(), h)
            i >>= 1
        self._hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        """The RFC 9162 §2.1.1 root of the leaves appended so far."""
        return _fold_right_edge(self._hashes)

    def copy(self) -> CompactRange:
        """An independent copy of this range."""
        other = CompactRange()
        other._size = self._size
        other._hashes = list(self._hashes)
        return other

    def to_json(self) -> list[str]:
        """The hashes as lowercase hex strings, for storage next to :attr:`size`."""
        return [h.hex() for h in self._hashes]

    @classmethod
    def from_json(cls, size: int, hashes: Sequence[str]) -> CompactRange:
        """Rebuild a range saved with :meth:`to_json`.

        Raises:
            FormatError: ``size`` is not a non-negative int, a hash is not 64 hex
                digits, or the number of hashes is not the number of 1-bits of
                ``size`` (the stored state is inconsistent).
        """
        if type(size) is not int or size < 0:
            raise FormatError(
                f"compact range size must be a non-negative integer, got {size!r}"
            )
        if isinstance(hashes, (str, bytes)) or not isinstance(hashes, Sequence):
            raise FormatError("compact range hashes must be a list of hex strings")
        expected = bin(size).count("1")
        if len(hashes) != expected:
            raise FormatError(
                f"compact range of size {size} must hold {expected} hashes (one per "
                f"1-bit of the size), found {len(hashes)}; the stored tree state is "
                "inconsistent"
            )
        decoded: list[bytes] = []
        for i, text in enumerate(hashes):
            if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
                raise FormatError(
                    f"compact range hash #{i} must be {2 * HASH_SIZE} hex digits, got {text!r}"
                )
            try:
                decoded.append(bytes.fromhex(text))
            except ValueError:
                raise FormatError(
                    f"compact range hash #{i} is not hexadecimal: {text!r}"
                ) from None
        rng = cls()
        rng._size = size
        rng._hashes = decoded
        return rng

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# --- proof generation --------------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162 §2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_leaves(leaf_hashes: Sequence[bytes], size: int) -> None:
    if type(size) is not int or size < 0:
        raise ConfigurationError(f"tree size must be a non-negative integer, got {size!r}")
    if size > len(leaf_hashes):
        raise ConfigurationError(
            f"tree size {size} exceeds the {len(leaf_hashes)} leaf hashes given"
        )


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """The RFC 9162 §2.1.3.1 inclusion proof PATH(index, D[0:size]).

    ``size`` defaults to ``len(leaf_hashes)``. Takes O(size) hashing.

    Raises:
        ConfigurationError: ``size`` exceeds the leaves given, or ``index`` is not
            in ``[0, size)``.
    """
    if size is None:
        size = len(leaf_hashes)
    _check_leaves(leaf_hashes, size)
    if type(index) is not int or not 0 <= index < size:
        raise ConfigurationError(f"leaf index {index!r} is outside a tree of size {size}")
    proof: list[bytes] = []
    lo, hi, m = 0, size, index
    # Descend from the root; each level contributes the sibling subtree's MTH.
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            proof.append(root_from_leaves(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_from_leaves(leaf_hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    proof.reverse()  # PATH lists the leaf's sibling first
    return proof


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, new_size: int
) -> list[bytes]:
    """The RFC 9162 §2.1.4.1 consistency proof PROOF(old_size, D[0:new_size]).

    Empty when ``old_size`` is 0 or equals ``new_size``. Takes O(new_size) hashing.

    Raises:
        ConfigurationError: ``new_size`` exceeds the leaves given, or ``old_size``
            is negative or greater than ``new_size``.
    """
    _check_leaves(leaf_hashes, new_size)
    if type(old_size) is not int or not 0 <= old_size <= new_size:
        raise ConfigurationError(
            f"old size {old_size!r} must be between 0 and the new size {new_size}"
        )
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    # SUBPROOF(m, D[lo:hi], b), unrolled from the root down.
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            proof.append(root_from_leaves(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_from_leaves(leaf_hashes[lo : lo + k]))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        proof.append(root_from_leaves(leaf_hashes[lo:hi]))
    proof.reverse()  # the deepest node comes first
    return proof


# --- proof verification --------------------------------------------------------


def _check_hashes(what: str, *hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise MerkleProofError(f"{what}: every hash must be {HASH_SIZE} bytes")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Implements the verification algorithm of RFC 9162 §2.1.3.2.

    Raises:
        MerkleProofError: the proof does not verify, ``index`` is not below
            ``size``, or a hash is not 32 bytes.
    """
    _check_hashes("inclusion proof", leaf_hash, root, *proof)
    # Step 1: the index must lie inside the tree.
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise MerkleProofError(
            f"inclusion proof is for leaf {index!r} of a tree of size {size!r}, "
            "which does not exist"
        )
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:
            raise MerkleProofError(
                f"inclusion proof for leaf {index} of {size} is too long"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise MerkleProofError(f"inclusion proof for leaf {index} of {size} is too short")
    if r != root:
        raise MerkleProofError(
            f"inclusion proof for leaf {index} of {size} does not lead to the expected "
            f"root: computed {r.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of ``new_size``/``new_root`` extends ``old_size``/``old_root``.

    Implements the verification algorithm of RFC 9162 §2.1.4.2. The cases the RFC
    leaves to the caller are checked as well: for equal sizes the roots must be
    equal and the proof empty; for ``old_size == 0`` the proof must be empty and
    ``old_root`` must be :data:`EMPTY_ROOT`.

    Raises:
        MerkleProofError: the proof does not verify, ``old_size > new_size``, a size
            is negative, or a hash is not 32 bytes.
    """
    _check_hashes("consistency proof", old_root, new_root, *proof)
    if (
        type(old_size) is not int
        or type(new_size) is not int
        or not 0 <= old_size <= new_size
    ):
        raise MerkleProofError(
            f"a tree of size {old_size!r} cannot be a prefix of a tree of size {new_size!r}"
        )
    if old_size == new_size:
        if proof:
            raise MerkleProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise MerkleProofError(
                f"two trees of size {old_size} have different roots: "
                f"{old_root.hex()} and {new_root.hex()}"
            )
        return
    if old_size == 0:
        if proof:
            raise MerkleProofError("consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise MerkleProofError("the root of the empty tree must be SHA-256 of ''")
        return
    # Step 1.
    if not proof:
        raise MerkleProofError(
            f"consistency proof from {old_size} to {new_size} is empty"
        )
    path = list(proof)
    # Step 2: for a perfect old tree, the old root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise MerkleProofError(
                f"consistency proof from {old_size} to {new_size} is too long"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise MerkleProofError(
            f"consistency proof from {old_size} to {new_size} is too short"
        )
    if fr != old_root:
        raise MerkleProofError(
            f"consistency proof does not lead to the old root of size {old_size}: "
            f"computed {fr.hex()}, expected {old_root.hex()}"
        )
    if sr != new_root:
        raise MerkleProofError(
            f"consistency proof does not lead to the new root of size {new_size}: "
            f"computed {sr.hex()}, expected {new_root.hex()}"
        )
