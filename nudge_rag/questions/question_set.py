"""Question and QuestionSet: training questions with graded relevance to index records.

A question has an id, a text (optional when an embedding is given), relevance
``{record id: grade > 0}`` and metadata (``source`` is one of ``synthetic``, ``logged``,
``human``; ``timestamp`` is optional; anything else is kept). A QuestionSet is immutable: every
operation returns a new set, and nothing handed in is changed (inputs are copied).
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

SOURCES = ("synthetic", "logged", "human")


@dataclass(frozen=True)
class Question:
    """One training question. ``relevant`` maps record ids to grades (> 0)."""

    id: str
    text: str | None
    relevant: dict[str, float]
    embedding: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def source(self) -> str | None:
        return self.metadata.get("source")


def check_grade(value, where: str) -> float:
    """A grade as float, or an InputError that says where the bad grade is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise InputError(f"{where}: grade {value!r} is not a number; use a number > 0 "
                                 "such as 1 or 2") from None
        else:
            raise InputError(f"{where}: grade {value!r} is not a number; use a number > 0 "
                             "such as 1 or 2")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: grade {value!r} must be a finite number > 0; leave "
                         "non-relevant records out instead")
    return value


def record_id(value, where: str) -> str:
    """A record id as a string: ids are strings or integers, never ``None``, lists or
    floats (which ``str`` would silently turn into ids like ``"None"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise InputError(f"{where}: relevant record id {shown} is not an id; give record ids as "
                     "strings (or integers), e.g. [\"doc-3\"] or {\"doc-3\": 2}")


def coerce_relevance(relevant, where: str) -> dict[str, float]:
    """``{id: grade}`` from a dict or a list of ids (each grade 1). Ids become strings."""
    if isinstance(relevant, Mapping):
        out = {}
        for rid, grade in relevant.items():
            out[record_id(rid, where)] = check_grade(grade, f"{where}, record {rid!r}")
    elif isinstance(relevant, (list, tuple, set, frozenset)):
        out = {record_id(rid, where): 1.0 for rid in relevant}
    else:
        raise InputError(f"{where}: 'relevant' must be a dict {{id: grade}} or a list of ids, "
                         f"got {type(relevant).__name__}")
    if not out:
        raise InputError(f"{where}: 'relevant' is empty; every question needs at least one "
                         "relevant record id")
    return out


def _check_question(q: Question, where: str) -> Question:
    if not isinstance(q, Question):
        raise InputError(f"{where}: expected a Question, got {type(q).__name__}; build one "
                         "with Question(id, text, relevant) or use QuestionSet.from_pairs")
    if q.id is None or str(q.id) == "":
        raise InputError(f"{where}: question has no id")
    text = q.text
    if text is not None and not isinstance(text, str):
        raise InputError(f"{where} (id {q.id!r}): text must be a string or None, "
                         f"got {type(text).__name__}")
    if text is not None and not text.strip():
        text = None
    if text is None and q.embedding is None:
        raise InputError(f"{where} (id {q.id!r}): question has neither a text nor an "
                         "embedding; give at least one")
    metadata = copy.deepcopy(dict(q.metadata or {}))
    source = metadata.get("source")
    if source is not None and source not in SOURCES:
        raise InputError(f"{where} (id {q.id!r}): metadata source {source!r} is not one of "
                         f"{', '.join(SOURCES)}")
    relevant = coerce_relevance(q.relevant, f"{where} (id {q.id!r})")
    return Question(str(q.id), text, relevant, None, metadata)


class QuestionSet:
    """An ordered, immutable collection of :class:`Question` with unique ids.

    Embeddings are all-or-none: either every question carries one (same dimension) or none does.
    Pass ``known_ids`` to check that relevance only points at records the index holds.
    """

    def __init__(self, questions: Iterable[Question], known_ids=None):
        items = list(questions)
        if not items:
            raise InputError("questions is empty; a QuestionSet needs at least one question")
        checked = []
        vectors = []
        seen: dict[str, int] = {}
        for i, q in enumerate(items):
            clean = _check_question(q, f"question {i}")
            if clean.id in seen:
                raise InputError(f"question {i}: id {clean.id!r} repeats question "
                                 f"{seen[clean.id]}; ids must be unique")
            seen[clean.id] = i
            checked.append(clean)
            vectors.append(q.embedding)
        self._questions = tuple(checked)
        self._embeddings = _stack_embeddings(vectors)
        if known_ids is not None:
            self.validate(known_ids)

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def _trusted(cls, questions: tuple[Question, ...], embeddings) -> QuestionSet:
        """A set from already-checked parts (used by subset and splits; no copying)."""
        if not questions:
            raise InputError("that selection is empty; a QuestionSet needs at least one question")
        new = cls.__new__(cls)
        new._questions = questions
        new._embeddings = embeddings
        return new

    @classmethod
    def from_pairs(cls, pairs, source: str = "human", known_ids=None) -> QuestionSet:
        """From ``[(text, {id: grade} | [id, ...]), ...]``; ids become ``q0, q1, ...``."""
        questions = []
        for i, pair in enumerate(pairs):
            try:
                text, relevant = pair
            except (TypeError, ValueError):
                raise InputError(f"pairs[{i}]: expected (text, relevant), got {pair!r}") from None
            questions.append(Question(f"q{i}", text, relevant, None, {"source": source}))
        return cls(questions, known_ids=known_ids)

    @classmethod
    def coerce(cls, questions, name: str = "questions") -> QuestionSet:
        """A QuestionSet from what callers hand other parts of nudge-rag: a QuestionSet
        (returned as is), Questions, ``(text, relevant)`` pairs, or a path to a JSONL file."""
        if isinstance(questions, QuestionSet):
            return questions
        if isinstance(questions, (str, os.PathLike)):
            return cls.from_jsonl(questions)
        if isinstance(questions, Mapping) or not isinstance(questions, Iterable):
            raise InputError(f"{name} must be a QuestionSet, a list of Questions or of "
                             f"(text, relevant) pairs, or a JSONL path; got "
                             f"{type(questions).__name__}")
        items = list(questions)
        if items and all(isinstance(q, Question) for q in items):
            return cls(items)
        return cls.from_pairs(items)

    @classmethod
    def from_jsonl(cls, path, known_ids=None, source: str = "human") -> QuestionSet:
        from .io import read_jsonl
        return read_jsonl(path, known_ids=known_ids, source=source)

    def to_jsonl(self, path) -> None:
        from .io import write_jsonl
        write_jsonl(self, path)

    @classmethod
    def from_beir(cls, folder, splits=None, known_ids=None) -> QuestionSet:
        from .io import read_beir
        return read_beir(folder, splits=splits, known_ids=known_ids)

    def to_beir(self, folder, split: str = "train", overwrite: bool = False) -> None:
        from .io import write_beir
        write_beir(self, folder, split=split, overwrite=overwrite)

    @classmethod
    def from_llama_dataset(cls, path_or_dict, known_ids=None,
                           source: str = "synthetic") -> QuestionSet:
        from .io import read_llama_dataset
        return read_llama_dataset(path_or_dict, known_ids=known_ids, source=source)[0]

    def to_llama_dataset(self, path=None, corpus=None) -> dict:
        from .io import write_llama_dataset
        return write_llama_dataset(self, path, corpus=corpus)

    # -- container protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._questions)

    def __iter__(self) -> Iterator[Question]:
        for i in range(len(self._questions)):
            yield self[i]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        q = self._questions[index]
        emb = None if self._embeddings is None else self._embeddings[index]
        # hand out copies of the mutable parts so callers cannot change the set
        return Question(q.id, q.text, dict(q.relevant), emb, copy.deepcopy(q.metadata))

    def __repr__(self) -> str:
        sources = sorted({str(q.metadata.get("source")) for q in self._questions})
        emb = "none" if self._embeddings is None else f"dim {self._embeddings.shape[1]}"
        return f"QuestionSet({len(self)} questions, sources={sources}, embeddings={emb})"

    def __add__(self, other: QuestionSet) -> QuestionSet:
        return QuestionSet(list(self) + list(other))

    # -- columns ---------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [q.id for q in self._questions]

    @property
    def texts(self) -> list[str | None]:
        return [q.text for q in self._questions]

    @property
    def relevance(self) -> list[dict[str, float]]:
        return [dict(q.relevant) for q in self._questions]

    @property
    def metadata(self) -> list[dict]:
        return [copy.deepcopy(q.metadata) for q in self._questions]

    @property
    def embeddings(self) -> np.ndarray | None:
        """``[n, dim]`` read-only array, or ``None`` when no question has an embedding."""
        return self._embeddings

    @property
    def record_ids(self) -> set[str]:
        """Every record id some question points at."""
        return {rid for q in self._questions for rid in q.relevant}

    # -- derived sets ----------------------------------------------------------------------
    def subset(self, indices) -> QuestionSet:
        idx = [int(i) for i in indices]
        emb = None if self._embeddings is None else _read_only(self._embeddings[idx])
        return QuestionSet._trusted(tuple(self._questions[i] for i in idx), emb)

    def with_embeddings(self, embeddings) -> QuestionSet:
        """A new set whose questions carry ``embeddings`` (one row per question, in order)."""
        arr = np.asarray(embeddings)
        if arr.ndim != 2 or arr.shape[0] != len(self):
            raise InputError(f"embeddings has shape {arr.shape}; expected ({len(self)}, dim), "
                             "one row per question in the set's order")
        return QuestionSet._trusted(self._questions, _as_matrix(arr, "embeddings"))

    def validate(self, known_ids) -> None:
        """Raise InputError if any relevance points at an id not in ``known_ids``."""
        known = set(map(str, known_ids))
        for q in self._questions:
            unknown = [rid for rid in q.relevant if rid not in known]
            if unknown:
                shown = ", ".join(repr(u) for u in unknown[:5])
                raise InputError(f"question {q.id!r}: relevant ids {shown} are not among the "
                                 f"{len(known)} known ids; fix the ids or drop those entries")

    def relevance_rows(self, record_ids, unknown: str = "raise") -> list[dict[int, float]]:
        """Relevance as ``{row: grade}`` against ``record_ids`` (the index's row order), the
        form ``NudgeN.fit`` takes. ``unknown="drop"`` skips ids that are not in the index."""
        row_of = {str(r): i for i, r in enumerate(record_ids)}
        if unknown == "raise":
            self.validate(row_of)
        return [{row_of[rid]: g for rid, g in q.relevant.items() if rid in row_of}
                for q in self._questions]

    # -- splitting (see split.py) -------------------------------------------------------------
    def split(self, train: float = 0.7, val: float = 0.1, test: float = 0.2, seed: int = 0,
              threshold: float | None = None):
        from .split import group_split
        return group_split(self, train=train, val=val, test=test, seed=seed, threshold=threshold)

    def split_by_time(self, val_start=None, test_start=None, train: float = 0.7,
                      val: float = 0.1, test: float = 0.2, allow_leakage: bool = False,
                      drop_leaked: bool = False, threshold: float | None = None):
        from .split import time_split
        return time_split(self, val_start=val_start, test_start=test_start, train=train,
                          val=val, test=test, allow_leakage=allow_leakage,
                          drop_leaked=drop_leaked, threshold=threshold)

    def check_leakage(self, *others: QuestionSet, threshold: float | None = None):
        from .split import check_leakage
        return check_leakage(self, *others, threshold=threshold)


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _as_matrix(arr: np.ndarray, name: str) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
    out = np.array(arr, dtype=dtype, copy=True)
    if not np.isfinite(out).all():
        bad = int(np.nonzero(~np.isfinite(out).all(axis=1))[0][0])
        raise InputError(f"{name}: row {bad} holds NaN or inf; re-encode that question")
    return _read_only(out)


def _stack_embeddings(vectors: list) -> np.ndarray | None:
    have = [v is not None for v in vectors]
    if not any(have):
        return None
    if not all(have):
        missing = have.index(False)
        raise InputError(f"question {missing} has no embedding while others do; embeddings "
                         "are all-or-none (drop them all, or embed every question)")
    dims = {np.asarray(v).shape for v in vectors}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        first = np.asarray(vectors[0]).shape
        odd = next(i for i, v in enumerate(vectors) if np.asarray(v).shape != first)
        raise InputError(f"question {odd}: embedding shape {np.asarray(vectors[odd]).shape} "
                         f"differs from question 0's {first}; every embedding needs one "
                         "1-D shape")
    return _as_matrix(np.stack([np.asarray(v) for v in vectors]), "embeddings")
