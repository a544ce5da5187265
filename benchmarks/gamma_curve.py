"""Validation NDCG@10 as a function of γ, from NUDGE's closed forms (written for the plots).

Only records named by a training question move, so each γ only re-scores those columns.
- NUDGE-M: ``e' = ê + γ Ĝ`` (not unit-norm; scored by inner product).
- NUDGE-N: ``e' = Ĝ`` when ``ê·Ĝ ≥ 1 − γ/2``, else ``(1 − γ/2) ê + sqrt(γ(4 − γ))/2 · u`` with
  ``u`` the unit part of ``G`` orthogonal to ``ê`` (γ bounds the squared move, as in the
  reference). Records whose ``G`` is parallel to ``ê`` never move; ``skip_opposed`` also
  leaves records with ``G·ê < 0`` alone, as nudge-ft does.
"""

from __future__ import annotations

import numpy as np

from .evaluate import METRICS, Relevance, metrics_from_ranking


def summed_questions(train_q: np.ndarray, train_rel: list) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, G)``: the records some training question names, and per record the plain sum
    of those questions (grades are ignored, as in the paper)."""
    q_idx = np.asarray([i for i, labels in enumerate(train_rel) for _ in labels], dtype=np.int64)
    rows = np.asarray([int(r) for labels in train_rel for r in labels], dtype=np.int64)
    moved, inverse = np.unique(rows, return_inverse=True)
    g = np.zeros((len(moved), train_q.shape[1]), dtype=np.float64)
    np.add.at(g, inverse, train_q[q_idx].astype(np.float64))
    return moved, g


def nudge_m_rows(unit_rows: np.ndarray, g: np.ndarray, gamma: float) -> np.ndarray:
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    direction = np.divide(g, norms, out=np.zeros_like(g), where=norms > 0)
    return unit_rows + gamma * direction


def nudge_n_rows(unit_rows: np.ndarray, g: np.ndarray, gamma: float,
                 skip_opposed: bool = False) -> np.ndarray:
    along = (g * unit_rows).sum(axis=1)                       # v = G·ê
    ortho = g - along[:, None] * unit_rows
    ortho_norm = np.linalg.norm(ortho, axis=1)
    g_norm = np.linalg.norm(g, axis=1)
    movable = (ortho_norm > 1e-12 * np.maximum(g_norm, 1e-30)) & (g_norm > 0)
    if skip_opposed:
        movable &= along >= 0
    g_unit = np.divide(g, g_norm[:, None], out=np.zeros_like(g), where=g_norm[:, None] > 0)
    u = np.divide(ortho, ortho_norm[:, None], out=np.zeros_like(g),
                  where=ortho_norm[:, None] > 0)
    on_cap = (1 - gamma / 2) * unit_rows + (np.sqrt(gamma * (4 - gamma)) / 2) * u
    reaches_g = (g_unit * unit_rows).sum(axis=1) >= 1 - gamma / 2
    moved = np.where(reaches_g[:, None], g_unit, on_cap)
    return np.where(movable[:, None], moved, unit_rows)


def validation_curve(doc_emb, train_q, train_rel, val_q, val_rel, gammas, variant: str,
                     metric: str = "ndcg@10", skip_opposed: bool = False) -> np.ndarray:
    """Validation ``metric`` at each γ of ``gammas`` for ``variant`` "M" or "N"."""
    unit = doc_emb / np.linalg.norm(doc_emb, axis=1, keepdims=True)
    rows, g = summed_questions(train_q, train_rel)
    base_scores = val_q @ unit.T
    relevance = Relevance(val_rel, unit.shape[0])
    kind, k = METRICS[metric]
    values = []
    for gamma in gammas:
        if variant == "M":
            new_rows = nudge_m_rows(unit[rows], g, gamma)
        else:
            new_rows = nudge_n_rows(unit[rows], g, gamma, skip_opposed)
        scores = base_scores.copy()
        scores[:, rows] = val_q @ new_rows.T
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        values.append(metrics_from_ranking(ranked, relevance, {metric: (kind, k)})[metric].mean())
    return np.asarray(values)
