"""One training question, and the checks every question passes: grades, relevance, known ids.

This is the bottom of ``nudge_rag.questions``: it imports nothing from the package but its
errors, so readers (``io``), splits and ``QuestionSet`` can all build on it.

Grades follow one rule everywhere: a relevant record has a finite grade > 0, and a question
names at least one. A grade of 0 or below is refused, not silently dropped, because it is
usually a labelling mistake (or a "not relevant" judgement that belongs out of the dict).
Files whose format reserves 0 for "judged not relevant" (BEIR qrels) skip those rows as they
are read.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, MismatchError

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
        if not isinstance(value, str):
            raise InputError(f"{where}: grade {value!r} is not a number; use a number > 0 "
                             "such as 1 or 2")
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{where}: grade {value!r} is not a number; use a number > 0 "
                             "such as 1 or 2") from None
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
        out = {record_id(rid, where): check_grade(grade, f"{where}, record {rid!r}")
               for rid, grade in relevant.items()}
    elif isinstance(relevant, (list, tuple, set, frozenset)):
        out = {record_id(rid, where): 1.0 for rid in relevant}
    else:
        raise InputError(f"{where}: 'relevant' must be a dict {{id: grade}} or a list of ids, "
                         f"got {type(relevant).__name__}")
    if not out:
        raise InputError(f"{where}: 'relevant' is empty, so the question is unanswerable; give "
                         "every question at least one relevant record id")
    return out


def check_question(q: Question, where: str) -> Question:
    """A clean copy of ``q`` (string id, checked relevance and metadata, blank text as None);
    the embedding is left out, since the set stacks and checks embeddings together."""
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


# -- the one check that questions name only records the index holds ----------------------------
KnownIds = Collection[str] | Callable[[list[str]], Iterable[str]]


def check_known_ids(relevance: Iterable[Mapping[str, float]], known: KnownIds, where: str,
                    holder: str | None = None) -> None:
    """Raise :class:`MismatchError` when ``relevance`` names a record id that is not known.

    ``known`` is a collection of ids, or a callable that returns which of the ids it is given
    exist (a store lookup, so a large index is never listed). ``where`` names the questions
    (``"train_questions"``, ``"q.jsonl:3"``); ``holder`` names what should hold the ids
    (``"the chroma collection"``; default: the known ids, counted).
    """
    named = sorted({rid for rel in relevance for rid in rel})
    if callable(known):
        found = set(map(str, known(named)))
    else:
        found = known if isinstance(known, (set, frozenset, Mapping)) else set(map(str, known))
    missing = [rid for rid in named if rid not in found]
    if not missing:
        return
    if holder is None:
        holder = f"among the {len(found)} known ids"
    else:
        holder = f"in {holder}"
    shown = ", ".join(repr(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
    count = f"{len(missing)} record id{'s' if len(missing) > 1 else ''}"
    if len(missing) == len(named) and len(named) > 1:
        hint = ("none of them is there: the questions were made for another index; use the ids "
                "of the index you fit (map document ids to node ids first)")
    else:
        hint = "fix the ids or drop those entries (map document ids to node ids first)"
    raise MismatchError(f"{where}: relevant ids {shown} ({count}) are not {holder}; {hint}")
