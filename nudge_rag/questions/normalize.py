"""Text normalisation and near-duplicate grouping of questions.

Two questions belong together when their normalised texts are equal, or when the Jaccard
similarity of their character 3-gram sets reaches ``threshold``. Candidate pairs come from
MinHash banding (numpy, fixed seeds, so the result is the same on every machine and run) and
are then confirmed with the exact Jaccard similarity, so banding never invents a pair. Groups
are the connected components of the confirmed pairs. Questions that carry only an embedding are
grouped by cosine similarity instead.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict

import numpy as np

#: default Jaccard similarity of character 3-grams above which two texts are near-duplicates
NEAR_DUPLICATE_JACCARD = 0.8
#: default cosine similarity above which two text-less questions are the same question
NEAR_DUPLICATE_COSINE = 0.995

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

#: English function words: the offline generator skips them, and the question filter does not
#: count them as naming a topic
STOP_WORDS = frozenset("""
a about above after again against all also although am an and any are as at be because been
before being below between both but by can could did do does doing done down during each either
else etc even ever every few for from further had has have having he her here hers herself him
himself his how however i if in into is it its itself just least less let like made make many
may me might more most much must my myself neither no nor not now of off often on once one only
or other others otherwise our ours ourselves out over own per perhaps rather same several shall
she should since so some such than that the their theirs them themselves then there these they
this those though through thus to too toward towards under until up upon us use used using very
via was we well were what when where whether which while who whom whose why will with within
without would yet you your yours yourself yourselves et al i.e e.g vs
""".split())

# MinHash: 64 hash functions cut into 16 bands of 4. A pair at Jaccard 0.8 shares a band with
# probability 1 - (1 - 0.8**4)**16 > 0.999; at 0.7 it is still 0.98.
_N_HASHES = 64
_BAND_ROWS = 4
_SEEDS = np.random.default_rng(20240904).integers(0, 2**63, size=_N_HASHES, dtype=np.uint64)


def normalize_text(text: str) -> str:
    """Casefold, apply Unicode NFKC, turn punctuation into spaces and collapse whitespace.

    ``"What's  the CAPITAL of France?"`` becomes ``"what s the capital of france"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def shingles(normalized: str, k: int = 3) -> set[str]:
    """Character ``k``-grams of a normalised text, padded so short words still count."""
    padded = f" {normalized} "
    if len(padded) <= k:
        return {padded}
    return {padded[i:i + k] for i in range(len(padded) - k + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash (uint64 arithmetic wraps)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _minhash(shingle_set: set[str]) -> np.ndarray:
    # crc32 rather than hash(): Python salts str hashes per process, which would make the
    # grouping (and therefore every split) change from run to run
    base = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in shingle_set), dtype=np.uint64,
                       count=len(shingle_set))
    return _mix64(base[:, None] ^ _SEEDS[None, :]).min(axis=0)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def labels(self) -> np.ndarray:
        roots = np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)
        # renumber 0, 1, 2, ... in order of first appearance
        _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first))
        return rank[inverse]


def near_duplicate_pairs(normalized: list[str], threshold: float = NEAR_DUPLICATE_JACCARD):
    """Index pairs ``(i, j)``, ``i < j``, of distinct normalised texts whose 3-gram Jaccard
    similarity is at least ``threshold``."""
    sets = [shingles(t) for t in normalized]
    signatures = np.stack([_minhash(s) for s in sets]) if sets else np.zeros((0, _N_HASHES))
    candidates: set[tuple[int, int]] = set()
    for start in range(0, _N_HASHES, _BAND_ROWS):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        band = np.ascontiguousarray(signatures[:, start:start + _BAND_ROWS])
        for i, row in enumerate(band):
            buckets[row.tobytes()].append(i)
        for members in buckets.values():
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    candidates.add((members[a], members[b]))
    return sorted((i, j) for i, j in candidates if jaccard(sets[i], sets[j]) >= threshold)


def _cosine_pairs(embeddings: np.ndarray, threshold: float, block: int = 1024):
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    pairs = []
    for start in range(0, len(unit), block):
        sims = unit[start:start + block] @ unit.T
        rows, cols = np.nonzero(sims >= threshold)
        rows = rows + start
        keep = rows < cols
        pairs.extend(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))
    return pairs


def duplicate_groups(texts, embeddings=None, threshold: float = NEAR_DUPLICATE_JACCARD,
                     cosine: float = NEAR_DUPLICATE_COSINE) -> np.ndarray:
    """Group label per question (``0, 1, ...`` in order of first appearance).

    Questions with a text are grouped by normalised text (equal, or 3-gram Jaccard
    ``>= threshold``; pass ``threshold=1.0`` for exact matches only). Questions without a text
    are grouped by the cosine similarity of their embeddings (``>= cosine``).
    """
    n = len(texts)
    uf = _UnionFind(n)
    with_text = [i for i, t in enumerate(texts) if t is not None]
    first_of: dict[str, int] = {}
    for i in with_text:
        key = normalize_text(texts[i])
        if key in first_of:
            uf.union(first_of[key], i)
        else:
            first_of[key] = i
    if threshold < 1.0 and len(first_of) > 1:
        keys = list(first_of)
        for a, b in near_duplicate_pairs(keys, threshold):
            uf.union(first_of[keys[a]], first_of[keys[b]])
    without_text = [i for i, t in enumerate(texts) if t is None]
    if len(without_text) > 1 and embeddings is not None:
        sub = np.asarray(embeddings)[without_text]
        for a, b in _cosine_pairs(sub, cosine):
            uf.union(without_text[a], without_text[b])
    return uf.labels() if n else np.zeros(0, dtype=np.int64)
