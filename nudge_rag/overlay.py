"""The exact overlay: a store's own search with a delta's moved records rescored.

For a query, the nudged ranking is the unmoved records in their stored order merged with the
moved records at their nudged scores. The store is asked for its top ``k`` plus room for moved
records; nothing it left out beats the last score it returned, so its unmoved records plus the
moved records scoring at least that well hold the exact top ``k`` once there are ``k`` of them.
Otherwise the store is asked again, twice as deep.
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
        qq = float(query @ query)
        if similarity == "cosine":
            return dots / np.sqrt(sq * qq)
        return sq - 2.0 * dots + qq

    def _admitted(self, filters) -> np.ndarray | None:
        """Rows of the moved records that ``filters`` admits (``None``: every one)."""
        if filters is None:
            return None
        return np.array([self._row[i] for i in self.adapter.filter_ids(self.ids, filters)],
                        dtype=np.int64)

    def search(self, query, k: int, filters=None) -> tuple[list[str], list[float]]:
        """Top-``k`` ids and native scores of the nudged store for one query vector."""
        query = np.asarray(query, dtype=np.float64)
        rows = self._admitted(filters)
        moved = self._native(query, rows)
        better = self.adapter.higher_is_better
        total = self.adapter.count()
        # a search's cost barely grows with its depth, a second search doubles it: ask for
        # room for as many moved records as could crowd the top k
        depth = min(k + min(len(self.ids), k), total) if total else k
        while True:
            ids, native = self.adapter.query(query, max(depth, 1), filters)
            native = np.asarray(native, dtype=np.float64)
            keep = [j for j, i in enumerate(ids) if i not in self.moved]
            if len(ids) < depth or depth >= total or not len(ids):
                cand = np.arange(len(moved))  # the store gave all it has: every moved record
                break
            # nothing the store left out scores better than the last record it returned, so
            # the unmoved records it gave plus the moved ones at least that good hold the exact
            # top k once there are k of them
            last = native[len(ids) - 1]
            cand = np.flatnonzero(moved >= last if better else moved <= last)
            if len(keep) + len(cand) >= k:
                break
            depth = min(2 * depth, total)
        moved_rows = cand if rows is None else rows[cand]
        all_ids = [ids[j] for j in keep] + [self.ids[r] for r in moved_rows.tolist()]
        all_scores = np.concatenate([native[keep], moved[cand]])
        order = np.argsort(-all_scores if better else all_scores, kind="stable")[:k]
        return [all_ids[j] for j in order.tolist()], all_scores[order].tolist()
