"""The exact overlay: a store's own search with a delta's moved records rescored.

For a query, the nudged ranking is the unmoved records in their stored order merged with the
moved records at their nudged scores. The store is asked for its top ``k`` plus room for moved
records; nothing it left out beats the last score it returned, so its unmoved records plus the
moved records scoring at least that well hold the exact top ``k`` once there are ``k`` of them.
Otherwise the store is asked again, twice as deep. Scores are the store's own: cosine, inner
product, or L2 distance.

The overlay sees the store as it is at each search, as :meth:`NudgeDelta.live` does: a moved
record that the store no longer holds is never returned, and one re-embedded since the fit
ranks by the vector the store now holds (the store's own score), like any unmoved record.

Moved records are one *source* of candidate scores. A source holds a fixed set of records and
scores them for a query; a source that ``replaces`` the store's score (moved records) stands
for the store's own, and any other source (a memory of training questions, say) offers a
second score, the better of the two counting. Every source only needs candidates scoring at
least the store's last returned score, so the top ``k`` stays exact with any number of them.

The search is written once, as a plan that asks for what it needs from the store (``query``,
``fetch``, ...); :meth:`Overlay.search` answers those requests by calling the store and
:meth:`Overlay.asearch` by awaiting it, so the blocking and the async path cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from .core.memory import QueryMemory
from .errors import InputError, MismatchError
from .stores import adapt
from .stores.base import check_target, held_states, run_blocking


def native_of_inner(similarity: str, query: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The scores a store ranking by ``similarity`` would report for unit records whose inner
    products with ``query`` are ``inner`` (how a memory score ``α·q·t̂`` becomes the store's
    own score, as if each key were a unit record)."""
    inner = np.asarray(inner, dtype=np.float64)
    if similarity == "dot":
        return inner
    qq = float(query @ query)
    if similarity == "cosine":
        return inner / np.sqrt(qq)
    return 1.0 - 2.0 * inner + qq


def checked_query(query, dim: int) -> np.ndarray:
    """``query`` as one float64 vector of the delta's dimension, finite and not zero (the
    overlay scores the delta's records with it before the store sees it)."""
    try:
        q = np.asarray(query, dtype=np.float64)
    except (TypeError, ValueError):
        q = None
    if q is None or q.shape != (dim,):
        raise InputError(f"query must be one vector of dimension {dim} (the delta's); got "
                         f"shape {None if q is None else q.shape}")
    if not np.all(np.isfinite(q)) or not np.any(q):
        raise InputError("query holds NaN or inf, or is all zeros; embed the text again")
    return q


def native_scores(similarity: str, query: np.ndarray, vectors: np.ndarray,
                  sq_norms: np.ndarray | None = None) -> np.ndarray:
    """The scores a store ranking by ``similarity`` reports for ``vectors`` (cosine, inner
    product, or squared L2 distance)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if sq_norms is None:
        sq_norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    dots = (vectors @ query.astype(np.float32)).astype(np.float64)
    if similarity == "dot":
        return dots
    qq = float(query @ query)
    if similarity == "cosine":
        return dots / np.sqrt(sq_norms * qq)
    return sq_norms - 2.0 * dots + qq


@runtime_checkable
class Delta(Protocol):
    """What an overlay reads of a :class:`~nudge_rag.delta.NudgeDelta` (named here, so that the
    layers above the delta need not import it)."""

    ids: list[str]
    vectors: np.ndarray
    original: np.ndarray
    dim: int
    model: dict
    method: str


class Hit(NamedTuple):
    """One retrieved record: its id, the nudged store's native score, and the framework's
    object for it (a node or a Document)."""

    id: str
    score: float
    payload: object


class MovedRecords:
    """The delta's moved records, scored at their nudged vectors in place of the store's
    own score, while the store still holds them as the fit saw them (or as applied)."""

    replaces = True
    follows_moved = True

    def __init__(self, delta, similarity: str):
        self.ids = list(delta.ids)
        # float32 like the stored vectors: half the work per query for the same ranking
        self.vectors = np.ascontiguousarray(delta.vectors, dtype=np.float32)
        self._nudged = np.asarray(delta.vectors, dtype=np.float64)
        self._original = np.asarray(delta.original, dtype=np.float64)
        self.row = {i: r for r, i in enumerate(self.ids)}
        self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors, dtype=np.float64)
        self.similarity = similarity

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """What the store would report for rows ``rows`` (all when ``None``) if it held the
        nudged vectors."""
        vectors = self.vectors if rows is None else self.vectors[rows]
        sq = self._sq_norms if rows is None else self._sq_norms[rows]
        return native_scores(self.similarity, query, vectors, sq)

    def usable(self, found: list[str], stored: np.ndarray) -> set[str]:
        """Which of the ``found`` records (held by the store as ``stored``) still hold their
        original or nudged vector; the others were re-embedded and are the store's again."""
        if not found:
            return set()
        rows = [self.row[i] for i in found]
        is_original, is_nudged = held_states(stored, self._original[rows], self._nudged[rows])
        return {i for i, ok in zip(found, is_original | is_nudged) if ok}


