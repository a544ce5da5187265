"""Splitting question sets without leakage.

``group_split`` cuts a set at random but keeps every group of duplicate or near-duplicate
questions (see :mod:`normalize`) on one side, so a test question is never a rephrasing of a
training one; ``group_folds`` cuts it the same way into K folds for cross-validation.
``time_split`` cuts by timestamp, as logs need; it cannot keep groups together (time decides),
so it checks for leakage afterwards and refuses unless told otherwise.

Every function here takes a question set and returns subsets of it (``qs.subset``); this
module sits below ``question_set`` and never imports it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from ..errors import InputError
from .normalize import NEAR_DUPLICATE_JACCARD, duplicate_groups, normalize_text


def _check_fractions(train: float, val: float, test: float) -> None:
    for name, value in (("train", train), ("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value < 0:
            raise InputError(f"{name}={value!r} must be a fraction between 0 and 1")
    if abs(train + val + test - 1.0) > 1e-6:
        raise InputError(f"train + val + test = {train + val + test:g}; the fractions must sum "
                         "to 1")
    if train <= 0:
        raise InputError("train=0 leaves nothing to train on; give train a fraction > 0")
    if val <= 0:
        raise InputError("val=0 leaves validation empty; NUDGE picks its step size on "
                         "validation questions, so give val a fraction > 0")


def check_seed(seed) -> None:
    """numpy takes whole numbers ≥ 0 (or ``None``, for fresh entropy) as seeds."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise InputError(f"seed={seed!r} must be a whole number ≥ 0")


def _group_order(qs, threshold, seed) -> tuple[np.ndarray, np.ndarray]:
    """``(group label per question, groups in seeded random order)``.

    Groups are put in the order of their smallest question id before the seeded permutation,
    so the order does not depend on the order the questions came in."""
    check_seed(seed)
    threshold = NEAR_DUPLICATE_JACCARD if threshold is None else threshold
    labels = duplicate_groups(qs.texts, qs.embeddings, threshold=threshold)
    n_groups = int(labels.max()) + 1
    group_key: list[str | None] = [None] * n_groups
    for qid, g in zip(qs.ids, labels.tolist(), strict=True):
        if group_key[g] is None or qid < group_key[g]:
            group_key[g] = qid
    canonical = np.argsort(np.array(group_key, dtype=object), kind="stable")
    return labels, canonical[np.random.default_rng(seed).permutation(n_groups)]


def _cut(labels: np.ndarray, order: np.ndarray, bounds) -> np.ndarray:
    """Part number per question: groups laid end to end in ``order``, each going to the part
    in which it starts (``bounds`` are the question counts where parts 1, 2, ... begin)."""
    sizes = np.bincount(labels)[order]
    starts = np.cumsum(sizes) - sizes
    part_of_group = np.empty(len(order), dtype=np.int64)
    part_of_group[order] = np.searchsorted(bounds, starts, side="right")
    return part_of_group[labels]


def group_split(qs, train=0.7, val=0.1, test=0.2, seed=0, threshold=None):
    """Reproducible random split that keeps duplicate groups together.

    Groups are ordered by their smallest question id before the seeded permutation, so the
    result does not depend on the order the questions came in. A group goes to the part in
    which it starts, which keeps the part sizes within one group of ``fraction * n``.
    Returns ``(train, val, test)``; ``test`` is ``None`` when ``test=0``.
    """
    _check_fractions(train, val, test)
    labels, order = _group_order(qs, threshold, seed)
    n = len(qs)
    n_train, n_val = round(train * n), round(val * n)
    part = _cut(labels, order, [n_train, n_train + n_val])
    return _assemble(qs, part, test > 0, f"{n} questions in {len(order)} duplicate groups")


