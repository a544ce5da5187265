"""The exact overlay: a store's own search with a delta's moved records rescored.

For a query, the nudged ranking is the unmoved records in their stored order merged with the
moved records at their nudged scores. Asking the store for a few more than ``k`` and dropping
moved records leaves at least ``k`` unmoved ones (or all there are), so the merge is exact.
Scores are the store's own: cosine, inner product, or L2 distance.
"""

from __future__ import annotations

import numpy as np

from .stores import adapt


class Overlay:
    def __init__(self, index_or_store, delta, allow_model_mismatch: bool = False):
        self.adapter = adapt(index_or_store)
        delta._check_target(self.adapter, allow_model_mismatch)
        pos, _ = delta.live(self.adapter, "overlay")
        self.delta = delta
        self.ids = [delta.ids[p] for p in pos]
        self.vectors = np.asarray(delta.vectors[pos], dtype=np.float64)
        self.moved = set(self.ids)
        self._row = {i: r for r, i in enumerate(self.ids)}

    def search(self, query, k: int, filters=None) -> tuple[list[str], list[float]]:
        """Top-``k`` ids and native scores of the nudged store for one query vector."""
        query = np.asarray(query, dtype=np.float64)
        cand = self.ids if filters is None else self.adapter.filter_ids(self.ids, filters)
        rows = [self._row[i] for i in cand]
        moved_scores = self.adapter.native_scores(query, self.vectors[rows]) if rows else []
        total = self.adapter.count()
        depth = min(k + min(len(self.moved), k), total) if total else k
        while True:
            ids, native = self.adapter.query(query, max(depth, 1), filters)
            keep = [j for j, i in enumerate(ids) if i not in self.moved]
            if len(keep) >= k or len(ids) < depth or depth >= total:
                break
            depth = min(2 * depth, total)
        merged = [(ids[j], float(native[j])) for j in keep[:k]]
        merged += [(i, float(s)) for i, s in zip(cand, moved_scores)]
        sign = -1.0 if self.adapter.higher_is_better else 1.0
        merged.sort(key=lambda pair: sign * pair[1])
        top = merged[:k]
        return [i for i, _ in top], [s for _, s in top]