class RememberedRecords:
    """The delta's query memory: the records its training questions named, each offering
    ``α · max q·t̂`` over the questions ``t`` that named it, in the store's units. It does not
    replace the store's score (the better of the two counts) and, like a moved record, a
    remembered one only speaks while the store holds it as the fit saw it (or as applied):
    a deleted record never comes back through the memory, a re-embedded one loses it."""

    replaces = False
    follows_moved = True

    def __init__(self, delta, similarity: str):
        memory = delta.query_memory()
        cols = np.unique(memory.col)
        self.ids = [delta.ids[c] for c in cols]
        self.row = {i: r for r, i in enumerate(self.ids)}
        self._memory = QueryMemory(memory.keys, memory.key,
                                   np.searchsorted(cols, memory.col), len(cols))
        self.alpha = float(delta.alpha)
        self.similarity = similarity

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """The memory score of rows ``rows`` (all when ``None``) as the store reports scores."""
        best = self._memory.best(query[None, :])[0]
        best = best if rows is None else best[rows]
        return native_of_inner(self.similarity, query, self.alpha * best)


def memory_source(delta, similarity: str) -> list:
    """The delta's memory as a source (none when it keeps no memory)."""
    if getattr(delta, "n_memory", 0) == 0:
        return []
    return [RememberedRecords(delta, similarity)]


def ranked(scored: dict[str, float], sourced: set[str], better: bool) -> list:
    """``scored`` best first. Records scored by the store keep its order among equal scores
    and come before the sources' records; those tie by id, as an array ranks tied rows (a
    memory key that names several records gives them all one score)."""
    order = {i: n for n, i in enumerate(scored)}

    def key(item):
        i, s = item
        mine = i in sourced
        return (-s if better else s, mine, i if mine else "", order[i])

    return sorted(scored.items(), key=key)


