"""Chroma: a ``chromadb`` collection (PersistentClient, HttpClient or Chroma Cloud alike),
reached through LlamaIndex's ``ChromaVectorStore`` or LangChain's ``Chroma``.

Chroma reports distances: squared L2 (``l2``), ``1 - cosine`` (``cosine``) or ``1 - dot``
(``ip``); this adapter turns the last two back into similarities. Vectors are changed with
``update`` (``add`` on an existing id would keep the old vector). Filters are Chroma ``where``
dicts; through LangChain a search may also restrict the documents' text
(``where_document``). A copy is a new collection beside the source (same client, tenant and
database, same configuration and metadata), filled page by page.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from . import database
from .database import (
    DatabaseAdapter,
    LangChainDocumentStore,
    LlamaNodeStore,
    copy_whole,
    database_errors,
    name_taken,
)

_COPIED = ["embeddings", "documents", "metadatas", "uris"]

_SPACES = {"cosine": "cosine", "ip": "dot", "l2": "l2"}


class ChromaFilter(NamedTuple):
    """What restricts a Chroma search: metadata (``where``) and the documents' text
    (``where_document``)."""

    where: dict | None = None
    where_document: dict | None = None


def _restriction(filters) -> ChromaFilter:
    return filters if isinstance(filters, ChromaFilter) else ChromaFilter(filters)


def _space(collection) -> str:
    config = getattr(collection, "configuration", None) or {}
    hnsw = config.get("hnsw") if isinstance(config, dict) else None
    space = (hnsw or {}).get("space") or (collection.metadata or {}).get("hnsw:space", "l2")
    return str(getattr(space, "value", space))


def _recorded_dimension(collection) -> int | None:
    """The dimension Chroma recorded for the collection (``None`` if it does not say)."""
    client = getattr(collection, "_client", None)
    try:
        fresh = client.get_collection(collection.name) if client is not None else collection
    except Exception:  # noqa: BLE001 - an older client: read one vector instead
        return None
    dim = getattr(fresh, "dimension", None)  # the client's own record of the collection
    if not isinstance(dim, int):
        dim = getattr(getattr(fresh, "_model", None), "dimension", None)
    return int(dim) if dim else None


class ChromaAdapter(DatabaseAdapter):
    kind = "Chroma collection"

    def __init__(self, collection, owner=None):
        self.collection = collection
        self.owner = owner if owner is not None else collection
        with database_errors(self.kind, "reading the collection's configuration"):
            space = _space(collection)
        if space not in _SPACES:
            raise InputError(f"Chroma space {space!r} is not supported; use 'cosine', 'ip' or "
                             "'l2'")
        self.similarity = _SPACES[space]
        self._dim = None

    def framework_object(self):
        return self.owner

    def count(self):
        with database_errors(self.kind, "counting records"):
            return int(self.collection.count())

    def dimension(self):
        """From the collection's record (fetched afresh), else from one stored vector."""
        if self._dim is None:
            with database_errors(self.kind, "reading the vector dimension"):
                self._dim = _recorded_dimension(self.collection)
                if self._dim is None:
                    got = self.collection.get(limit=1, include=["embeddings"])
                    emb = got.get("embeddings")
                    if emb is not None and len(emb):
                        self._dim = int(len(emb[0]))
        return self._dim

    def _exists(self, ids):
        return self.collection.get(ids=ids, include=[])["ids"]

    def _get(self, ids):
        got = self.collection.get(ids=ids, include=["embeddings"])
        return got["ids"], got["embeddings"]

    def _search(self, queries, k, filters):
        k = max(1, min(k, self.count()))
        where = _restriction(filters)
        got = self.collection.query(query_embeddings=queries.tolist(), n_results=k,
                                    where=where.where, where_document=where.where_document,
                                    include=["distances"])
        dist = [np.asarray(d, dtype=np.float64) for d in got["distances"]]
        if self.similarity != "l2":
            dist = [1.0 - d for d in dist]
        return got["ids"], dist

    def _update(self, ids, vectors):
        self.collection.update(ids=ids, embeddings=vectors.astype(np.float32).tolist())

    def _filter(self, ids, filters):
        where = _restriction(filters)
        return self.collection.get(ids=ids, where=where.where,
                                   where_document=where.where_document, include=[])["ids"]

    # -- copying -------------------------------------------------------------------------------
    def clone_with(self, ids, vectors, name=None):
        """Copy the collection into a new one called ``name`` (default ``<source>_nudged``),
        swapping in the moved records' vectors as their page passes, so each record is
        written once. Returns the framework object over the copy."""
        source = self.collection
        name = name or f"{source.name}_nudged"
        server = source._client  # the API behind the collection: it creates siblings
        place = {"tenant": source.tenant, "database": source.database}
        self._check_free(server, name, place)
        moved = dict(zip(ids, np.asarray(vectors, dtype=np.float32)))
        copy = copy_whole(self.kind, name, lambda: self._sibling(server, name, place),
                          lambda copy: self._fill(copy, moved),
                          lambda: server.delete_collection(name, **place))
        return self._over(copy)

    def _check_free(self, server, name: str, place: dict) -> None:
        """Refuse a copy name that a collection already has."""
        from chromadb.errors import NotFoundError

        with database_errors(self.kind, f"looking for a collection named {name!r}"):
            try:
                server.get_collection(name, **place)
            except NotFoundError:
                return
        raise name_taken(self.kind, name, f"a collection named {name!r}")

    def _sibling(self, server, name: str, place: dict):
        """A new, empty collection configured like the source."""
        from chromadb.api.models.Collection import Collection
        from chromadb.errors import InvalidArgumentError

        source = self.collection
        try:
            model = server.create_collection(name=name, configuration=source.configuration,
                                             metadata=source.metadata, **place)
        except InvalidArgumentError as exc:
            raise InputError(f"copy_name={name!r} is not a valid Chroma collection name "
                             f"({exc})") from None
        return Collection(client=server, model=model,
                          embedding_function=source._embedding_function,
                          data_loader=source._data_loader)

    def _fill(self, copy, moved: dict) -> None:
        """Every record of the source into ``copy``, with ``moved``'s vectors swapped in."""
        # pages by offset hold one batch at a time; upsert, so a page that overlaps the last
        # one (records added to the source meanwhile) rewrites instead of failing
        for start in itertools.count(0, database.BATCH):
            page = self.collection.get(limit=database.BATCH, offset=start, include=_COPIED)
            if not page["ids"]:
                break
            emb = np.asarray(page["embeddings"], dtype=np.float32)
            swap = [(r, i) for r, i in enumerate(page["ids"]) if i in moved]
            if swap:
                emb[[r for r, _ in swap]] = [moved[i] for _, i in swap]
            copy.upsert(ids=page["ids"], embeddings=emb, documents=page["documents"],
                        metadatas=page["metadatas"], uris=page["uris"])
            if len(page["ids"]) < database.BATCH:
                break

    def _over(self, collection):
        """What the user gets for a copied collection (subclasses wrap it)."""
        return collection


