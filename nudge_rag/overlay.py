"""The exact overlay: a store's own search with a delta's moved records rescored.

For a query, the nudged ranking is the unmoved records in their stored order merged with the
moved records at their nudged scores. The store is asked for its own top ``k``; the merge is
exact when ``k`` unmoved records came back, or when the merged ``k``-th score is no worse than
the last score the store returned (nothing it left out can beat that). Otherwise the store is
asked again, twice as deep.
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
        # float32 like the stored vectors: half the work per query for the same ranking
        self.vectors = np.ascontiguousarray(delta.vectors[pos], dtype=np.float32)
        self.moved = set(self.ids)
        self._row = {i: r for r, i in enumerate(self.ids)}
        self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors, dtype=np.float64)

    def _native(self, query: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """What the store would report for moved records ``rows`` (all when ``None``)."""
        vectors = self.vectors if rows is None else self.vectors[rows]
        sq = self._sq_norms if rows is None else self._sq_norms[rows]
        dots = (vectors @ query.astype(np.float32)).astype(np.float64)
        similarity = self.adapter.similarity
        if similarity == "dot":
            return dots
        if similarity == "cosine":
            return dots / np.sqrt(sq * (query @ query))
        return sq - 2.0 * dots + query @ query

    def _moved_top(self, query: np.ndarray, k: int, filters):
        """The best ``k`` moved records (admitted by ``filters``) and their native scores."""
        if filters is None:
            rows = np.arange(len(self.ids))
            scores = self._native(query, None)
        else:
            rows = np.array([self._row[i] for i in self.adapter.filter_ids(self.ids, filters)],
                            dtype=np.int64)
            scores = self._native(query, rows)
        if len(rows) == 0:
            return [], np.zeros(0)
        key = -scores if self.adapter.higher_is_better else scores
        if len(rows) > k:
            part = np.argpartition(key, k - 1)[:k]
            rows, scores = rows[part], scores[part]
        return [self.ids[r] for r in rows], scores

    def search(self, query, k: int, filters=None) -> tuple[list[str], list[float]]:
        """Top-``k`` ids and native scores of the nudged store for one query vector."""
        query = np.asarray(query, dtype=np.float64)
        moved_ids, moved_scores = self._moved_top(query, k, filters)
        total = self.adapter.count()
        better = self.adapter.higher_is_better
        depth = min(k, total) if total else k
        while True:
            ids, native = self.adapter.query(query, max(depth, 1), filters)
            native = np.asarray(native, dtype=np.float64)
            keep = [j for j, i in enumerate(ids) if i not in self.moved]
            all_ids = [ids[j] for j in keep] + moved_ids
            all_scores = np.concatenate([native[keep], moved_scores])
            order = np.argsort(-all_scores if better else all_scores, kind="stable")[:k]
            if len(ids) < depth or depth >= total or len(keep) >= k:
                break
            # Records the store did not return score no better than its last one, so the
            # merge is exact once its k-th score is at least that good; most queries stop
            # here with the plain retriever's own k.
            if len(order) == k and len(ids):
                last, kth = native[len(ids) - 1], all_scores[order[-1]]
                if (kth >= last) if better else (kth <= last):
                    break
            depth = min(2 * depth, total)
        return [all_ids[j] for j in order], all_scores[order].tolist()
