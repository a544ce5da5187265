"""Question sets as the finetuner accepts them.

A ``QuestionSet`` (``nudge_rag.questions``) or anything shaped like one (``ids``, ``texts``,
``relevance``, optional ``embeddings``), or a plain list of ``(question, relevance)`` pairs
where the question is a text or an embedding and relevance is ``{record id: grade}`` or a list
of record ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .questions.question_set import record_id


@dataclass
class Questions:
    ids: list[str]
    texts: list[str | None]
    relevance: list[dict[str, float]]
    embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> Questions:
        index = list(index)
        emb = None if self.embeddings is None else self.embeddings[index]
        return Questions([self.ids[i] for i in index], [self.texts[i] for i in index],
                         [self.relevance[i] for i in index], emb)

    def __add__(self, other: Questions) -> Questions:
        if (self.embeddings is None) != (other.embeddings is None):
            raise InputError("cannot combine question sets where only one has embeddings")
        emb = None if self.embeddings is None else np.vstack([self.embeddings, other.embeddings])
        return Questions(self.ids + other.ids, self.texts + other.texts,
                         self.relevance + other.relevance, emb)


def _relevance(rel, name: str, i: int) -> dict[str, float]:
    if isinstance(rel, dict):
        out = {}
        for key, grade in rel.items():
            try:
                g = float(grade)
            except (TypeError, ValueError):
                raise InputError(f"{name}[{i}] gives record {key!r} the grade {grade!r}, which "
                                 "is not a number") from None
            if g > 0:
                out[record_id(key, f"{name}[{i}]")] = g
        return out
    if isinstance(rel, (str, bytes)) or not hasattr(rel, "__iter__"):
        raise InputError(f"{name}[{i}]: relevance must be {{record id: grade}} or a list of "
                         f"record ids; got {type(rel).__name__}")
    return {record_id(key, f"{name}[{i}]"): 1.0 for key in rel}


def _embedded_pairs(items: list, name: str) -> Questions | None:
    """The common case of precomputed questions, ``(1-D array, {id: grade})`` pairs, in one
    pass with one array copy; ``None`` for anything else (the general path checks it)."""
    first = items[0]
    if not (isinstance(first, tuple) and len(first) == 2 and isinstance(first[0], np.ndarray)
            and first[0].ndim == 1):
        return None
    dim = first[0].shape[0]
    if not all(type(it) is tuple and len(it) == 2 and isinstance(it[0], np.ndarray)
               and it[0].shape == (dim,) and isinstance(it[1], dict) for it in items):
        return None
    if not all(isinstance(k, str) for _, rel in items for k in rel):
        return None  # the general path checks every id
    try:
        rels = [{k: float(g) for k, g in rel.items() if float(g) > 0}
                for _, rel in items]
    except (TypeError, ValueError):
        return None  # the general path names the bad grade
    emb = np.array([q for q, _ in items], dtype=np.float64)
    return Questions([str(i) for i in range(len(items))], [None] * len(items), rels, emb)


def as_questions(obj, name: str = "questions") -> Questions:
    """Normalise any accepted question input into :class:`Questions`."""
    if isinstance(obj, Questions):
        return obj
    if obj is None:
        raise InputError(f"{name} is None; pass a QuestionSet or a list of (question, "
                         "relevance) pairs")
    if hasattr(obj, "relevance") and hasattr(obj, "texts"):
        rel = [_relevance(r, name, i) for i, r in enumerate(obj.relevance)]
        ids = [str(i) for i in getattr(obj, "ids", range(len(rel)))]
        emb = getattr(obj, "embeddings", None)
        return Questions(ids, list(obj.texts), rel,
                         None if emb is None else np.asarray(emb, dtype=np.float64))
    items = list(obj)
    if not items:
        raise InputError(f"{name} is empty; give at least one question with a relevant record")
    fast = _embedded_pairs(items, name)
    if fast is not None:
        return fast
    ids, texts, rels, embs = [], [], [], []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            q = item.get("question", item.get("text", item.get("embedding")))
            rel = item.get("relevant", item.get("relevance"))
            qid = str(item.get("id", i))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            (q, rel), qid = item, str(i)
        else:
            raise InputError(f"{name}[{i}] must be a (question, relevance) pair or a dict with "
                             "'question' and 'relevant'")
        if isinstance(q, str):
            texts.append(q)
            embs.append(None)
        elif q is not None and np.ndim(q) == 1:
            texts.append(None)
            embs.append(np.asarray(q, dtype=np.float64))
        else:
            raise InputError(f"{name}[{i}]: the question must be a text or a 1-D embedding")
        ids.append(qid)
        rels.append(_relevance(rel, name, i))
    have = [e is not None for e in embs]
    if any(have) and not all(have):
        raise InputError(f"{name} mixes texts and embeddings; give all texts (embedded with the "
                         "index's model) or all embeddings")
    return Questions(ids, texts, rels, np.vstack(embs) if all(have) else None)
