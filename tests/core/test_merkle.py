"""Tests for RFC 9162 Merkle trees (mlflow_provenance.merkle).

Known answers come from transparency-dev/merkle (testonly/constants.go and
proof/verify_test.go), which publish the RFC 6962/9162 test data used by
Trillian and certificate-transparency-go. A literal recursive transcription of
the RFC's MTH / PATH / PROOF definitions below cross-checks everything else.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_provenance.errors import ConfigurationError, FormatError, MerkleProofError
from mlflow_provenance.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAF_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]

# testonly.RootHashes(): index = tree size.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# testonly.NodeHashes(): [level][index].
NODES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# testonly.CompactTrees(): the compact range of each tree size, as (level, index).
COMPACT = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# proof/verify_test.go inclusionProofs: (leaf index, tree size, proof).
INCLUSION = [
    (0, 1, []),
    (0, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]),
    (5, 8, [NODES[0][4], NODES[1][3], NODES[2][0]]),
    (2, 3, [NODES[1][0]]),
    (1, 5, [NODES[0][0], NODES[1][1], NODES[0][4]]),
]
# Spelled out as published, to pin the NODES table too.
assert INCLUSION[1][2][2] == h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")

# proof/verify_test.go consistencyProofs: (size1, size2, proof).
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]),
    (6, 8, [NODES[1][2], NODES[1][3], NODES[2][0]]),
    (2, 5, [NODES[1][1], NODES[0][4]]),
    (6, 7, [NODES[1][2], NODES[0][6], NODES[2][0]]),
]


# --- the RFC's definitions, transcribed literally (reference implementation) ---


def ref_mth(data: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over raw leaf inputs."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:])).digest()


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(data)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, data[:k]) + [ref_mth(data[k:])]
    return ref_path(m - k, data[k:]) + [ref_mth(data[:k])]


def ref_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(data)
    if m == n:
        return [] if b else [ref_mth(data)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, data[:k], b) + [ref_mth(data[k:])]
    return ref_subproof(m - k, data[k:], False) + [ref_mth(data[:k])]


def ref_proof(m: int, data: list[bytes]) -> list[bytes]:
    return ref_subproof(m, data, True) if 0 < m < len(data) else []


def _data(n: int) -> list[bytes]:
    return [b"leaf-%d" % i for i in range(n)]


# --- known answers ---------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT == ROOTS[0]
    assert leaf_hash(b"") == NODES[0][0]
    assert node_hash(NODES[0][0], NODES[0][1]) == NODES[1][0]


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size: int) -> None:
    assert root_from_leaves(LEAVES[:size]) == ROOTS[size]
    assert ref_mth(LEAF_INPUTS[:size]) == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_published_compact_ranges(size: int) -> None:
    rng = CompactRange()
    for leaf in LEAVES[:size]:
        rng.append(leaf)
    assert rng.size == size
    assert list(rng.hashes) == [NODES[lvl][i] for lvl, i in COMPACT[size]]
    assert rng.root() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAVES, index, size) == proof
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAVES, old, new) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def _inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """Mutations from transparency-dev/merkle corruptInclusionProof."""
    some = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    yield index - 1, size, proof, root, leaf
    yield index + 1, size, proof, root, leaf
    yield index ^ 2, size, proof, root, leaf
    yield index, size * 2, proof, root, leaf
    yield index, size // 2, proof, root, leaf
    yield index, size, proof, root, leaf_hash(b"WrongLeaf")
    yield index, size, proof, EMPTY_ROOT, leaf
    yield index, size, proof, some, leaf
    yield index, size, proof + [root], root, leaf
    yield index, size, [root] + proof, root, leaf
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield index, size, bad, root, leaf
    if proof:
        yield index, size, proof[:-1], root, leaf
    if len(proof) > 1:
        yield index, size, [proof[0], some] + proof[1:], root, leaf


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    for i, s, p, r, leaf in _inclusion_probes(index, size, proof, ROOTS[size], LEAVES[index]):
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaf, i, s, p, r)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, leaf_hash(b"WrongRoot"), r2, proof),
        (old, new, r1, leaf_hash(b"WrongRoot"), proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, proof + [r1]),
        (old, new, r1, r2, proof + [r2]),
        (old, new, r1, r2, [r1] + proof),
        (old, new, r1, r2, [r2] + proof),
        (old, new, r1, r2, [proof[0]] + proof),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((old, new, r1, r2, bad))
    for probe in probes:
        with pytest.raises(MerkleProofError):
            verify_consistency(*probe)


def test_trivial_consistency_cases() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    with pytest.raises(MerkleProofError):
        verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])  # same size, other root
    with pytest.raises(MerkleProofError):
        verify_consistency(3, 3, ROOTS[3], ROOTS[3], [ROOTS[1]])  # proof must be empty
    with pytest.raises(MerkleProofError):
        verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])  # not the empty root
    with pytest.raises(MerkleProofError):
        verify_consistency(5, 3, ROOTS[5], ROOTS[3], [])  # time travel
    with pytest.raises(MerkleProofError):
        verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])  # empty proof


def test_bad_verification_arguments_raise_merkle_proof_error() -> None:
    with pytest.raises(MerkleProofError):
        verify_inclusion(LEAVES[0], 1, 1, [], ROOTS[1])  # index >= size
    with pytest.raises(MerkleProofError):
        verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    with pytest.raises(MerkleProofError):
        verify_inclusion(b"short", 0, 1, [], ROOTS[1])  # hash of the wrong length
    with pytest.raises(MerkleProofError):
        verify_inclusion(LEAVES[0], 0, 2, [b""], ROOTS[2])


def test_bad_generation_arguments_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(ConfigurationError):
        inclusion_proof(LEAVES, -1)
    with pytest.raises(ConfigurationError):
        inclusion_proof(LEAVES, 0, 9)
    with pytest.raises(ConfigurationError):
        consistency_proof(LEAVES, 5, 3)
    with pytest.raises(ConfigurationError):
        consistency_proof(LEAVES, 1, 9)


# --- CompactRange persistence ------------------------------------------------------


def test_compact_range_matches_root_for_all_sizes_up_to_70() -> None:
    leaves = [leaf_hash(d) for d in _data(70)]
    rng = CompactRange()
    assert rng.root() == EMPTY_ROOT
    for size in range(1, 71):
        rng.append(leaves[size - 1])
        assert rng.root() == root_from_leaves(leaves[:size]) == ref_mth(_data(size))
        restored = CompactRange.from_json(rng.size, rng.to_json())
        assert restored == rng and restored.root() == rng.root()


def test_compact_range_resumes_after_persisting() -> None:
    leaves = [leaf_hash(d) for d in _data(20)]
    rng = CompactRange()
    for leaf in leaves[:11]:
        rng.append(leaf)
    resumed = CompactRange.from_json(11, rng.to_json())
    for leaf in leaves[11:]:
        resumed.append(leaf)
    assert resumed.root() == root_from_leaves(leaves)
    assert rng.size == 11  # the original is untouched


@pytest.mark.parametrize(
    ("size", "hashes"),
    [
        (3, ["00" * 32]),  # 3 has two 1-bits
        (0, ["00" * 32]),
        (4, []),
        (-1, []),
        (True, ["00" * 32]),
        (1, ["zz" * 32]),
        (1, ["00" * 31]),
        (1, [b"\x00" * 32]),
        (1, "00" * 32),
    ],
)
def test_compact_range_rejects_inconsistent_state(size: object, hashes: object) -> None:
    with pytest.raises(FormatError):
        CompactRange.from_json(size, hashes)  # type: ignore[arg-type]


def test_compact_range_rejects_raw_data() -> None:
    with pytest.raises(ConfigurationError):
        CompactRange().append(b"not a hash")


# --- properties --------------------------------------------------------------------


@st.composite
def _tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=140))
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@settings(max_examples=150, deadline=None)
@given(_tree_and_index())
def test_every_inclusion_proof_verifies(args: tuple[int, int]) -> None:
    size, index = args
    data = _data(size)
    leaves = [leaf_hash(d) for d in data]
    root = root_from_leaves(leaves)
    proof = inclusion_proof(leaves, index)
    assert proof == ref_path(index, data)
    verify_inclusion(leaves[index], index, size, proof, root)
    # Tampering with any element, the index, the leaf or the root must fail. (A
    # different size need not: RFC 9162 hashes do not commit to the tree size.)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaves[index], index, size, bad, root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[index], index, size, proof, leaf_hash(b"other"))
    if size > 1:
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaves[(index + 1) % size], index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(_tree_and_index())
def test_every_consistency_proof_verifies(args: tuple[int, int]) -> None:
    new, old = args[0], args[1] + 1  # 1 <= old <= new
    data = _data(new)
    leaves = [leaf_hash(d) for d in data]
    old_root, new_root = root_from_leaves(leaves[:old]), root_from_leaves(leaves)
    proof = consistency_proof(leaves, old, new)
    assert proof == ref_proof(old, data)
    verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        return
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(MerkleProofError):
            verify_consistency(old, new, old_root, new_root, bad)
    with pytest.raises(MerkleProofError):
        verify_consistency(old, new, leaf_hash(b"x"), new_root, proof)
    with pytest.raises(MerkleProofError):
        verify_consistency(old, new, old_root, leaf_hash(b"x"), proof)
    # A forked log (one old leaf rewritten) cannot prove consistency.
    forked = list(leaves)
    forked[old - 1] = leaf_hash(b"rewritten")
    fork_proof = consistency_proof(forked, old, new)
    with pytest.raises(MerkleProofError):
        verify_consistency(old, new, old_root, root_from_leaves(forked), fork_proof)
