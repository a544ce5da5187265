"""Scores of moved records at any γ, from three products computed once.

A moved record's new vector is a fixed combination of its unit vector ``ê``, its question
direction ``Ĝ`` and (NUDGE-N) the unit part ``u`` of ``G`` orthogonal to ``ê``. Its score for
a validation question is therefore the same combination of three dot products: the question
with ``ê``, with ``Ĝ`` and with ``u``. They are computed once; trying a γ then costs a few
multiply-adds per (question, record), never a pass over vectors.

:func:`scores_at` is the one formula, used on dense blocks and on gathered entries alike, so
that every evaluation path compares bit-identical scores. With a query memory
(:mod:`.memory`) a fourth array ``q_mem`` holds each question's best inner product with the
training questions that named the record, and a record scores ``max(nudged, α·q_mem)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .closed_form import Geometry, n_coefficients
from .memory import QueryMemory
from .method import Method


@dataclass
class Products:
    """Dot products of questions with moved records' directions, any matching shapes:
    ``q_e`` = question·ê, ``q_g`` = question·Ĝ, ``q_u`` = question·u (NUDGE-N only, else
    ``None``), ``q_mem`` = the question's best inner product with the record's memory keys
    (``-inf`` where it has none; ``None`` without memory)."""

    q_e: np.ndarray
    q_g: np.ndarray
    q_u: np.ndarray | None = None
    q_mem: np.ndarray | None = None

    @classmethod
    def compute(cls, questions: np.ndarray, geometry: Geometry, method: Method,
                memory: QueryMemory | None = None) -> Products:
        """Questions × moved records, in float64 (one matrix product)."""
        q = np.asarray(questions, dtype=np.float64)
        parts = [geometry.e_hat, geometry.g_hat]
        if method is Method.N:
            parts.append(geometry.u)
        m = len(geometry.e_hat)
        both = q @ np.concatenate(parts).T
        return cls(both[:, :m], both[:, m:2 * m], both[:, 2 * m:] if method is Method.N else None,
                   None if memory is None else memory.best(q))

    def take(self, rows, cols) -> Products:
        """The entries at ``(rows, cols)`` (index arrays or slices), as a new :class:`Products`."""
        return Products(*(None if a is None else a[rows, cols]
                          for a in (self.q_e, self.q_g, self.q_u, self.q_mem)))


def scores_at(gamma: float, method: Method, geometry: Geometry, p: Products,
              cols=None, alpha: float = 0.0) -> np.ndarray:
    """Scores of moved records at γ from their products ``p``, with the memory at weight
    ``alpha`` (0: none). ``cols`` names each entry's record (a flat gather); without it the
    last axis of ``p`` runs over all moved records. Always a fresh array: callers may change
    it."""
    s = _nudged_at(gamma, method, geometry, p, cols)
    if alpha > 0 and p.q_mem is not None:
        np.maximum(s, alpha * p.q_mem, out=s)
    return s


def _nudged_at(gamma: float, method: Method, geometry: Geometry, p: Products,
               cols=None) -> np.ndarray:
    if method == Method.M:
        return p.q_e + gamma * p.q_g
    along, across = n_coefficients(gamma)  # of ê and of u
    s = along * p.q_e
    s += across * p.q_u
    saturated, frozen = geometry.n_saturated(gamma), geometry.n_frozen
    if cols is not None:
        # records whose cap already holds Ĝ land on it; frozen ones stay where they are
        return np.where(frozen[cols], p.q_e, np.where(saturated[cols], p.q_g, s))
    if saturated.any():  # the same choice, made per column of a dense block
        np.copyto(s, p.q_g, where=saturated)
    if frozen.any():
        np.copyto(s, p.q_e, where=frozen)
    return s


class ScoresAtGamma:
    """:func:`scores_at` for fixed entries (``p`` at ``cols``) tried at one γ with many α:
    the nudged scores are computed once per (γ, method) and the memory applied per α. Gives
    the same values as :func:`scores_at`, bit for bit, as a fresh array each call."""

    def __init__(self, p: Products, cols=None):
        self.p = p
        self.cols = cols
        self._key: tuple | None = None
        self._nudged: np.ndarray | None = None

    def __call__(self, gamma: float, method: Method, geometry: Geometry,
                 alpha: float = 0.0) -> np.ndarray:
        key = (float(gamma), method, id(geometry))
        if key != self._key:
            self._nudged = _nudged_at(gamma, method, geometry, self.p, self.cols)
            self._key = key
        s = self._nudged.copy()
        if alpha > 0 and self.p.q_mem is not None:
            np.maximum(s, alpha * self.p.q_mem, out=s)
        return s
