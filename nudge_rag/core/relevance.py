"""Relevance lists as flat (question, row, grade) pairs.

Users give one entry per question: a list of row indices (grade 1 each) or a dict
``{row: grade}``. Grades > 0 mean relevant; others are dropped. Everything downstream works on
the flat arrays, sorted by question, so no code loops over questions.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Pairs:
    """Relevant (question, row, grade) triples, sorted by question then row."""

    query: np.ndarray  # int64
    row: np.ndarray  # int64
    grade: np.ndarray  # float64
    n_queries: int

    def __len__(self) -> int:
        return len(self.query)

    def counts(self) -> np.ndarray:
        """Relevant records per question."""
        return np.bincount(self.query, minlength=self.n_queries)

    def subset(self, keep: np.ndarray) -> Pairs:
        """The pairs of the questions where ``keep`` (a mask over questions) is true, with
        those questions numbered ``0, 1, ...`` in order."""
        keep = np.asarray(keep, dtype=bool)
        new_number = np.cumsum(keep) - 1
        mine = keep[self.query]
        return Pairs(new_number[self.query[mine]], self.row[mine], self.grade[mine],
                     int(keep.sum()))

    @staticmethod
    def concat(parts: list[Pairs]) -> Pairs:
        """The pairs of several question sets, their questions numbered one set after
        another."""
        offsets = np.cumsum([0, *(p.n_queries for p in parts)])
        return Pairs(np.concatenate([p.query + o for p, o in zip(parts, offsets)]),
                     np.concatenate([p.row for p in parts]),
                     np.concatenate([p.grade for p in parts]), int(offsets[-1]))

    def tied_before(self, *keys: np.ndarray) -> np.ndarray:
        """Per pair, how many pairs of its question have exactly its ``keys`` (scores, say)
        and a lower row. Ranks count ties with other records in the relevant record's favour;
        relevant records that tie among themselves are ranked by row instead, so that each
        holds a rank of its own and no metric exceeds its ideal."""
        if not len(self.query):
            return np.zeros(0)
        # lexsort is stable: within a run of equal (question, keys) rows stay ascending
        order = np.lexsort((*keys[::-1], self.query))
        sorted_keys = [self.query[order], *(np.asarray(k)[order] for k in keys)]
        new_run = np.zeros(len(order), dtype=bool)
        new_run[0] = True
        for key in sorted_keys:
            new_run[1:] |= key[1:] != key[:-1]
        start = np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))
        out = np.empty(len(order))
        out[order] = np.arange(len(order)) - start
        return out


def _entry_items(entry, name: str, qi: int):
    if isinstance(entry, dict):
        return list(entry.keys()), list(entry.values())
    if isinstance(entry, (str, bytes)) or not hasattr(entry, "__iter__"):
        raise InputError(f"{name}[{qi}] must be a list of row indices or a dict "
                         f"{{row: grade}}; got {type(entry).__name__}")
    rows = list(entry)
    return rows, [1.0] * len(rows)


def to_pairs(rel, n_queries: int, n_rows: int, name: str,
             require_each: bool = False) -> Pairs:
    """Flatten ``rel`` into :class:`Pairs`, checking rows and grades."""
    if rel is None or isinstance(rel, (str, bytes, dict)) or not hasattr(rel, "__len__"):
        raise InputError(f"{name} must be a list with one entry per question (a list of row "
                         f"indices or a dict {{row: grade}}); got {type(rel).__name__}")
    if len(rel) != n_queries:
        raise InputError(f"{name} has {len(rel)} entries but there are {n_queries} questions; "
                         "give exactly one relevance entry per question row")
    items = [_entry_items(entry, name, qi) for qi, entry in enumerate(rel)]
    lengths = np.fromiter((len(r) for r, _ in items), dtype=np.int64, count=n_queries)
    total = int(lengths.sum())
    try:
        rows = np.fromiter(chain.from_iterable(r for r, _ in items), dtype=np.float64,
                           count=total)
        grades = np.fromiter(chain.from_iterable(g for _, g in items), dtype=np.float64,
                             count=total)
    except (TypeError, ValueError):
        raise InputError(f"{name} holds a row or grade that is not a number; rows are integer "
                         "indices into the record array and grades are numbers > 0") from None
    query = np.repeat(np.arange(n_queries, dtype=np.int64), lengths)
    if total and (not np.all(np.isfinite(grades))):
        qi = int(query[np.flatnonzero(~np.isfinite(grades))[0]])
        raise InputError(f"{name}[{qi}] has a NaN or infinite grade; use a number > 0")
    if total and np.any(rows != np.round(rows)):
        qi = int(query[np.flatnonzero(rows != np.round(rows))[0]])
        raise InputError(f"{name}[{qi}] has a non-integer row index; rows index the records")
    # bounds are checked on the floats: a row past int64 must not wrap round to a negative one
    bad = (rows < 0) | (rows >= n_rows)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        given = list(chain.from_iterable(r for r, _ in items))[first]
        shown = int(given) if isinstance(given, numbers.Integral) else given
        raise InputError(f"{name}[{int(query[first])}] names row {shown}, outside "
                         f"0..{n_rows - 1}; relevance must index rows of the record array")
    rows_i = rows.astype(np.int64)
    keep = grades > 0
    query, rows_i, grades = query[keep], rows_i[keep], grades[keep]
    # duplicates of one row within a question keep the highest grade
    order = np.lexsort((-grades, rows_i, query))
    query, rows_i, grades = query[order], rows_i[order], grades[order]
    first = np.ones(len(query), dtype=bool)
    first[1:] = (query[1:] != query[:-1]) | (rows_i[1:] != rows_i[:-1])
    pairs = Pairs(query[first], rows_i[first], grades[first], n_queries)
    if require_each:
        missing = np.flatnonzero(pairs.counts() == 0)
        if missing.size:
            raise InputError(f"{name}[{int(missing[0])}] has no relevant record "
                             f"({missing.size} such questions); every validation question needs "
                             "at least one row with grade > 0, so drop those questions")
    return pairs
