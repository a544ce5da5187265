"""The parts of a fit (:class:`.selection.FitParts`) from records held in an array.

Each held-out question set needs its competition: every question's top-K records among those
the training questions do not move, one blocked scan of the corpus per set. The training
questions' own scan serves every fold (see :mod:`.selection`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .checks import as_matrix, check_finite_nonzero, check_same_dim
from .gamma_search import Competition
from .relevance import Pairs, to_pairs
from .selection import FinalFit, FitParts, HeldOut, Training
from .topk import topk_scan


def array_competition(docs: np.ndarray, norms: np.ndarray, val_q: np.ndarray, val_pairs: Pairs,
                      moved_rows: np.ndarray, k: int, device: str = "cpu"):
    """``(Competition, unmoved scores)`` of held-out questions over records held in an
    array: each question's top ``k`` records among those that do not move (one blocked scan
    of the corpus, by cosine), and the cosine of every relevant pair whose record does not
    move (0 for the others)."""
    exclude = np.zeros(len(docs), dtype=bool)
    exclude[moved_rows] = True
    inv_norm = 1.0 / norms
    # unit-norm records (most embedding models) need no rescaling pass over the corpus
    unit = bool(np.all(np.abs(norms - 1.0) < 1e-6))
    scores, comp_rows = topk_scan(docs, val_q, k, row_scale=None if unit else inv_norm,
                                  exclude=exclude, device=device)
    # relevant records that move are scored by the search itself
    unmoved = np.zeros(len(val_pairs))
    still = ~exclude[val_pairs.row]
    if still.any():
        rows = val_pairs.row[still]
        rel_vecs = np.asarray(docs[rows], dtype=np.float64) * inv_norm[rows, None]
        unmoved[still] = np.einsum("ij,ij->i", np.asarray(val_q, dtype=np.float64)[
            val_pairs.query[still]], rel_vecs)
    return Competition(scores, comp_rows), unmoved


def check_validation(docs: np.ndarray, val_q, val_rel, required: bool):
    """``(val_q, val_pairs)`` checked, or ``None`` when none are given (an error where the
    protocol needs them)."""
    if val_q is None or val_rel is None:
        if required:
            raise InputError("val_q and val_rel are needed to choose gamma with "
                             "selection='validation'; pass validation questions, use "
                             "selection='cv' (folds of the training questions choose), or fix "
                             "the step with gamma=...")
        return None
    vq = as_matrix(val_q, "val_q")
    check_same_dim(docs, "doc_emb", vq, "val_q")
    check_finite_nonzero(vq, "val_q")
    return vq, to_pairs(val_rel, len(vq), len(docs), "val_rel", require_each=True)


def check_groups(groups, n: int) -> np.ndarray:
    """One hashable label per training question, as group numbers (by first appearance: no
    array conversion, which would merge ``1`` with ``"1"`` and cannot order ``None``)."""
    flat = groups.tolist() if isinstance(groups, np.ndarray) and groups.ndim == 1 else groups
    codes: dict = {}
    try:
        labels = np.array([codes.setdefault(g, len(codes)) for g in flat], dtype=np.int64)
    except TypeError:  # not iterable, or a label that cannot be hashed (a list, an array)
        labels = None
    if labels is None or len(labels) != n:
        size = getattr(groups, "shape", None) or (len(groups) if hasattr(groups, "__len__")
                                                   else "no length")
        raise InputError(f"groups must hold one hashable label per training question ({n}); "
                         f"got {type(groups).__name__} of shape/length {size}")
    return labels


def array_parts(docs, norms, tq, train_pairs: Pairs, val, folds, depth: int | None,
                refit: bool, device: str) -> FitParts:
    """The fit's parts over records held in the array ``docs`` (see :func:`gather_parts`)."""
    return gather_parts(lambda rows: docs[rows],
                        lambda q, pairs, moved, k: array_competition(docs, norms, q, pairs,
                                                                     moved, k, device),
                        tq, train_pairs, val, folds, depth, refit)


def gather_parts(take, compete, tq, train_pairs: Pairs, val, folds, depth: int | None,
                 refit: bool) -> FitParts:
    """The fit's parts over a corpus read through ``take(rows)`` (the stored vectors of
    sorted rows) and ``compete(questions, pairs, moved_rows, k)`` (``(Competition, unmoved
    scores)``, as :func:`array_competition` gives): the training questions, the validation
    ones ``val`` (``(questions, pairs)`` or ``None``), the training questions' competition
    for ``folds`` (fold labels, or ``None``), competitions ``depth`` deep (``None``: nothing
    is chosen), and with ``refit`` the fit on training and validation questions together."""
    rows = np.unique(train_pairs.row)
    parts = FitParts(Training(rows, take(rows), tq, train_pairs))
    if depth is not None and val is not None:
        vq, val_pairs = val
        parts.validation = HeldOut(vq, val_pairs, *compete(vq, val_pairs, rows, depth))
    if depth is not None and folds is not None:
        parts.training_held = HeldOut(tq, train_pairs, *compete(tq, train_pairs, rows, depth))
        parts.folds = folds
    if refit and val is not None:
        questions = np.concatenate([np.asarray(tq, dtype=np.float64),
                                    np.asarray(val[0], dtype=np.float64)])
        pairs = Pairs.concat([train_pairs, val[1]])
        every = np.unique(pairs.row)
        parts.final = FinalFit.of(Training(every, take(every), questions, pairs))
    return parts
