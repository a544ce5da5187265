"""The NUDGE closed forms, for the moved records only.

``Geometry`` holds, for each record that training questions name, its unit vector ``ê``, the
sum of its questions ``G`` and the derived directions. NUDGE-M and NUDGE-N are then cheap
functions of γ, which is what lets the γ search try many values without touching the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .relevance import Pairs

# records named by fewer questions than this are summed together (see question_sums)
_FEW = 64
# below this relative size the part of G orthogonal to ê is treated as zero (G ∥ ê)
_PARALLEL_TOL = 1e-10


def question_sums(train_q: np.ndarray, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, G)``: the rows named by training questions (sorted) and, for each, the plain sum
    of the question vectors that name it, added in question order.

    Records named by few questions (most) are summed together, one question position at a
    time, so no (pairs × d) copy is ever made; the few named by many are summed one by one."""
    order = np.argsort(pairs.row, kind="stable")
    rows_sorted = pairs.row[order]
    starts = np.flatnonzero(np.r_[True, rows_sorted[1:] != rows_sorted[:-1]])
    lengths = np.diff(np.r_[starts, len(order)])
    questions = pairs.query[order]
    # records by how many questions name them, most first: those still adding a t-th
    # question are then a leading run of rows
    by_length = np.argsort(-lengths, kind="stable")
    first = starts[by_length]
    ranked = np.asarray(train_q[questions[first]], dtype=np.float64)
    # at_least[t]: how many records are named by t or more questions
    at_least = np.cumsum(np.bincount(lengths, minlength=_FEW + 2)[::-1])[::-1]
    n_many = int(at_least[_FEW])
    for t in range(1, min(int(lengths.max(initial=1)), _FEW)):
        end = int(at_least[t + 1])
        ranked[n_many:end] += train_q[questions[first[n_many:end] + t]]
    for i in range(n_many):
        part = np.asarray(train_q[questions[first[i]:first[i] + lengths[by_length[i]]]],
                          dtype=np.float64)
        ranked[i] = np.add.reduce(part, axis=0)
    sums = np.empty_like(ranked)
    sums[by_length] = ranked
    return rows_sorted[starts], sums


@dataclass
class Geometry:
    """Per moved record: ``e_hat`` (unit), ``g_hat`` (unit G, zero where G = 0), ``u`` (unit
    part of G orthogonal to ê), ``cos_phi`` (ê·Ĝ) and which records NUDGE-N leaves alone."""

    e_hat: np.ndarray
    g_hat: np.ndarray
    u: np.ndarray
    cos_phi: np.ndarray
    m_frozen: np.ndarray
    n_frozen: np.ndarray

    @classmethod
    def build(cls, vectors: np.ndarray, sums: np.ndarray, skip_opposed: bool,
              e_hat: np.ndarray | None = None) -> Geometry:
        """``e_hat``: the unit rows of ``vectors`` where the caller has them already (the
        folds of one fit share their records, so they share one copy)."""
        if e_hat is None:
            e_hat, _ = _unit_rows(vectors)
        g_hat, m_frozen = _unit_rows(sums)  # questions that cancel out give no direction
        cos_phi = np.einsum("ij,ij->i", e_hat, g_hat)
        g_perp = g_hat - cos_phi[:, None] * e_hat
        perp_norm = np.linalg.norm(g_perp, axis=1)
        n_frozen = m_frozen | (perp_norm <= _PARALLEL_TOL)
        if skip_opposed:
            n_frozen |= cos_phi < 0
        u = np.where(n_frozen[:, None], 0.0, g_perp / np.where(n_frozen, 1.0, perp_norm)[:, None])
        return cls(e_hat, g_hat, u, cos_phi, m_frozen, n_frozen)

    # -- NUDGE-M: e' = ê + γ Ĝ (not unit norm: score by inner product) ---------------------
    def m_vectors(self, gamma: float) -> np.ndarray:
        return self.e_hat + gamma * self.g_hat

    # -- NUDGE-N: the best point of the cap ||e' - ê||² ≤ γ on the unit sphere ----------------
    def n_saturated(self, gamma: float) -> np.ndarray:
        """Records whose cap already contains Ĝ, so they land on Ĝ."""
        return ~self.n_frozen & (self.cos_phi >= 1.0 - gamma / 2.0)

    def n_vectors(self, gamma: float) -> np.ndarray:
        alpha, beta = n_coefficients(gamma)
        out = alpha * self.e_hat + beta * self.u
        out[self.n_frozen] = self.e_hat[self.n_frozen]
        sat = self.n_saturated(gamma)
        out[sat] = self.g_hat[sat]
        return out


def _unit_rows(x) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length, and which rows are zero (left zero). Each row is divided by
    its largest entry first, so sums of tiny values (their squares would underflow) still come
    out unit-norm."""
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(x), axis=1, keepdims=True) if x.size else np.zeros((len(x), 1))
    zero = peak[:, 0] == 0
    scaled = x / np.where(zero[:, None], 1.0, peak)
    norm = np.linalg.norm(scaled, axis=1, keepdims=True)
    return np.where(zero[:, None], 0.0, scaled / np.where(zero[:, None], 1.0, norm)), zero


def n_coefficients(gamma: float) -> tuple[float, float]:
    """NUDGE-N moves ê along the great circle to ``α ê + β u`` with
    ``α = 1 − γ/2`` and ``β = √(γ(4 − γ))/2`` (so that ``||e' − ê||² = γ``)."""
    gamma = min(max(float(gamma), 0.0), 4.0)
    return 1.0 - gamma / 2.0, np.sqrt(gamma * (4.0 - gamma)) / 2.0