class LlamaChromaAdapter(LlamaNodeStore, ChromaAdapter):
    """A LlamaIndex ``VectorStoreIndex`` (or bare store) over a ``ChromaVectorStore``;
    ``filters`` are LlamaIndex ``MetadataFilters``."""

    kind = "llama-index ChromaVectorStore"

    def __init__(self, vector_store, index=None):
        self.index = index
        self.store = vector_store
        super().__init__(self.store._collection, owner=index if index is not None
                         else self.store)

    def _where(self, filters):
        if filters is None:
            return None
        from llama_index.vector_stores.chroma.base import _to_chroma_filter

        return _to_chroma_filter(filters)

    def _search(self, queries, k, filters):
        return super()._search(queries, k, self._where(filters))

    def _filter(self, ids, filters):
        return super()._filter(ids, self._where(filters))

    def _over(self, collection):
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return self.index_over(ChromaVectorStore(chroma_collection=collection))


class LangChainChromaAdapter(LangChainDocumentStore, ChromaAdapter):
    """A LangChain ``Chroma`` store; ``filter`` is a Chroma ``where`` dict."""

    kind = "langchain Chroma"

    search_options = frozenset({"where_document"})

    def __init__(self, store):
        self.store = store
        super().__init__(store._collection, owner=store)

    def _restricted(self, filters, options) -> ChromaFilter | None:
        self.check_options(options)
        where_document = (options or {}).get("where_document")
        return filters if where_document is None else ChromaFilter(filters, where_document)

    def query(self, query, k, filters=None, options=None):
        return super().query(query, k, self._restricted(filters, options))

    def filter_ids(self, ids, filters, options=None):
        return super().filter_ids(ids, self._restricted(filters, options))

    def _over(self, collection):
        store = self.store
        return type(store)(collection_name=collection.name, client=store._client,
                           embedding_function=store._embedding_function,
                           collection_metadata=store._collection_metadata,
                           collection_configuration=store._collection_configuration,
                           relevance_score_fn=store.override_relevance_score_fn,
                           create_collection_if_not_exists=False)
