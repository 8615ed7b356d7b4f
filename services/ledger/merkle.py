"""The Merkle log every ledger entry, checkpoint, receipt and audit is built on.

RFC 6962 section 2.1 (RFC 9162 section 2.1): leaves and inner nodes are hashed with different
prefixes so a leaf can never pass for a node: leaf = SHA-256(0x00 || entry),
node = SHA-256(0x01 || left || right). A tree of n leaves splits at the largest power of two
below n. Proofs and their verification follow RFC 9162 sections 2.1.3 and 2.1.4.

- `CompactRange`: the root while leaves stream past, in O(log n) memory (the auditor's tool).
- `MerkleTree`: every complete subtree kept, so roots and proofs for any size cost O(log n)
  hashes (the ledger's tool; 64 bytes per leaf).
"""

from collections.abc import Iterable, Sequence
from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash, bottom up: pairing each level and carrying an odd last node up
    unchanged gives the same tree as the recursive largest-power-of-two split."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2])]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_hash(entries: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of raw `entries` (not yet leaf-hashed)."""
    return root_from_leaf_hashes([leaf_hash(e) for e in entries])


class CompactRange:
    """The perfect subtrees covering leaves [0, size): one hash per set bit of `size`."""

    __slots__ = ("size", "_peaks")

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        peaks, n, h = self._peaks, self.size, leaf
        while n & 1:
            h = sha256(b"\x01" + peaks.pop() + h).digest()
            n >>= 1
        peaks.append(h)
        self.size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf in leaf_hashes:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        h = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            h = node_hash(peak, h)
        return h


class MerkleTree:
    """An append-only log's tree; `levels[k][i]` is the hash of leaves [i*2^k, (i+1)*2^k)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> int:
        """Adds a leaf hash; returns its index."""
        levels = self.levels
        levels[0].append(leaf)
        k = 0
        while len(levels[k]) % 2 == 0:
            row = levels[k]
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(node_hash(row[-2], row[-1]))
            k += 1
        return len(levels[0]) - 1

    def subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), for a range aligned as proofs and roots use them
        (start a multiple of the smallest power of two >= end - start)."""
        if end - start == 0:
            return EMPTY_ROOT
        pieces: list[bytes] = []
        length = end - start
        for k in range(length.bit_length() - 1, -1, -1):
            if length >> k & 1:
                if start % (1 << k):
                    raise ValueError(f"range [{start}, {end}) is not aligned")
                pieces.append(self.levels[k][start >> k])
                start += 1 << k
        h = pieces[-1]
        for piece in reversed(pieces[:-1]):
            h = node_hash(piece, h)
        return h

    def root(self, size: int | None = None) -> bytes:
        return self.subtree(0, len(self) if size is None else self._size(size))

    def inclusion_proof(self, index: int, size: int | None = None,
                        memo: dict[tuple[int, int], bytes] | None = None) -> list[bytes]:
        """RFC 9162 2.1.3.1 PATH(index, D[size]), leaf to root. `memo` (a dict the caller keeps
        for proofs against one tree) saves recomputing the unaligned right-edge subtrees that
        proofs of neighbouring leaves share."""
        size = len(self) if size is None else self._size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        proof: list[bytes] = []
        start, n, m = 0, size, index
        subtree = self.subtree if memo is None else self._memo_subtree(memo)
        while n > 1:
            k = 1 << ((n - 1).bit_length() - 1)
            if m < k:
                proof.append(subtree(start + k, start + n))
                n = k
            else:
                proof.append(subtree(start, start + k))
                start, n, m = start + k, n - k, m - k
        proof.reverse()
        return proof

    def _memo_subtree(self, memo: dict[tuple[int, int], bytes]):
        def subtree(start: int, end: int) -> bytes:
            length = end - start
            if length and length & (length - 1) == 0 and start % length == 0:  # complete: one lookup
                return self.levels[length.bit_length() - 1][start // length]
            h = memo.get((start, end))
            if h is None:
                h = memo[start, end] = self.subtree(start, end)
            return h
        return subtree

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 2.1.4.1 PROOF(first, D[second]); empty when first is 0 or equals second."""
        second = len(self) if second is None else self._size(second)
        if not 0 <= first <= second:
            raise ValueError(f"no consistency proof from {first} to {second}")
        if first in (0, second):
            return []
        proof: list[bytes] = []
        start, n, m, whole = 0, second, first, True
        while m != n:
            k = 1 << ((n - 1).bit_length() - 1)
            if m <= k:
                proof.append(self.subtree(start + k, start + n))
                n = k
            else:
                proof.append(self.subtree(start, start + k))
                start, n, m, whole = start + k, n - k, m - k, False
        if not whole:
            proof.append(self.subtree(start, start + n))
        proof.reverse()
        return proof

    def _size(self, size: int) -> int:
        if not 0 <= size <= len(self):
            raise ValueError(f"tree has {len(self)} leaves, not {size}")
        return size


def _tree(leaves: "Sequence[bytes] | MerkleTree") -> MerkleTree:
    return leaves if isinstance(leaves, MerkleTree) else MerkleTree(leaves)


def inclusion_proof(index: int, leaves: "Sequence[bytes] | MerkleTree", tree_size: int | None = None) -> list[bytes]:
    """Audit path for leaf `index` among `leaves` (leaf hashes, or a MerkleTree)."""
    return _tree(leaves).inclusion_proof(index, tree_size)


def consistency_proof(first: int, second: int, leaves: "Sequence[bytes] | MerkleTree") -> list[bytes]:
    return _tree(leaves).consistency_proof(first, second)


def root_from_inclusion_proof(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2; None when the proof has the wrong shape for (index, tree_size)."""
    if not 0 <= index < tree_size:
        return None
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    return root_from_inclusion_proof(leaf, index, tree_size, proof) == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: the tree of `second` leaves extends the tree of `first` leaves."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
