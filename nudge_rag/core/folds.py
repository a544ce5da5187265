"""K folds of the training questions for cross-validation, near-duplicates kept together.

A question held out beside its own rephrasing in the fitting part would be answered by the
memory of that rephrasing, and the estimate would flatter memory and large steps. Questions
that are the same question therefore share a fold. Callers with texts group them by text
(:func:`nudge_rag.questions.group_fold_labels`) and pass the labels; on arrays alone the
questions whose vectors have cosine ≥ ``NEAR_DUPLICATE_COSINE`` are grouped (as
:func:`nudge_rag.questions.duplicate_groups` does for questions without text).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: cosine above which two question vectors count as the same question
NEAR_DUPLICATE_COSINE = 0.995
# question pairs scored at once when grouping by cosine (about 32 MB)
_PAIR_BLOCK = 4_000_000


def cosine_groups(questions: np.ndarray, threshold: float = NEAR_DUPLICATE_COSINE) -> np.ndarray:
    """Group label per question (``0, 1, ...`` by first member): connected components of
    the pairs with cosine ≥ ``threshold``."""
    q = np.asarray(questions, dtype=np.float64)
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    n = len(unit)
    links_i, links_j = [], []
    step = max(1, _PAIR_BLOCK // max(n, 1))
    for lo in range(0, n, step):
        i, j = np.nonzero(unit[lo:lo + step] @ unit.T >= threshold)
        keep = i + lo < j
        links_i.append(i[keep] + lo)
        links_j.append(j[keep])
    a = np.concatenate(links_i) if links_i else np.zeros(0, dtype=np.int64)
    b = np.concatenate(links_j) if links_j else np.zeros(0, dtype=np.int64)
    label = np.arange(n)
    while len(a):  # each pass joins linked questions under the smaller label
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # follow labels to their own label: halves the passes
        if np.array_equal(new, label):
            break
        label = new
    return np.unique(label, return_inverse=True)[1]


def fold_labels(groups, k: int, seed: int = 0) -> np.ndarray:
    """Fold (``0 .. k-1``) per question from its group label: groups in a seeded random order
    are laid end to end and cut into ``k`` parts of about ``n / k`` questions, each group
    going to the part in which it starts."""
    groups = np.unique(np.asarray(groups), return_inverse=True)[1]
    n, n_groups = len(groups), int(groups.max(initial=-1)) + 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InputError(f"folds={k!r} must be an integer >= 2 (the number of folds)")
    if n_groups < k:
        raise InputError(f"folds={k} needs at least {k} distinct training questions; there are "
                         f"{n_groups}: lower folds, add questions, or use "
                         "selection='validation'")
    order = np.random.default_rng(seed).permutation(n_groups)
    sizes = np.bincount(groups, minlength=n_groups)[order]
    starts = np.cumsum(sizes) - sizes
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order] = np.searchsorted([round(j * n / k) for j in range(1, k)], starts,
                                           side="right")
    fold = fold_of_group[groups]
    if len(np.unique(fold)) < k:
        raise InputError(f"one of {k} folds is empty: a group of near-duplicate questions is "
                         f"larger than n / k = {n / k:.1f}; lower folds or add questions")
    return fold


def fold_labels_at_most(groups, k: int, seed: int = 0) -> np.ndarray | None:
    """:func:`fold_labels` with ``k`` folds, or with as many as the groups allow: a small
    training set (fewer distinct questions than ``k``, or one large group of repeats) gets
    fewer folds rather than an error, down to two; ``None`` where not even two are possible
    (then the validation questions alone choose)."""
    n_groups = len(np.unique(np.asarray(groups)))
    for folds in range(min(int(k), n_groups), 1, -1):
        try:
            return fold_labels(groups, folds, seed)
        except InputError:  # an empty fold: a group larger than n / folds
            continue
    return None
