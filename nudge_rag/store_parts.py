"""The parts of a fit (:class:`.core.selection.FitParts`) from records held in a vector store.

The array path (:mod:`.core.array_parts`) scans an array; here every held-out question set
takes its competition from the store's own search (:meth:`.stores.base.StoreAdapter.
competition`), and only the records that the questions name are read. One numbering serves
every part: the named records first, in id order (so ties between them fall as they would in
an array holding the records in id order), then any other record a competition returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .core.closed_form import question_sums
from .core.gamma_search import Competition
from .core.memory import QueryMemory
from .core.relevance import Pairs, to_pairs
from .core.selection import FinalFit, FitParts, HeldOut, Training
from .errors import StoreError


def relevance_pairs(relevance: list[dict[str, float]], row: dict[str, int]) -> Pairs:
    """Relevant (question, record) pairs of ``relevance`` in the numbering ``row``."""
    rel_rows = [{row[i]: g for i, g in rel.items()} for rel in relevance]
    return to_pairs(rel_rows, len(rel_rows), max(len(row), 1), "relevance")


def held_out(adapter, q: np.ndarray, relevance, row: dict[str, int], moved_ids,
             k: int) -> HeldOut:
    """Questions ``q`` with their ``relevance`` as a held-out set against a fit that moves
    ``moved_ids``: each question's top ``k`` unmoved records from the store's search, and the
    score of each relevant record that does not move. ``row`` is the numbering of the named
    records; records it lacks are numbered after them (it is extended in place, so that
    every set of one fit shares it)."""
    comp_ids, comp_scores = adapter.competition(q, k, moved_ids)
    for ids in [*(list(rel) for rel in relevance), *comp_ids]:
        for i in ids:
            row.setdefault(i, len(row))
    comp_rows = np.full(comp_scores.shape, -1, dtype=np.int64)
    for qi, ids in enumerate(comp_ids):
        comp_rows[qi, :len(ids)] = [row[i] for i in ids]
    pairs = relevance_pairs(relevance, row)
    # a relevant record that does not move and is not among its question's top-k unmoved
    # records ranks below k whatever γ is: -inf says exactly that (a moved one is scored
    # by the search itself, and the competition never holds it)
    unmoved = np.full(len(pairs), -np.inf)
    match = comp_rows[pairs.query] == pairs.row[:, None]
    found = match.any(axis=1)
    unmoved[found] = comp_scores[pairs.query[found], match[found].argmax(axis=1)]
    return HeldOut(q, pairs, Competition(comp_scores, comp_rows), unmoved)


@dataclass
class StoreFit:
    """What a fit through a store gathered: the named record ids (in the numbering's order),
    their stored vectors, how many training questions name each, and the :class:`FitParts`."""

    ids: list[str]
    original: np.ndarray
    counts: np.ndarray
    parts: FitParts
    row: dict[str, int] = field(default_factory=dict)


def read_named(adapter, ids: list[str]) -> np.ndarray:
    """The stored vectors of ``ids``, refusing a store that lost some of them meanwhile."""
    found, original = adapter.fetch(ids)
    if found != ids:
        raise StoreError("the store changed while fitting: some records vanished")
    return np.asarray(original)


def store_parts(adapter, train, train_q: np.ndarray, val, val_q, *, depth: int | None,
                folds: np.ndarray | None, refit: bool) -> StoreFit:
    """The fit's parts over the store: the training questions (``train``, a QuestionSet,
    embedded as ``train_q``), the validation ones (``val``/``val_q`` or ``None``), the
    training questions' own competition when ``folds`` (fold labels) are given,
    competitions ``depth`` deep (``None``: nothing is chosen), and with ``refit`` the final
    fit on training and validation questions together."""
    train_ids = sorted(train.record_ids)
    both = refit and val is not None
    ids = sorted(train.record_ids | val.record_ids) if both else train_ids
    row = {i: r for r, i in enumerate(ids)}
    original = read_named(adapter, ids)
    train_pairs = relevance_pairs(train.relevance, row)
    rows = np.array([row[i] for i in train_ids], dtype=np.int64)
    parts = FitParts(Training(rows, original[rows], train_q, train_pairs))
    if depth is not None and val is not None:
        parts.validation = held_out(adapter, val_q, val.relevance, row, train_ids, depth)
    if depth is not None and folds is not None:
        parts.training_held = held_out(adapter, train_q, train.relevance, row, train_ids,
                                       depth)
        parts.folds = folds
    counts = np.bincount(train_pairs.row, minlength=len(ids))
    if both:
        val_pairs = relevance_pairs(val.relevance, row)
        pairs = Pairs.concat([train_pairs, val_pairs])
        questions = np.concatenate([train_q, val_q])
        parts.final = FinalFit.of(Training(np.arange(len(ids)), original, questions, pairs))
        counts = counts + np.bincount(val_pairs.row, minlength=len(ids))
    return StoreFit(ids, original, counts[:len(ids)], parts, row)


@dataclass
class Summed(Training):
    """Training known by its question sums (and memory) alone, as an update reads them from a
    delta: the questions themselves are not kept, so nothing can be held out of them."""

    given_sums: np.ndarray | None = None
    given_memory: QueryMemory | None = None

    def sums(self, keep: np.ndarray | None = None) -> np.ndarray:
        return self.given_sums

    def memory(self, keep: np.ndarray | None = None) -> QueryMemory:
        if self.given_memory is None:
            return QueryMemory.empty(self.given_sums.shape[1], len(self.rows))
        return self.given_memory


def summed_parts(original: np.ndarray, sums: np.ndarray, memory: QueryMemory | None,
                 dim: int) -> FitParts:
    """Parts for a fit on question sums (an update): every record of ``original`` named."""
    rows = np.arange(len(original))
    empty = Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0)
    training = Summed(rows, original, np.zeros((0, dim)), empty, sums, memory)
    return FitParts(training, final=FinalFit(rows, original, sums, training.memory()))


def add_questions(sums: np.ndarray, counts: np.ndarray, q: np.ndarray, pairs: Pairs):
    """``sums`` and ``counts`` with questions ``q`` (relevance ``pairs``) added."""
    rows, new = question_sums(q, pairs)
    sums = sums.copy()
    sums[rows] += new
    return sums, counts + np.bincount(pairs.row, minlength=len(counts))
