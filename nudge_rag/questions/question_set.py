"""QuestionSet: the one question type of nudge-rag, from readers to the finetuner.

A question has an id, a text (optional when an embedding is given), relevance
``{record id: grade > 0}`` and metadata (``source`` is one of ``synthetic``, ``logged``,
``human``; ``timestamp`` is optional; anything else is kept). A QuestionSet is immutable: every
operation returns a new set, and nothing handed in is changed (inputs are copied).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from ..errors import InputError
from .io import (
    beir_questions,
    jsonl_questions,
    llama_dataset_questions,
    question_from_row,
    write_beir,
    write_jsonl,
    write_llama_dataset,
)
from .question import Question, check_known_ids, check_question
from .split import check_leakage, group_split, time_split

__all__ = ["Question", "QuestionSet", "read_beir", "read_jsonl", "read_llama_dataset"]


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
        seen: dict[str, int] = {}
        for i, q in enumerate(items):
            clean = check_question(q, f"question {i}")
            if clean.id in seen:
                raise InputError(f"question {i}: id {clean.id!r} repeats question "
                                 f"{seen[clean.id]}; ids must be unique")
            seen[clean.id] = i
            checked.append(clean)
        self._questions = tuple(checked)
        self._embeddings = _stack_embeddings([q.embedding for q in items])
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
        """The one way into a QuestionSet from what callers hand nudge-rag.

        Accepted: a QuestionSet (returned as is); a path to a JSONL file; a list of Questions;
        a list of ``(question, relevant)`` pairs, where the question is a text or an
        embedding (1-D) and ``relevant`` is ``{id: grade}`` or a list of ids; a list of dict
        rows as JSONL holds them (``question``/``text``/``embedding``, ``relevant``, optional
        ``id`` and ``metadata``). Pairs and rows without an id get ``q0, q1, ...``. Grades
        must be > 0 and every question needs a relevant record: a grade of 0 is refused, not
        dropped. Pre-embedded ``(numpy vector, dict)`` pairs take a fast path.
        """
        if isinstance(questions, QuestionSet):
            return questions
        if isinstance(questions, (str, os.PathLike)):
            return cls.from_jsonl(questions)
        if isinstance(questions, Mapping) or not isinstance(questions, Iterable):
            raise InputError(f"{name} must be a QuestionSet, a list of Questions or of "
                             f"(text, relevant) pairs, or a JSONL path; got "
                             f"{type(questions).__name__}")
        items = list(questions)
        if not items:
            raise InputError(f"{name} is empty; give at least one question with a relevant "
                             "record")
        fast = _from_embedded_pairs(items)
        if fast is not None:
            return fast
        return cls(_as_question(item, i, name) for i, item in enumerate(items))

    @classmethod
    def from_jsonl(cls, path, known_ids=None, source: str = "human") -> QuestionSet:
        """Read a JSONL file (one question per line); errors name ``path:line`` and the
        field. ``known_ids`` refuses relevance that points elsewhere."""
        return cls(jsonl_questions(path, known_ids=known_ids, source=source))

    def to_jsonl(self, path, overwrite: bool = False) -> None:
        """Write one question per line. An existing questions file is replaced only with
        ``overwrite=True``; any other file or folder at ``path`` is refused."""
        write_jsonl(self, path, overwrite=overwrite)

    @classmethod
    def from_beir(cls, folder, splits=None, known_ids=None) -> QuestionSet:
        """The queries of a BEIR folder with a positive judgement in ``qrels/<split>.tsv``
        (all splits pooled by default)."""
        return cls(beir_questions(folder, splits=splits, known_ids=known_ids))

    def to_beir(self, folder, split: str = "train", overwrite: bool = False) -> None:
        write_beir(self, folder, split=split, overwrite=overwrite)

    @classmethod
    def from_llama_dataset(cls, path_or_dict, known_ids=None,
                           source: str = "synthetic") -> QuestionSet:
        """The questions of an ``EmbeddingQAFinetuneDataset`` JSON file or dict."""
        return cls(llama_dataset_questions(path_or_dict, known_ids=known_ids,
                                           source=source)[0])

    def to_llama_dataset(self, path=None, corpus=None, overwrite: bool = False) -> dict:
        return write_llama_dataset(self, path, corpus=corpus, overwrite=overwrite)

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

    def validate(self, known_ids, name: str = "questions", holder: str | None = None) -> None:
        """Raise :class:`~nudge_rag.errors.MismatchError` (an ``InputError``) if relevance
        points at a record id that is not known. ``known_ids`` is a collection of ids, or a
        callable that returns which of the ids it is given exist (a store lookup);
        ``holder`` names what holds them, for the message. This is the one id check that
        readers, the finetuner and the CLI all use."""
        check_known_ids((q.relevant for q in self._questions), known_ids, name, holder)

    def relevance_rows(self, record_ids, unknown: str = "raise") -> list[dict[int, float]]:
        """Relevance as ``{row: grade}`` against ``record_ids`` (the index's row order), the
        form ``NudgeN.fit`` takes. ``unknown="drop"`` skips ids that are not in the index."""
        row_of = {str(r): i for i, r in enumerate(record_ids)}
        if unknown == "raise":
            self.validate(row_of, "relevance_rows")
        return [{row_of[rid]: g for rid, g in q.relevant.items() if rid in row_of}
                for q in self._questions]

    # -- splitting (see split.py) -------------------------------------------------------------
    def split(self, train: float = 0.7, val: float = 0.1, test: float = 0.2, seed: int = 0,
              threshold: float | None = None):
        """``(train, val, test)`` at random, near-duplicate questions kept on one side
        (``test`` is ``None`` when ``test=0``); see :func:`split.group_split`."""
        return group_split(self, train=train, val=val, test=test, seed=seed,
                           threshold=threshold)

    def split_by_time(self, val_start=None, test_start=None, train: float = 0.7,
                      val: float = 0.1, test: float = 0.2, allow_leakage: bool = False,
                      drop_leaked: bool = False, threshold: float | None = None):
        return time_split(self, val_start=val_start, test_start=test_start, train=train,
                          val=val, test=test, allow_leakage=allow_leakage,
                          drop_leaked=drop_leaked, threshold=threshold)

    def check_leakage(self, *others: QuestionSet, threshold: float | None = None):
        return check_leakage(self, *others, threshold=threshold)


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _as_matrix(arr: np.ndarray, name: str, copy: bool = True) -> np.ndarray:
    """A read-only float matrix; ``copy=False`` when ``arr`` is already a private copy."""
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
    out = np.array(arr, dtype=dtype, copy=True) if copy else np.asarray(arr, dtype=dtype)
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


# -- coercion --------------------------------------------------------------------------------
_PAIR_SHAPE = ("pairs[{i}]: expected (text, relevant) or (embedding, relevant), a dict row or "
               "a Question in {name}; got {item!r:.80}")


def _as_question(item, i: int, name: str) -> Question:
    """One item of a list handed to :meth:`QuestionSet.coerce`, as a Question (checked when
    the set is built)."""
    if isinstance(item, Question):
        return item
    if isinstance(item, Mapping):
        row = dict(item)
        if "relevant" not in row and "relevance" in row:
            row["relevant"] = row.pop("relevance")
        q = question_from_row(row, f"{name}[{i}]")
        return q if q.id else Question(f"q{i}", q.text, q.relevant, q.embedding, q.metadata)
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputError(_PAIR_SHAPE.format(i=i, name=name, item=item))
    question, relevant = item
    if isinstance(question, str):
        return Question(f"q{i}", question, relevant, None, {"source": "human"})
    vector = None if question is None else np.asarray(question)
    if vector is None or vector.ndim != 1 or not np.issubdtype(vector.dtype, np.number):
        raise InputError(f"{name}[{i}]: the question must be a text or a 1-D embedding, got "
                         f"{type(question).__name__}")
    return Question(f"q{i}", None, relevant, vector, {"source": "human"})


def _from_embedded_pairs(items: list) -> QuestionSet | None:
    """Pre-embedded ``(1-D numpy array, {id: grade})`` pairs, the common case of callers that
    embed their own questions, in one pass with one array copy; ``None`` for anything else or
    anything odd (the general path checks it and names the fault)."""
    first = items[0]
    if not (type(first) is tuple and len(first) == 2 and isinstance(first[0], np.ndarray)
            and first[0].ndim == 1):
        return None
    shape = first[0].shape
    if not all(type(it) is tuple and len(it) == 2 and isinstance(it[0], np.ndarray)
               and it[0].shape == shape and type(it[1]) is dict and it[1] for it in items):
        return None
    grades = [g for _, rel in items for g in rel.values()]
    if not all(type(g) in (int, float) or isinstance(g, (np.floating, np.integer))
               for g in grades):
        return None  # bools, strings, None: let the general path name them
    if not all(type(k) is str for _, rel in items for k in rel):
        return None  # ids such as None or lists: the general path refuses them
    values = np.array(grades, dtype=np.float64)
    if not (np.isfinite(values).all() and (values > 0).all()):
        return None
    source = {"source": "human"}  # shared: the set never hands out or changes its own dicts
    questions = tuple(Question(f"q{i}", None, {k: float(g) for k, g in rel.items()}, None,
                               source) for i, (_, rel) in enumerate(items))
    matrix = np.array([v for v, _ in items])
    if not np.issubdtype(matrix.dtype, np.number):
        return None
    return QuestionSet._trusted(questions, _as_matrix(matrix, "embeddings", copy=False))


# -- readers that return sets (the formats live in io.py) -----------------------------------------
def read_jsonl(path, known_ids=None, source: str = "human") -> QuestionSet:
    """Read a question JSONL file. Errors name ``path:line`` and the field at fault."""
    return QuestionSet.from_jsonl(path, known_ids=known_ids, source=source)


def read_beir(folder, splits=None, known_ids=None) -> QuestionSet:
    """Questions of a BEIR folder: ``queries.jsonl`` joined with ``qrels/<split>.tsv``."""
    return QuestionSet.from_beir(folder, splits=splits, known_ids=known_ids)


def read_llama_dataset(path_or_dict, known_ids=None, source: str = "synthetic"):
    """``(QuestionSet, corpus)`` from ``EmbeddingQAFinetuneDataset`` JSON; every grade is 1."""
    questions, corpus = llama_dataset_questions(path_or_dict, known_ids=known_ids,
                                                source=source)
    return QuestionSet(questions), corpus
