"""RFC 6962 Merkle tree: Certificate Transparency reference vectors and properties."""

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger import domain
from services.ledger.merkle import (
    EMPTY_ROOT, CompactRange, MerkleTree, consistency_proof, inclusion_proof, leaf_hash,
    root_from_leaf_hashes, root_hash, verify_consistency, verify_inclusion,
)

# The 8-leaf test data of the CT implementations (certificate-transparency, transparency-dev/merkle).
LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
INCLUSION = [  # (index, size, path)
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
CONSISTENCY = [  # (first, second, path)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
HASHES = [leaf_hash(e) for e in LEAVES]
TREE = MerkleTree(HASHES)


def h(n: int) -> bytes:
    return sha256(n.to_bytes(8, "big")).digest()


def test_roots_of_every_prefix_match_the_reference():
    assert [root_hash(LEAVES[:n]).hex() for n in range(9)] == ROOTS
    assert [TREE.root(n).hex() for n in range(9)] == ROOTS
    compact = CompactRange()
    seen = [compact.root().hex()]
    for leaf in HASHES:
        compact.append(leaf)
        seen.append(compact.root().hex())
    assert seen == ROOTS
    assert domain.root_hash is root_hash and domain.leaf_hash is leaf_hash


@pytest.mark.parametrize("index,size,path", INCLUSION)
def test_inclusion_proofs_match_the_reference(index, size, path):
    proof = inclusion_proof(index, HASHES[:size])
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize("first,second,path", CONSISTENCY)
def test_consistency_proofs_match_the_reference(first, second, path):
    proof = consistency_proof(first, second, TREE)
    assert [p.hex() for p in proof] == path
    assert verify_consistency(first, second, bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second]), proof)


def test_a_real_ct_log_audit_path_verifies():
    """Leaf 848049 of a 3,630,887-entry CT log (from the certificate-transparency Python tests)."""
    path = [bytes.fromhex(x) for x in """
        1a208aeebcd1b39fe2de247ee8db9454e1e93a312d206b87f6ca9cc6ec6f1ddd 0a1b78b383f580856f433c01a5741e160d451c185910027f6cc9f828687a40c4
        3d1745789bc63f2da15850de1c12a5bf46ed81e1cc90f086148b1662e79aab3d 9095b61e14d8990acf390905621e62b1714fb8e399fbb71de5510e0aef45affe
        0a332b91b8fab564e6afd1dd452449e04619b18accc0ff9aa8393cd4928451f2 2336f0181d264aed6d8f3a6507ca14a8d3b3c3a23791ac263e845d208c1ee330
        b4ce56e300590500360c146c6452edbede25d4ed83919278749ee5dbe178e048 933f6ddc848ea562e4f9c5cfb5f176941301dad0c6fdb9d1fbbe34fac1be6966
        b95a6222958a86f74c030be27c44f57dbe313e5e7c7f4ffb98bcbd3a03bb52f2 daeeb3ce5923defd0faeb8e0c210b753b85b809445d7d3d3cd537a9aabaa9c45
        7fadd0a13e9138a2aa6c3fdec4e2275af233b94812784f66bcca9aa8e989f2bc 1864e6ba3e32878610546539734fb5eeae2529991f130c575c73a7e25a2a7c56
        12842d1202b1dc6828a17ab253c02e7ce9409b5192430feba44189f39cc02d66 29af64b16fa3053c13d02ac63aa75b23aa468506e44c3a2315edc85d2dc22b11
        b527b99934a0bd9edd154e449b0502e2c499bba783f3bc3dfe23364b6b532009 4584db8ae8e351ace08e01f306378a92bfd43611714814f3d834a2842d69faa8
        86a9a41573b0d6e4292f01e93243d6cc65b30f06606fc6fa57390e7e90ed580f a88b98fbe84d4c6aae8db9d1605dfac059d9f03fe0fcb0d5dff1295dacba09e6
        06326dc617a6d1f7021dc536026dbfd5fffc6f7c5531d48ef6ccd1ed1569f2a1 f41fe8fdc3a2e4e8345e30216e7ebecffee26ff266eeced208a6c2a3cf08f960
        40cf5bde8abb76983f3e98ba97aa36240402975674e120f234b3448911090f8d b3222dc8658538079883d980d7fdc2bef9285344ea34338968f736b04aeb387a
    """.split()]
    leaf = bytes.fromhex("7a395c866d5ecdb0cccb623e011dbc392cd348d1d1d72776174e127a24b09c78")
    root = bytes.fromhex("78316a05c9bcf14a3a4548f5b854a9adfcd46a4c034401b3ce7eb7ac2f1d0ecb")
    assert verify_inclusion(leaf, 848049, 3630887, path, root)
    assert not verify_inclusion(leaf, 848050, 3630887, path, root)
    assert not verify_inclusion(leaf, 848049, 3630887, path[:-1], root)


