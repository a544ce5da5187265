"""Pseudo-questions built from each chunk's own text, with no LLM.

The method (deterministic: the same corpus always gives the same questions):

1. Split each chunk into sentences and words; drop English stop words.
2. Weigh each word by TF-IDF: how often the chunk uses it times how rare it is in the corpus
   (``idf = ln((N + 1) / (df + 1)) + 1``).
3. A sentence's salience is the summed weight of its distinct words over the square root of
   their number, so long sentences do not win by length alone.
4. Questions alternate between two styles: a *sentence* question is a salient sentence, cut to
   ``max_words``; a *keywords* question lists the chunk's ``keywords`` heaviest words in the
   order they first appear, the way people type search queries.

Questions that normalise to the same text are merged, and every chunk they came from counts
as relevant.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ..errors import InputError
from .chunks import as_chunks
from .normalize import STOP_WORDS, normalize_text
from .question import Question
from .question_set import QuestionSet

# a sentence ends at . ! ? before a capital or digit, at punctuation spaced out on both sides
# (" . ", as tokenised corpora such as Cranfield write it) and at line breaks
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9])|\s+[.!?](?:\s+|$)|\n+")
_WORD = re.compile(r"[^\W_][\w\-]*", re.UNICODE)

# a short English stop-word list: function words that carry no topic

STYLES = ("mixed", "sentence", "keywords")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text)
            if len(w) > 1 and w.casefold() not in STOP_WORDS and not w.isdigit()]


def _tokenise(text: str) -> list[tuple[str, list[str]]]:
    """``[(sentence, its content words), ...]``: tokenised once, used for weights and scores.
    Repeated sentences (a title repeated in the body, say) count once."""
    unique = {normalize_text(s): s for s in reversed(_sentences(text))}
    first_seen = sorted(unique.values(), key=text.find)
    return [(s, _content_words(s)) for s in first_seen]


class _Weights:
    """TF-IDF weights of one corpus."""

    def __init__(self, tokenised: list[list[str]]):
        df = Counter(w for words in tokenised for w in {x.casefold() for x in words})
        n = len(tokenised)
        self.idf = {w: math.log((n + 1) / (c + 1)) + 1.0 for w, c in df.items()}

    def of_chunk(self, words: list[str]) -> dict[str, float]:
        tf = Counter(w.casefold() for w in words)
        return {w: (1.0 + math.log(c)) * self.idf[w] for w, c in tf.items()}


def _sentence_question(sentence: str, max_words: int) -> str:
    words = sentence.split()
    text = " ".join(words[:max_words])
    return text.rstrip(",;:")


def _keyword_question(words: list[str], weight: dict[str, float], keywords: int) -> str:
    first_seen: dict[str, str] = {}
    for w in words:
        first_seen.setdefault(w.casefold(), w)
    order = list(first_seen)
    chosen = set(sorted(order, key=lambda w: -weight[w])[:keywords])  # stable: ties by position
    return " ".join(first_seen[w] for w in order if w in chosen)


def questions_for_chunk(sentences: list[tuple[str, list[str]]], weights: _Weights, k: int,
                        style: str, max_words: int, min_words: int,
                        keywords: int) -> list[tuple[str, str]]:
    """Up to ``k`` ``(question, style)`` pairs for one tokenised chunk, most salient first."""
    words = [w for _, sentence_words in sentences for w in sentence_words]
    if not words:
        return []
    weight = weights.of_chunk(words)
    scored = []
    for position, (sentence, sentence_words) in enumerate(sentences):
        distinct = {w.casefold() for w in sentence_words}
        if len(sentence.split()) < min_words or not distinct:
            continue
        salience = sum(weight[w] for w in distinct) / math.sqrt(len(distinct))
        scored.append((-salience, position, sentence, sentence_words))
    ranked = [s for _, _, s, _ in sorted(scored, key=lambda x: x[:2])]
    ranked_words = [w for _, _, _, w in sorted(scored, key=lambda x: x[:2])]
    wanted = {"mixed": ("sentence", "keywords"), "sentence": ("sentence",),
              "keywords": ("keywords",)}[style]
    # keyword questions come from the whole chunk first, then from each salient sentence
    candidates = {
        "sentence": iter([_sentence_question(s, max_words) for s in ranked]),
        "keywords": (_keyword_question(source, weight, keywords)
                     for source in [words] + ranked_words),
    }
    out: list[tuple[str, str]] = []
    made: set[str] = set()
    exhausted: set[str] = set()
    turn = 0
    # take styles in turn; skip repeats (short chunks give the same keywords twice) and fall
    # back to the other style when one runs out
    while len(out) < k and len(exhausted) < len(wanted):
        kind = wanted[turn % len(wanted)]
        turn += 1
        if kind in exhausted:
            continue
        for question in candidates[kind]:
            key = normalize_text(question)
            if key and key not in made:
                made.add(key)
                out.append((question, kind))
                break
        else:
            exhausted.add(kind)
    return out


def offline_questions(documents, questions_per_chunk: int = 2, *, style: str = "mixed",
                      max_words: int = 24, min_words: int = 4, keywords: int = 8) -> QuestionSet:
    """Deterministic pseudo-questions for each chunk, with no LLM (method in the module doc).

    ``documents``: LlamaIndex nodes/Documents, LangChain Documents, ``(id, text)`` pairs or
    ``{id: text}``. Each question's relevance is ``{chunk id: 1.0}``; metadata records
    ``source="synthetic"``, ``generator="offline"``, the chunk id and the style.
    """
    if style not in STYLES:
        raise InputError(f"style={style!r} is not one of {STYLES}")
    if isinstance(questions_per_chunk, bool) or not isinstance(questions_per_chunk, int) or \
            questions_per_chunk < 1:
        raise InputError(f"questions_per_chunk={questions_per_chunk!r} must be an integer >= 1")
    chunks = as_chunks(documents)
    tokenised = [_tokenise(text) for _, text in chunks]
    weights = _Weights([[w for _, words in sentences for w in words] for sentences in tokenised])
    by_text: dict[str, Question] = {}
    for (chunk_id, _), sentences in zip(chunks, tokenised, strict=True):
        made = questions_for_chunk(sentences, weights, questions_per_chunk, style, max_words,
                                   min_words, keywords)
        for k, (question, kind) in enumerate(made):
            key = normalize_text(question)
            if not key:
                continue
            if key in by_text:  # the same pseudo-question from two chunks: both are relevant
                by_text[key].relevant[chunk_id] = 1.0
                continue
            by_text[key] = Question(f"offline-{chunk_id}-{k}", question, {chunk_id: 1.0}, None,
                                    {"source": "synthetic", "generator": "offline",
                                     "chunk_id": chunk_id, "style": kind})
    if not by_text:
        raise InputError("documents: no chunk has text to build a question from")
    return QuestionSet(by_text.values())
