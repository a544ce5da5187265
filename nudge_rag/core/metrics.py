"""Vectorised rank metrics: NDCG@k (linear gain, graded), recall@k, MRR@k and hit@k.

Metrics are computed from the rank of every relevant (question, record) pair, so a whole
validation set is scored with a few ``bincount`` calls. Definitions follow trec_eval:
``recall@k = |top-k ∩ Y| / min(|Y|, k)`` (the NUDGE paper's), NDCG gain = grade.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from .relevance import Pairs, to_pairs

METRIC_NAMES = ("ndcg", "recall", "mrr", "hit")
REPORT_METRICS = ("ndcg@10", "recall@1", "recall@10", "mrr@10")
_METRIC_RE = re.compile(r"^\s*(ndcg|recall|mrr|hit)\s*@\s*(\d+)\s*$", re.IGNORECASE)


def parse_metric(metric: str, name: str = "metric") -> tuple[str, int]:
    """``"ndcg@10"`` → ``("ndcg", 10)``; anything else is an :class:`InputError`."""
    match = _METRIC_RE.match(metric) if isinstance(metric, str) else None
    if match is None or int(match.group(2)) < 1:
        raise InputError(f"{name}={metric!r} is not a known metric; use one of "
                         "'ndcg@k', 'recall@k', 'mrr@k' or 'hit@k' with k ≥ 1, e.g. 'ndcg@10'")
    return match.group(1).lower(), int(match.group(2))


class RankScorer:
    """Scores rank vectors for a fixed set of relevant pairs (one rank per pair)."""

    def __init__(self, pairs: Pairs):
        self.pairs = pairs
        self.n_rel = pairs.counts()
        self._idcg: dict[int, np.ndarray] = {}
        # position of each pair among its question's pairs by descending grade (for IDCG)
        order = np.lexsort((-pairs.grade, pairs.query))
        starts = np.searchsorted(pairs.query[order], np.arange(pairs.n_queries))
        pos = np.arange(len(order)) - starts[pairs.query[order]]
        self._ideal_pos = np.empty(len(order), dtype=np.int64)
        self._ideal_pos[order] = pos

    def idcg(self, k: int) -> np.ndarray:
        if k not in self._idcg:
            gain = np.where(self._ideal_pos < k,
                            self.pairs.grade / np.log2(self._ideal_pos + 2.0), 0.0)
            self._idcg[k] = np.bincount(self.pairs.query, gain, minlength=self.pairs.n_queries)
        return self._idcg[k]

    def per_query(self, ranks: np.ndarray, name: str, k: int) -> np.ndarray:
        """Metric value of every question; ``ranks`` is 1-based, ``inf`` for unretrieved."""
        p = self.pairs
        hit = ranks <= k
        # a set of questions with no relevant pair (a fold of unlabelled training questions)
        # gets an integer bincount: the quotients go into float arrays of their own
        if name == "ndcg":
            dcg = np.bincount(p.query, np.where(hit, p.grade / np.log2(ranks + 1.0), 0.0),
                              minlength=p.n_queries)
            idcg = self.idcg(k)
            return np.divide(dcg, idcg, out=np.zeros(p.n_queries), where=idcg > 0)
        found = np.bincount(p.query, hit.astype(np.float64), minlength=p.n_queries)
        if name == "recall":
            denom = np.minimum(self.n_rel, k).astype(np.float64)
            return np.divide(found, denom, out=np.zeros(p.n_queries), where=denom > 0)
        if name == "hit":
            return (found > 0).astype(np.float64)
        if name == "mrr":
            best = np.full(p.n_queries, np.inf)
            np.minimum.at(best, p.query, np.where(hit, ranks, np.inf))
            return np.where(np.isfinite(best), 1.0 / best, 0.0)
        raise InputError(f"unknown metric {name!r}; use one of {METRIC_NAMES}")

    def mean(self, ranks: np.ndarray, metric: str) -> float:
        name, k = parse_metric(metric)
        return float(self.per_query(ranks, name, k).mean())

    def report(self, ranks: np.ndarray, metrics=REPORT_METRICS) -> dict[str, float]:
        return {m: self.mean(ranks, m) for m in metrics}


def ranks_from_topk(topk_rows: np.ndarray, pairs: Pairs) -> np.ndarray:
    """1-based rank of each relevant pair within its question's retrieved rows (``inf`` when
    it was not retrieved)."""
    retrieved = np.asarray(topk_rows)[pairs.query]
    match = retrieved == pairs.row[:, None]
    found = match.any(axis=1)
    return np.where(found, match.argmax(axis=1) + 1.0, np.inf)


def evaluate_topk(topk_rows, rel, metrics=REPORT_METRICS, n_rows: int | None = None):
    """Mean metrics of a retrieval run: ``topk_rows[i]`` are the rows retrieved for question
    ``i`` in rank order, ``rel[i]`` its relevance (list of rows or ``{row: grade}``).
    Questions without any relevant record are ignored, as trec_eval does."""
    topk_rows = np.asarray(topk_rows)
    if topk_rows.ndim != 2:
        raise InputError(f"topk_rows must be 2-D (questions × k); got shape {topk_rows.shape}")
    if n_rows is None:
        n_rows = int(max(topk_rows.max(initial=0), max(
            (max(r) if len(r) else 0 for r in rel), default=0))) + 1
    pairs = to_pairs(rel, len(topk_rows), n_rows, "rel")
    keep = pairs.counts() > 0
    scorer = RankScorer(pairs)
    ranks = ranks_from_topk(topk_rows, pairs)
    out = {}
    for m in metrics:
        name, k = parse_metric(m)
        out[m] = float(scorer.per_query(ranks, name, k)[keep].mean()) if keep.any() else 0.0
    return out


def warm_questions(pairs: Pairs, named_rows) -> np.ndarray:
    """Per question of ``pairs``: whether some relevant record of it is among
    ``named_rows`` (records that training questions name). The others are *cold*: no
    training question names their answers, so NUDGE moves none of them (and the query
    memory holds no key for them)."""
    return questions_with(pairs, np.isin(pairs.row, np.asarray(named_rows, dtype=np.int64)))


def questions_with(pairs: Pairs, mask: np.ndarray) -> np.ndarray:
    """Per question: whether ``mask`` (one flag per pair) holds for some pair of it."""
    return np.bincount(pairs.query, weights=mask, minlength=pairs.n_queries) > 0


def warm_cold_report(topk_rows, rel, named_rows, metrics=("ndcg@10",),
                     n_rows: int | None = None) -> dict:
    """``metrics`` of a retrieval run (as :func:`evaluate_topk`) over all questions, the warm
    ones and the cold ones (see :func:`warm_questions`), with the count of each:
    ``{"all": {...}, "warm": {"n_questions": ..., m: ...}, "cold": {...}}``; a part without
    questions has ``None`` for each metric."""
    topk_rows = np.asarray(topk_rows)
    if n_rows is None:
        n_rows = int(max(topk_rows.max(initial=0), np.max(named_rows, initial=0), max(
            (max(r) if len(r) else 0 for r in rel), default=0))) + 1
    pairs = to_pairs(rel, len(topk_rows), n_rows, "rel")
    labelled = pairs.counts() > 0
    warm = warm_questions(pairs, named_rows)
    out = {}
    for part, mask in (("all", labelled), ("warm", labelled & warm),
                       ("cold", labelled & ~warm)):
        idx = np.flatnonzero(mask)
        out[part] = {"n_questions": int(len(idx)), **(
            evaluate_topk(topk_rows[idx], [rel[i] for i in idx], metrics, n_rows)
            if len(idx) else dict.fromkeys(metrics))}
    return out