def test_edge_cases_are_refused():
    assert not verify_inclusion(HASHES[0], 1, 1, [], leaf_hash(LEAVES[0]))
    assert not verify_inclusion(HASHES[0], 0, 4, [HASHES[1]] * 3, TREE.root(4))  # too long
    assert not verify_consistency(6, 8, bytes.fromhex(ROOTS[6]), bytes.fromhex(ROOTS[8]),
                                  consistency_proof(6, 8, TREE)[:-1])  # too short
    assert not verify_consistency(5, 2, bytes.fromhex(ROOTS[5]), bytes.fromhex(ROOTS[2]), [])
    assert not verify_consistency(3, 3, bytes.fromhex(ROOTS[2]), bytes.fromhex(ROOTS[3]), [])
    assert verify_consistency(0, 5, EMPTY_ROOT, bytes.fromhex(ROOTS[5]), [])
    assert not verify_consistency(2, 5, bytes.fromhex(ROOTS[2]), bytes.fromhex(ROOTS[5]), [])
    with pytest.raises(ValueError):
        TREE.inclusion_proof(8)
    with pytest.raises(ValueError):
        TREE.root(9)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13, 64, 100, 1000, 1025])
def test_the_three_ways_of_computing_a_root_agree(n):
    leaves = [h(i) for i in range(n)]
    compact = CompactRange()
    compact.extend(leaves)
    tree = MerkleTree(leaves)
    assert root_from_leaf_hashes(leaves) == compact.root() == tree.root() == _recursive(leaves)
    assert compact.size == len(tree) == n


def _recursive(leaves):
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + _recursive(leaves[:k]) + _recursive(leaves[k:])).digest()


BIG = MerkleTree(h(i) for i in range(64))


def test_every_inclusion_proof_up_to_64_verifies():
    for size in range(1, 65):
        root = BIG.root(size)
        assert root == _recursive([h(i) for i in range(size)])
        for index in range(size):
            assert verify_inclusion(h(index), index, size, BIG.inclusion_proof(index, size), root)


def test_every_consistency_proof_up_to_64_verifies():
    roots = [BIG.root(n) for n in range(65)]
    for second in range(65):
        for first in range(second + 1):
            proof = BIG.consistency_proof(first, second)
            assert verify_consistency(first, second, roots[first], roots[second], proof), (first, second)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
       st.integers(0, 10**6), st.sampled_from(["leaf", "proof", "root", "index"]))
def test_a_flipped_bit_fails_inclusion(size_index, bit, what):
    size, index = size_index
    leaf, proof, root = h(index), BIG.inclusion_proof(index, size), BIG.root(size)
    if what == "leaf":
        leaf = _flip(leaf, bit)
    elif what == "proof":
        if not proof:
            return
        i = bit % len(proof)
        proof[i] = _flip(proof[i], bit // len(proof))
    elif what == "root":
        root = _flip(root, bit)
    else:
        index ^= 1 << (bit % 7)
    # tree_size itself is not bound by the proof (only its shape is): the signed checkpoint binds it
    assert not verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       st.integers(0, 10**6), st.sampled_from(["first_root", "second_root", "proof"]))
def test_a_flipped_bit_fails_consistency(sizes, bit, what):
    first, second = sizes
    proof = BIG.consistency_proof(first, second)
    first_root, second_root = BIG.root(first), BIG.root(second)
    if what == "first_root":
        first_root = _flip(first_root, bit)
    elif what == "second_root":
        second_root = _flip(second_root, bit)
    else:
        if not proof:
            return
        i = bit % len(proof)
        proof[i] = _flip(proof[i], bit // len(proof))
    assert not verify_consistency(first, second, first_root, second_root, proof)
