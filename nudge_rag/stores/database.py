"""What every vector-database adapter shares: batching, id order, and turning client
failures into :class:`StoreError` with a message that says what to do.

A database adapter reads vectors by id and searches through the database's own client, so it
never loads the corpus; it holds no algorithm. A store's module subclasses
:class:`DatabaseAdapter` once: its hooks, each for one batch, read vectors (``_get``), look up
ids (``_exists``), search (``_search``), write (``_update``) and filter (``_filter``); besides
them it gives the contract's ``count``, ``dimension`` and ``framework_object``, a
``clone_with`` where the database can copy a collection, and ``queries_per_search`` where one
request carries more queries than :data:`BATCH`. It then subclasses once per framework to say
where the client is and how payloads come back: through :class:`LlamaNodeStore` or
:class:`LangChainDocumentStore` where the framework's store returns them by id, by reading
them itself otherwise.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import contextmanager, suppress

import numpy as np

from ..errors import InputError, NudgeError, StoreError
from .base import StoreAdapter

#: records per read or write request (small enough for any server's request limit)
BATCH = 256


@contextmanager
def database_errors(kind: str, action: str, writing: bool = False):
    """Re-raise a client failure during ``action`` as a StoreError naming the store."""
    try:
        yield
    except NudgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any client failure becomes one clear error
        text = f"{type(exc).__name__}: {exc}".strip()
        hint = ("check that the database is running and reachable at the address the client "
                "was given, then run again")
        if writing:
            hint = ("check that this client may write to the collection; if it may not, use "
                    "the overlay retriever (delta.as_retriever(...)), which writes nothing")
        raise StoreError(f"{kind} failed while {action} ({text[:300]}); {hint}") from exc


def name_taken(kind: str, name: str, what: str) -> InputError:
    """The error for a copy whose name is in use (``what``: "a collection named 'x'"): a copy
    never overwrites."""
    return InputError(f"copy_name={name!r}: {what} already exists in the database of this "
                      f"{kind}; pass another copy_name, or delete it first (nudge-rag never "
                      "overwrites)")


def copy_whole(kind: str, name: str, create, fill, remove):
    """``create()`` the copy (one call: it exists or it does not), then ``fill(copy)``; if
    filling fails or is interrupted, ``remove()`` it, since a partial copy would look like a
    whole one. Returns the copy."""
    with database_errors(kind, f"creating the copy {name!r}", writing=True):
        made = create()
    try:
        with database_errors(kind, f"copying records into {name!r}", writing=True):
            fill(made)
    except BaseException:
        with suppress(Exception):  # the copy's own failure is the error worth reporting
            remove()
        raise
    return made


class DatabaseAdapter(StoreAdapter):
    """A store behind a database client. Subclasses set ``kind`` and ``similarity`` and
    implement the hooks below, each for one batch of at most :data:`BATCH` ids or queries;
    this class batches, keeps the order asked for, and turns client failures into
    :class:`StoreError`."""

    kind = "vector database"

    @abstractmethod
    def _get(self, ids: list[str]) -> tuple[list[str], list]:
        """Stored vectors of ``ids``: ``(found ids, their vectors)`` in any order."""

    @abstractmethod
    def _exists(self, ids: list[str]) -> list[str]:
        """Which of ``ids`` the database holds, without sending vectors."""

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int, filters) -> tuple[list[list], list]:
        """Top-``k`` ids and native scores per query, best first, under ``filters``."""

    @abstractmethod
    def _update(self, ids: list[str], vectors: np.ndarray) -> None:
        """Replace the stored vectors of ``ids``."""

    @abstractmethod
    def _filter(self, ids: list[str], filters) -> list[str]:
        """Which of ``ids`` ``filters`` admits, in any order."""

    def fetch(self, ids):
        ids = [str(i) for i in ids]
        got: dict[str, np.ndarray] = {}
        with database_errors(self.kind, "reading vectors by id"):
            for start in range(0, len(ids), BATCH):
                found, rows = self._get(ids[start:start + BATCH])
                got.update(zip(found, np.asarray(rows, dtype=np.float64)))
        order = [i for i in ids if i in got]
        if not order:  # asked only here: on some engines it reads the collection
            return order, np.zeros((0, self.dimension() or 0))
        return order, np.array([got[i] for i in order])

    def existing(self, ids):
        ids = [str(i) for i in ids]
        found: set[str] = set()
        with database_errors(self.kind, "looking up ids"):
            for start in range(0, len(ids), BATCH):
                found.update(str(i) for i in self._exists(ids[start:start + BATCH]))
        return [i for i in ids if i in found]

    def queries_per_search(self, k: int) -> int:
        """How many query vectors one search request carries (a store whose server searches
        a request's queries together says more)."""
        return BATCH

    def search(self, queries, k, filters=None):
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        out_ids: list[list[str]] = []
        native = np.full((len(q), k), np.nan)
        step = max(1, int(self.queries_per_search(k)))
        with database_errors(self.kind, "searching"):
            for start in range(0, len(q), step):
                ids, scores = self._search(q[start:start + step], k, filters)
                for j, (ii, ss) in enumerate(zip(ids, scores)):
                    out_ids.append([str(i) for i in ii][:k])
                    native[start + j, :len(out_ids[-1])] = ss[:k]
        return out_ids, native

    def write(self, ids, vectors):
        vectors = np.asarray(vectors, dtype=np.float64)
        with database_errors(self.kind, "writing nudged vectors", writing=True):
            for start in range(0, len(ids), BATCH):
                self._update(list(ids[start:start + BATCH]), vectors[start:start + BATCH])

    def filter_ids(self, ids, filters, options=None):
        if filters is None:
            return list(ids)
        with database_errors(self.kind, "evaluating filters"):
            admitted = set(self._filter(list(ids), filters))
        return [i for i in ids if i in admitted]


class LlamaNodeStore:
    """Mixin for LlamaIndex stores that hold the nodes themselves (their index's docstore is
    empty): nodes come from the store, the embedding model from the index."""

    framework = "llama-index"
    kind: str
    index = None
    store = None

    def embed_model(self):
        return getattr(self.index, "_embed_model", None) if self.index is not None else None

    def index_over(self, store):
        """The user's kind of object over ``store`` (a copy): an index like theirs, with the
        same embedding model and ingestion settings, or the bare store."""
        if self.index is None:
            return store
        index = self.index
        return type(index).from_vector_store(
            store, embed_model=self.embed_model(), transformations=index._transformations,
            callback_manager=index._callback_manager, use_async=index._use_async,
            store_nodes_override=index._store_nodes_override,
            insert_batch_size=index._insert_batch_size, show_progress=index._show_progress)

    def payloads(self, ids):
        """Nodes of ``ids``, as the store holds them (``None`` for a missing one)."""
        if not ids:  # get_nodes(node_ids=[]) reads every node of Chroma and pgvector stores
            return []
        with database_errors(self.kind, "reading nodes"):
            got = {n.node_id: n for n in self.store.get_nodes(node_ids=list(ids))}
        return [got.get(i) for i in ids]


class LangChainDocumentStore:
    """Mixin for LangChain stores that return their documents by id (``get_by_ids``)."""

    framework = "langchain"
    kind: str
    store = None

    def embed_model(self):
        return self.store.embeddings

    def payloads(self, ids):
        """Documents of ``ids`` (``None`` for a missing one)."""
        if not ids:  # Chroma's get_by_ids([]) raises
            return []
        with database_errors(self.kind, "reading documents"):
            got = {d.id: d for d in self.store.get_by_ids(list(ids))}
        return [got.get(i) for i in ids]