def group_fold_labels(qs, k: int = 5, seed: int = 0, threshold=None) -> np.ndarray:
    """Fold number (``0 .. k-1``) per question, for K-fold cross-validation: duplicate and
    near-duplicate questions share a fold, folds hold about ``n / k`` questions each, and the
    result depends only on the set's contents and ``seed``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InputError(f"k={k!r} must be an integer >= 2 (the number of folds)")
    labels, order = _group_order(qs, threshold, seed)
    if len(order) < k:
        raise InputError(f"k={k} folds need at least {k} groups of distinct questions; the "
                         f"{len(qs)} questions form {len(order)}: lower k or add questions")
    n = len(qs)
    fold = _cut(labels, order, [round(j * n / k) for j in range(1, k)])
    empty = sorted(set(range(k)) - set(fold.tolist()))
    if empty:
        raise InputError(f"fold {empty[0]} of {k} is empty: a group of near-duplicate questions "
                         f"is larger than n / k = {n / k:.1f}; lower k or add questions")
    return fold


def group_folds(qs, k: int = 5, seed: int = 0, threshold=None):
    """``[(train, held_out), ...]``, one pair per fold (see :func:`group_fold_labels`): each
    question is held out exactly once, and never beside a near-duplicate in its train part."""
    fold = group_fold_labels(qs, k, seed, threshold)
    return [(qs.subset(np.flatnonzero(fold != j)), qs.subset(np.flatnonzero(fold == j)))
            for j in range(k)]


def _assemble(qs, part: np.ndarray, want_test: bool, what: str):
    names = ("train", "validation", "test")
    out = []
    for k, name in enumerate(names):
        members = np.nonzero(part == k)[0]
        if len(members) == 0:
            if k == 2 and not want_test:
                out.append(None)
                continue
            raise InputError(f"the split leaves {name} empty ({what}); add questions or give "
                             f"{name} a larger share")
        out.append(qs.subset(members))
    return tuple(out)


# -- time ------------------------------------------------------------------------------------
def to_epoch(value, where: str) -> float:
    """Seconds since the epoch from a datetime, an ISO 8601 string or a number of seconds.
    Naive datetimes are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{where}: timestamp {value!r} is not finite")
        return float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise InputError(f"{where}: timestamp {value!r} is neither ISO 8601 "
                             "(2024-05-01T12:00:00Z) nor seconds since the epoch") from None
    else:
        raise InputError(f"{where}: timestamp {value!r} is missing or not a time; give an ISO "
                         "8601 string, a datetime or seconds since the epoch")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _time_parts(times: np.ndarray, ids: list[str], val_start, test_start, fractions):
    """``(part per question, whether a test part was asked for)`` from the timestamps."""
    if val_start is None and test_start is None:
        train, val, test = fractions
        _check_fractions(train, val, test)
        order = sorted(range(len(ids)), key=lambda i: (times[i], ids[i]))
        n = len(ids)
        n_train, n_val = round(train * n), round(val * n)
        part = np.empty(n, dtype=np.int64)
        part[order] = np.searchsorted([n_train, n_train + n_val], np.arange(n), side="right")
        return part, test > 0
    if val_start is None:
        raise InputError("test_start without val_start leaves validation empty; give "
                         "val_start too")
    v = to_epoch(val_start, "val_start")
    t = math.inf if test_start is None else to_epoch(test_start, "test_start")
    if t < v:
        raise InputError(f"test_start={test_start!r} is before val_start={val_start!r}")
    return np.where(times < v, 0, np.where(times < t, 1, 2)), test_start is not None


def _without_leaks(parts: list, report: LeakageReport) -> list:
    """``parts`` with the validation and test questions that leak removed."""
    for k in (1, 2):
        if parts[k] is None:
            continue
        leaked = report.leaked_ids(k - 1)
        keep = [i for i, qid in enumerate(parts[k].ids) if qid not in leaked]
        if not keep:
            raise InputError(f"dropping leaked questions leaves "
                             f"{('validation', 'test')[k - 1]} empty")
        parts[k] = parts[k].subset(keep)
    return parts


