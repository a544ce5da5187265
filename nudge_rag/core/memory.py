"""Query memory: the training questions kept as extra keys that point at the records they name.

NUDGE moves a record toward the sum of its questions and then forgets them. The memory keeps
each question's unit vector ``t̂`` and scores a record it names by ``α · max_t q·t̂`` (the
question's inner product with the nearest training question that named it); the record ranks
by the better of that and its nudged score. A question asked again in other words then finds
its records even where the nudge stays small (as PEFA, arXiv 2312.02429, does with its index
of training queries). ``α`` (0 turns it off) is chosen with γ.

Scores are inner products with unit keys, the units of ``q·e'`` for a unit record ``e'``, so
memory and nudged scores compare directly; a store scoring by cosine or distance gets them
through :func:`nudge_rag.overlay.native_scores` as if each key were a unit record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .relevance import Pairs

# (question, link) entries held at once when taking the best key per record (about 16 MB)
_LINK_BLOCK = 2_000_000

#: the α a fit tries with memory: 0 (off) and 0.80, 0.81, …, 0.99. Below 0.8 a training
#: question rarely outscores the records that answer a new one. At 1 the memory score of a
#: record's only question equals the score of that record nudged all the way onto it, two
#: sums of the same value that round apart, so which record ranks first would be a matter of
#: rounding (and above 1 it would beat a record that matches a question perfectly).
DEFAULT_ALPHAS = (0.0, *(round(0.80 + 0.01 * i, 2) for i in range(20)))


@dataclass
class QueryMemory:
    """Unit question vectors ``keys`` and their links to records: link ``i`` says that key
    ``key[i]`` names column ``col[i]`` (a position among ``n_cols`` records, such as the
    moved ones). Links are sorted by column."""

    keys: np.ndarray
    key: np.ndarray
    col: np.ndarray
    n_cols: int

    @classmethod
    def build(cls, questions: np.ndarray, pairs: Pairs, cols: np.ndarray,
              n_cols: int, keys: np.ndarray | None = None) -> QueryMemory:
        """The memory of ``questions`` whose relevant pairs are ``pairs``; ``cols`` maps each
        pair to its record's column. ``keys``: the questions as unit vectors, where the
        caller has them already (:func:`unit_keys`)."""
        keys = unit_keys(questions) if keys is None else keys
        order = np.lexsort((pairs.query, cols))
        return cls(keys, pairs.query[order].astype(np.int64),
                   np.asarray(cols, dtype=np.int64)[order], int(n_cols))

    @classmethod
    def empty(cls, dim: int, n_cols: int) -> QueryMemory:
        return cls(np.zeros((0, dim)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                   int(n_cols))

    def __len__(self) -> int:
        """How many question vectors it holds."""
        return len(self.keys)

    def best(self, questions: np.ndarray) -> np.ndarray:
        """Questions × columns: ``max q·t̂`` over the keys linked to each column, ``-inf``
        where none is."""
        q = np.asarray(questions, dtype=np.float64)
        out = np.full((len(q), self.n_cols), -np.inf)
        if not len(self.col) or not len(q):
            return out
        starts = np.flatnonzero(np.r_[True, self.col[1:] != self.col[:-1]])
        step = max(1, _LINK_BLOCK // len(self.col))
        for lo in range(0, len(q), step):
            dots = q[lo:lo + step] @ self.keys.T
            out[lo:lo + step, self.col[starts]] = np.maximum.reduceat(dots[:, self.key], starts,
                                                                      axis=1)
        return out


def unit_keys(questions: np.ndarray) -> np.ndarray:
    """Questions as the unit vectors a memory holds."""
    q = np.asarray(questions, dtype=np.float64)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def alpha_bounds(alphas) -> tuple[float, float]:
    """The smallest and largest positive α of a set (``(0, 0)`` when memory is off): what
    bounds a memory score ``α·m`` over the set, whatever the sign of ``m``."""
    positive = [float(a) for a in alphas if a > 0]
    return (min(positive), max(positive)) if positive else (0.0, 0.0)


def memory_high(q_mem: np.ndarray, alphas: tuple[float, float]) -> np.ndarray:
    """The highest memory score ``α·q_mem`` over α in ``[alphas[0], alphas[1]]`` (``-inf``
    without memory)."""
    lo, hi = alphas
    if hi <= 0:
        return np.full(np.shape(q_mem), -np.inf)
    return np.where(q_mem >= 0, hi * q_mem, lo * q_mem)