class Overlay:
    """A delta overlaid on a store that it leaves untouched. Checks on construction that the
    delta fits the store (dimension, embedding model, method); every search then reads the
    store as it is."""

    def __init__(self, index_or_store, delta, allow_model_mismatch: bool = False):
        self.adapter = adapt(index_or_store)
        check_target(self.adapter, delta, allow_model_mismatch)
        self.delta = delta
        self.moved = MovedRecords(delta, self.adapter.similarity)
        self._check_holds_some()
        #: every source of candidate scores, fixed at construction; moved records first
        self.sources: list = [self.moved, *memory_source(delta, self.adapter.similarity)]
        #: the records whose store score a source replaces
        self._replaced = set().union(*(s.ids for s in self.sources if s.replaces))

    def _check_holds_some(self, batch: int = 1000) -> None:
        """Refuse a store that holds records but none of the delta's, as ``delta.apply``
        does: the delta was fitted on another index (records deleted since the fit are
        served as deleted, so one held is enough). Asks in batches until one is found."""
        ids = self.moved.ids
        for start in range(0, len(ids), batch):
            if self.adapter.existing(ids[start:start + batch]):
                return
        if ids and self.adapter.count():
            raise MismatchError(f"none of this delta's {len(ids)} records are in the "
                                f"{self.adapter.kind}; it was fitted on another index")

    # -- answering the plan's requests -------------------------------------------------------------
    def search(self, query, k: int, filters=None, options: dict | None = None) -> list[Hit]:
        """Top-``k`` hits of the nudged store for one query vector, best first.
        ``filters`` and the store's search ``options`` apply to moved records too."""
        plan = self._plan(query, k, filters, options)
        answer = None
        try:
            while True:
                method, args = plan.send(answer)
                answer = getattr(self.adapter, method)(*args)
        except StopIteration as done:
            return done.value

    async def asearch(self, query, k: int, filters=None,
                      options: dict | None = None) -> list[Hit]:
        """:meth:`search` for async code: the store's async query where it has one, its other
        calls in worker threads; the event loop is never blocked."""
        plan = self._plan(query, k, filters, options)
        answer = None
        try:
            while True:
                method, args = plan.send(answer)
                if method == "query":
                    answer = await self.adapter.aquery(*args)
                else:
                    answer = await run_blocking(getattr(self.adapter, method), *args)
        except StopIteration as done:
            return done.value

    def search_among(self, ids: list[str], query, k: int, filters=None,
                     options: dict | None = None) -> list[Hit]:
        """Top-``k`` of the nudged store among ``ids`` only (LlamaIndex's ``node_ids``): each
        is scored exactly, at its nudged vector while the store holds it as the fit saw it,
        else at the vector the store holds."""
        query = checked_query(query, self.delta.dim)
        admitted = self.adapter.filter_ids(list(dict.fromkeys(ids)), filters, options)
        found, stored = self.adapter.fetch(admitted) if admitted else ([], None)
        if not found:
            return []
        vectors = np.asarray(stored, dtype=np.float64).copy()
        spoken = self._spoken_for(found, stored)  # once: it compares every moved record held
        for j in [j for j, i in enumerate(found) if i in spoken]:
            vectors[j] = self.moved.vectors[self.moved.row[found[j]]]
        scores = native_scores(self.adapter.similarity, query, vectors)
        self._remembered(found, spoken, query, scores)
        keep = np.flatnonzero(self.adapter.admits_score(scores, options))
        order = keep[np.argsort(-scores[keep] if self.adapter.higher_is_better
                                else scores[keep], kind="stable")][:k]
        best = [(found[j], float(scores[j])) for j in order]
        if not best:
            return []
        payloads = self.adapter.payloads([i for i, _ in best])
        return [Hit(i, s, p) for (i, s), p in zip(best, payloads) if p is not None]

    def _remembered(self, found: list[str], spoken: set[str], query, scores) -> None:
        """Raise ``scores`` of the ``found`` records to their memory score where it is better
        (records a replacing source still speaks for only)."""
        better = np.greater if self.adapter.higher_is_better else np.less
        for source in self.sources:
            if source.replaces:
                continue
            at = [(j, source.row[i]) for j, i in enumerate(found)
                  if i in source.row and i in spoken]
            if at:
                j, r = (np.array(x, dtype=np.int64) for x in zip(*at))
                offered = source.scores(query, r)
                scores[j] = np.where(better(offered, scores[j]), offered, scores[j])

    def _spoken_for(self, found: list[str], stored) -> set[str]:
        """The records a replacing source still speaks for, of those the store holds
        (``found``, holding ``stored``): for the others the store's own score counts."""
        spoken: set[str] = set()
        for source in self.sources:
            if source.replaces and found:
                mine = [j for j, i in enumerate(found) if i in source.row]
                spoken |= source.usable([found[j] for j in mine], stored[mine])
        return spoken

    # -- the plan --------------------------------------------------------------------------------
    def _plan(self, query, k: int, filters, options) -> Generator[tuple, object, list[Hit]]:
        """The search as requests to the store (see the module's docstring)."""
        query = checked_query(query, self.delta.dim)
        better = self.adapter.higher_is_better
        offers = []  # per source: (admitted rows, their scores)
        moved_admitted = None
        for source in self.sources:
            rows = np.arange(len(source))
            if filters is not None or options:
                if source.replaces or not source.follows_moved or moved_admitted is None:
                    admitted = yield ("filter_ids", (source.ids, filters, options))
                    moved_admitted = set(admitted) if source.replaces else moved_admitted
                else:  # remembered records are moved ones: the store already answered
                    admitted = [i for i in source.ids if i in moved_admitted]
                rows = np.array([source.row[i] for i in admitted], dtype=np.int64)
            scores = source.scores(query, rows)
            passes = self.adapter.admits_score(scores, options)
            offers.append((rows[passes], scores[passes]))
        replaced = self._replaced
        # a search's cost barely grows with its depth, a second search doubles it: ask for
        # room for as many records as the sources could push into the top k
        depth = k + min(sum(len(rows) for rows, _ in offers), k)
        while True:
            ids, native = yield ("query", (query, max(depth, 1), filters, options))
            native = np.asarray(native, dtype=np.float64)
            exhausted = len(ids) < depth or not len(ids)
            # nothing the store left out scores better than the last record it returned, so
            # its records plus the sources' at least that good hold the exact top k once there
            # are k of them; when the store gave all it has, every offered record counts
            last = None if exhausted else native[len(ids) - 1]
            picks = [np.flatnonzero(s >= last if better else s <= last) if last is not None
                     else np.arange(len(s)) for _, s in offers]
            wanted = {i for i in ids if i in replaced}
            for source, (rows, _), pick in zip(self.sources, offers, picks):
                wanted.update(source.ids[r] for r in rows[pick])
            wanted = sorted(wanted)
            found, stored = (yield ("fetch", (wanted,))) if wanted else ([], None)
            held = set(found)
            spoken = self._spoken_for(found, stored)
            scored = {i: s for i, s in zip(ids, native) if i not in spoken}
            for source, (rows, scores), pick in zip(self.sources, offers, picks):
                usable = spoken if source.replaces or source.follows_moved else held
                for r, s in zip(rows[pick].tolist(), scores[pick].tolist()):
                    i = source.ids[r]
                    if i in usable and (i not in scored or (s > scored[i] if better
                                                            else s < scored[i])):
                        scored[i] = s
            if exhausted or len(scored) >= k:
                break
            depth *= 2
        best = ranked(scored, spoken, better)[:k]
        if not best:
            return []
        payloads = yield ("payloads", ([i for i, _ in best],))
        # a record deleted between the search and this read is left out
        return [Hit(i, s, p) for (i, s), p in zip(best, payloads) if p is not None]
