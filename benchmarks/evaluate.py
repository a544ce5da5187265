"""Rank metrics with pytrec_eval-compatible definitions, vectorised over questions.

- NDCG@k uses linear gain (``grade / log2(rank + 1)``), graded where grades exist, and the
  ideal ranking of all judged-relevant records.
- Recall@k is ``|top-k ∩ Y| / min(|Y|, k)`` (the NUDGE paper's definition), so Recall@1 is hit@1.

Scores are inner products: NUDGE-M rows are not unit-norm and must not be renormalised.
"""

from __future__ import annotations

import numpy as np

#: metric name -> (kind, k); the order here is the order of every table column
METRICS = {"ndcg@10": ("ndcg", 10), "recall@1": ("recall", 1), "recall@10": ("recall", 10)}


def top_k(query_emb: np.ndarray, doc_emb: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Row indices of the ``k`` best records per question by inner product, best first.

    Chunked over questions so the score block stays small on large corpora.
    """
    k = min(k, doc_emb.shape[0])
    out = np.empty((query_emb.shape[0], k), dtype=np.int64)
    for start in range(0, query_emb.shape[0], chunk):
        scores = query_emb[start:start + chunk] @ doc_emb.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


class Relevance:
    """Per-question relevance (``[{row: grade}, ...]``) as sorted integer keys, so the grade
    of any (question, row) cell is one vectorised ``searchsorted``."""

    def __init__(self, rel: list, n_docs: int):
        self.n_questions = len(rel)
        self.n_docs = n_docs
        q_idx, rows, grades = [], [], []
        for i, labels in enumerate(rel):
            items = labels.items() if isinstance(labels, dict) else ((r, 1.0) for r in labels)
            for row, grade in items:
                q_idx.append(i)
                rows.append(int(row))
                grades.append(float(grade))
        keys = np.asarray(q_idx, dtype=np.int64) * n_docs + np.asarray(rows, dtype=np.int64)
        order = np.argsort(keys)
        self.keys = keys[order]
        self.grades = np.asarray(grades, dtype=np.float64)[order]
        self.q_idx = np.asarray(q_idx, dtype=np.int64)[order]
        self.n_relevant = np.bincount(self.q_idx, minlength=self.n_questions)

    def grades_of(self, ranked: np.ndarray) -> np.ndarray:
        """Grade of each ranked cell (0 when unjudged); ``ranked`` is (questions, k) rows."""
        keys = np.arange(ranked.shape[0], dtype=np.int64)[:, None] * self.n_docs + ranked
        pos = np.searchsorted(self.keys, keys)
        pos_clipped = np.minimum(pos, max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return np.zeros(ranked.shape)
        hit = self.keys[pos_clipped] == keys
        return np.where(hit, self.grades[pos_clipped], 0.0)

    def ideal_dcg(self, k: int) -> np.ndarray:
        """DCG@k of the ideal ranking per question (grades sorted high to low)."""
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        # sort by (question, -grade) and rank inside each question
        order = np.lexsort((-self.grades, self.q_idx))
        q_sorted, g_sorted = self.q_idx[order], self.grades[order]
        first = np.searchsorted(q_sorted, q_sorted, side="left")
        rank = np.arange(len(q_sorted)) - first
        keep = rank < k
        ideal = np.zeros(self.n_questions)
        np.add.at(ideal, q_sorted[keep], g_sorted[keep] * discounts[rank[keep]])
        return ideal


def metrics_from_ranking(ranked: np.ndarray, relevance: Relevance,
                         metrics: dict = METRICS) -> dict[str, np.ndarray]:
    """Per-question metric values from ranked rows (questions, ≥ max k)."""
    gains = relevance.grades_of(ranked)
    out = {}
    for name, (kind, k) in metrics.items():
        g = gains[:, :k]
        if kind == "ndcg":
            discounts = 1.0 / np.log2(np.arange(2, g.shape[1] + 2))
            ideal = relevance.ideal_dcg(k)
            dcg = (g * discounts).sum(axis=1)
            out[name] = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
        else:
            found = (g > 0).sum(axis=1)
            denom = np.minimum(relevance.n_relevant, k)
            out[name] = np.divide(found, denom, out=np.zeros(len(found)), where=denom > 0)
    return out


def evaluate(query_emb: np.ndarray, doc_emb: np.ndarray, rel: list,
             metrics: dict = METRICS) -> dict[str, float]:
    """Mean of each metric over the questions, scoring records by inner product."""
    depth = max(k for _, k in metrics.values())
    ranked = top_k(np.asarray(query_emb, dtype=np.float32),
                   np.asarray(doc_emb, dtype=np.float32), depth)
    per_question = metrics_from_ranking(ranked, Relevance(rel, doc_emb.shape[0]), metrics)
    return {name: float(values.mean()) for name, values in per_question.items()}


def hit_at_1(query_emb: np.ndarray, doc_emb: np.ndarray, rel: list) -> float:
    """Share of questions whose best-scored record is relevant (validation criterion)."""
    return evaluate(query_emb, doc_emb, rel, {"recall@1": ("recall", 1)})["recall@1"]