def time_split(qs, val_start=None, test_start=None, train=0.7, val=0.1, test=0.2,
               allow_leakage=False, drop_leaked=False, threshold=None):
    """Split by ``metadata["timestamp"]``.

    With ``val_start`` (and optionally ``test_start``): train is everything before
    ``val_start``, validation is ``[val_start, test_start)``, test is from ``test_start`` on
    (``None`` without ``test_start``). Without boundaries the fractions cut the questions in
    time order (ties broken by id). Validation or test questions that duplicate a training
    question make it raise, unless ``drop_leaked=True`` (they are removed) or
    ``allow_leakage=True`` (they are kept).
    """
    times = np.array([to_epoch(q.metadata.get("timestamp"), f"question {q.id!r} metadata "
                               "field 'timestamp'") for q in qs])
    part, want_test = _time_parts(times, qs.ids, val_start, test_start, (train, val, test))
    parts = list(_assemble(qs, part, want_test, f"{len(qs)} questions by time"))
    report = check_leakage(parts[0], *[p for p in parts[1:] if p is not None],
                           threshold=threshold)
    if report and not allow_leakage:
        if not drop_leaked:
            raise InputError(f"{report.summary()}; pass drop_leaked=True to remove them from "
                             "validation/test, or allow_leakage=True to keep them")
        parts = _without_leaks(parts, report)
    return tuple(parts)


# -- leakage -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leak:
    """Question ``question_id`` of ``others[set_index]`` duplicates training question
    ``train_id``. ``kind`` is ``exact`` (same normalised text), ``near`` or ``embedding``."""

    set_index: int
    question_id: str
    train_id: str
    kind: str


@dataclass
class LeakageReport:
    leaks: list[Leak] = field(default_factory=list)
    sizes: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.leaks)

    def __len__(self) -> int:
        return len(self.leaks)

    def leaked_ids(self, set_index: int) -> set[str]:
        return {leak.question_id for leak in self.leaks if leak.set_index == set_index}

    def summary(self) -> str:
        if not self.leaks:
            return "no leakage: no held-out question duplicates a training question"
        parts = []
        for k, size in enumerate(self.sizes):
            bad = self.leaked_ids(k)
            if bad:
                example = next(x for x in self.leaks if x.set_index == k)
                parts.append(f"{len(bad)} of {size} questions in set {k} duplicate training "
                             f"questions (e.g. {example.question_id!r} ~ {example.train_id!r}, "
                             f"{example.kind})")
        return "leakage: " + "; ".join(parts)

    def raise_if_any(self) -> None:
        if self.leaks:
            raise InputError(self.summary())


def check_leakage(train, *others, threshold=None) -> LeakageReport:
    """Report questions of ``others`` (validation, test, ...) that are the same question as
    a training question: equal or near-equal normalised text, or, for text-less questions,
    near-equal embeddings."""
    threshold = NEAR_DUPLICATE_JACCARD if threshold is None else threshold
    sets = [train, *others]
    texts = [t for s in sets for t in s.texts]
    embs = [s.embeddings for s in sets]
    same_dim = all(e is not None for e in embs) and len({e.shape[1] for e in embs}) == 1
    emb = np.concatenate(embs) if same_dim else None
    labels = duplicate_groups(texts, emb, threshold=threshold)
    n_train = len(train)
    first_train_of_group: dict[int, int] = {}
    for i in range(n_train):
        first_train_of_group.setdefault(int(labels[i]), i)
    leaks = []
    offset = n_train
    for k, other in enumerate(others):
        for j, qid in enumerate(other.ids):
            t = first_train_of_group.get(int(labels[offset + j]))
            if t is None:
                continue
            a, b = texts[offset + j], texts[t]
            if a is None or b is None:
                kind = "embedding"
            else:
                kind = "exact" if normalize_text(a) == normalize_text(b) else "near"
            leaks.append(Leak(k, qid, train.ids[t], kind))
        offset += len(other)
    return LeakageReport(leaks, tuple(len(o) for o in others))
