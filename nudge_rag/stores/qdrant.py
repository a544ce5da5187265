"""Qdrant: one collection through a ``QdrantClient`` (local mode, a server or a cluster: the
same client), reached through LlamaIndex's ``QdrantVectorStore`` or LangChain's
``QdrantVectorStore``.

Qdrant scores ``Cosine`` and ``Dot`` as similarities and ``Euclid`` as a plain distance; this
adapter reports squared distances for ``l2`` like every other store. Cosine collections
renormalise vectors on write, so they accept NUDGE-N (unit-norm output) only. Point ids are
UUIDs or unsigned integers; any other id is simply not in the collection. Filters are Qdrant
``Filter`` objects. A copy is a new collection on the same client with the source's vectors,
index and storage settings, filled by scrolling the source in batches.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import numpy as np

from ..errors import InputError, StoreError
from . import database
from .database import DatabaseAdapter, LlamaNodeStore, copy_whole, database_errors, name_taken

_DISTANCES = {"Cosine": "cosine", "Dot": "dot", "Euclid": "l2"}


def _settings(found, diff_class):
    """A collection's settings as the ``...Diff`` model that ``create_collection`` takes."""
    if found is None:
        return None
    fields = diff_class.model_fields
    return diff_class(**{k: v for k, v in found.model_dump(exclude_none=True).items()
                         if k in fields})


class QdrantSearch(NamedTuple):
    """A Qdrant filter with the search options LangChain's store passes along with it."""

    filter: object = None
    search_params: object = None
    consistency: object = None
    score_threshold: float | None = None


def _point_id(text: str):
    """The Qdrant id for ``text``, or ``None`` when Qdrant could not hold it."""
    if text.isdigit():
        return int(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class QdrantAdapter(DatabaseAdapter):
    kind = "Qdrant collection"

    def __init__(self, client, collection_name: str, vector_name: str = "", owner=None):
        self.client = client
        self.collection_name = collection_name
        self.vector_name = vector_name or ""
        self.owner = owner
        with database_errors(self.kind, f"reading collection {collection_name!r}"):
            vectors = client.get_collection(collection_name).config.params.vectors
        params = vectors.get(self.vector_name) if isinstance(vectors, dict) else vectors
        if params is None:
            raise InputError(f"Qdrant collection {collection_name!r} has no vector named "
                             f"{self.vector_name!r} (it has {sorted(vectors)})")
        distance = str(getattr(params.distance, "value", params.distance))
        if distance not in _DISTANCES:
            raise InputError(f"Qdrant distance {distance!r} is not supported; use Cosine, Dot "
                             "or Euclid")
        self.similarity = _DISTANCES[distance]
        self._dim = int(params.size)

    def framework_object(self):
        return self.owner

    def count(self):
        with database_errors(self.kind, "counting records"):
            return int(self.client.count(self.collection_name, exact=True).count)

    def dimension(self):
        return self._dim if self.count() else None

    def _vector(self, point):
        vec = point.vector
        return vec[self.vector_name] if isinstance(vec, dict) else vec

    def _get(self, ids):
        wanted = {}
        for i in ids:
            pid = _point_id(i)
            if pid is not None:
                wanted[str(pid)] = i
        if not wanted:
            return [], []
        points = self.client.retrieve(self.collection_name, ids=[_point_id(i) for i in wanted],
                                      with_vectors=[self.vector_name] if self.vector_name
                                      else True, with_payload=False)
        found = [wanted[str(p.id)] for p in points if str(p.id) in wanted]
        return found, [self._vector(p) for p in points if str(p.id) in wanted]

    def _exists(self, ids):
        wanted = {str(p): i for i, p in ((i, _point_id(i)) for i in ids) if p is not None}
        if not wanted:
            return []
        points = self.client.retrieve(self.collection_name, ids=[_point_id(i) for i in wanted],
                                      with_vectors=False, with_payload=False)
        return [wanted[str(p.id)] for p in points if str(p.id) in wanted]

    def _search(self, queries, k, filters):
        from qdrant_client import models

        search = filters if isinstance(filters, QdrantSearch) else QdrantSearch(filters)
        requests = [models.QueryRequest(query=q.tolist(), limit=k, filter=search.filter,
                                        params=search.search_params,
                                        score_threshold=search.score_threshold,
                                        using=self.vector_name or None, with_payload=False)
                    for q in queries]
        answers = self.client.query_batch_points(self.collection_name, requests=requests,
                                                 consistency=search.consistency)
        ids, scores = [], []
        for answer in answers:
            ids.append([str(p.id) for p in answer.points])
            s = np.array([p.score for p in answer.points], dtype=np.float64)
            scores.append(s**2 if self.similarity == "l2" else s)
        return ids, scores

    def _update(self, ids, vectors):
        from qdrant_client import models

        points = []
        for i, vec in zip(ids, vectors.astype(np.float32).tolist()):
            pid = _point_id(i)
            if pid is None:
                raise InputError(f"id {i!r} cannot be a Qdrant point id")
            points.append(models.PointVectors(
                id=pid, vector={self.vector_name: vec} if self.vector_name else vec))
        self.client.update_vectors(self.collection_name, points=points, wait=True)

    # -- copying -------------------------------------------------------------------------------
    def clone_with(self, ids, vectors, name=None):
        """Copy the collection into a new one called ``name`` (default ``<source>_nudged``)
        with the same vectors (named ones included), distance, index, quantisation and
        storage settings and payload indexes, swapping in the moved records' vectors as their
        batch passes. Returns the framework object over the copy."""
        from qdrant_client import models

        client, source = self.client, self.collection_name
        name = name or f"{source}_nudged"
        with database_errors(self.kind, f"reading collection {source!r}"):
            info = client.get_collection(source)
            taken = client.collection_exists(name)
        if taken:
            raise name_taken(self.kind, name, f"a collection named {name!r}")
        if info.config.params.sharding_method == models.ShardingMethod.CUSTOM:
            raise StoreError(f"{self.kind} {source!r} is sharded by custom shard keys, which a "
                             "copy cannot carry over; apply in place (inplace=True, undone by "
                             "revert) or use the overlay retriever")
        moved = {str(_point_id(i)): v for i, v in zip(ids, np.asarray(vectors, np.float32)
                                                        .tolist())}
        copy_whole(self.kind, name, lambda: self._sibling(name, info),
                   lambda _: self._fill(name, info, moved),
                   lambda: client.delete_collection(name))
        return self._over(name)

    def _sibling(self, name: str, info) -> str:
        """A new, empty collection named ``name`` with the settings in ``info``."""
        from qdrant_client import models

        config, params = info.config, info.config.params
        self.client.create_collection(
            name, vectors_config=params.vectors, sparse_vectors_config=params.sparse_vectors,
            shard_number=params.shard_number, replication_factor=params.replication_factor,
            write_consistency_factor=params.write_consistency_factor,
            on_disk_payload=params.on_disk_payload,
            hnsw_config=_settings(config.hnsw_config, models.HnswConfigDiff),
            optimizers_config=_settings(config.optimizer_config, models.OptimizersConfigDiff),
            wal_config=_settings(config.wal_config, models.WalConfigDiff),
            quantization_config=config.quantization_config,
            strict_mode_config=config.strict_mode_config, metadata=config.metadata)
        return name

    def _fill(self, name: str, info, moved: dict) -> None:
        """The source's payload indexes and every point into ``name``, scrolled in batches,
        with ``moved``'s vectors swapped in."""
        from qdrant_client import models

        client = self.client
        for field, index in (info.payload_schema or {}).items():
            client.create_payload_index(name, field, field_schema=index.params
                                        or index.data_type, wait=True)
        offset = None
        while True:
            points, offset = client.scroll(self.collection_name, limit=database.BATCH,
                                           offset=offset, with_payload=True, with_vectors=True)
            if points:
                client.upsert(name, wait=True, points=[models.PointStruct(
                    id=p.id, payload=p.payload, vector=self._swapped(p, moved))
                    for p in points])
            if offset is None:
                break

    def _swapped(self, point, moved):
        """The point's vectors, with the nudged one in place of the dense vector if moved."""
        new = moved.get(str(point.id))
        if new is None:
            return point.vector
        return {**point.vector, self.vector_name: new} if self.vector_name else new

    def _over(self, collection_name):
        """What the user gets for a copied collection (subclasses wrap it)."""
        return collection_name

    def _filter(self, ids, filters):
        from qdrant_client import models

        if isinstance(filters, QdrantSearch):
            filters = filters.filter
        pids = [p for p in (_point_id(i) for i in ids) if p is not None]
        both = models.Filter(must=[models.HasIdCondition(has_id=pids), filters])
        points, _ = self.client.scroll(self.collection_name, scroll_filter=both,
                                       limit=len(pids) + 1, with_payload=False)
        return [str(p.id) for p in points]


class LlamaQdrantAdapter(LlamaNodeStore, QdrantAdapter):
    """A LlamaIndex ``VectorStoreIndex`` (or bare store) over a ``QdrantVectorStore``;
    ``filters`` are LlamaIndex ``MetadataFilters``."""

    kind = "llama-index QdrantVectorStore"

    def __init__(self, vector_store, index=None):
        self.index = index
        self.store = vector_store
        if getattr(self.store, "enable_hybrid", False):
            raise InputError("hybrid (dense + sparse) Qdrant stores are not supported; NUDGE "
                             "moves dense vectors only: use a dense-only store")
        super().__init__(self.store.client, self.store.collection_name,
                         self.store.dense_vector_name,
                         owner=index if index is not None else self.store)

    def _native_filter(self, filters):
        return None if filters is None else self.store._build_subfilter(filters)

    def _search(self, queries, k, filters):
        return super()._search(queries, k, self._native_filter(filters))

    def _filter(self, ids, filters):
        return super()._filter(ids, self._native_filter(filters))

    def _over(self, collection_name):
        store = self.store
        # the source store's own settings, pointed at the copy
        public = ("url", "api_key", "batch_size", "parallel", "max_retries", "client_kwargs",
                  "index_doc_id", "text_key", "dense_vector_name", "sparse_vector_name")
        private = ("client", "aclient", "dense_config", "sparse_config", "quantization_config",
                   "shard_number", "sharding_method", "shard_key_selector_fn", "shard_keys",
                   "replication_factor", "write_consistency_factor", "payload_indexes")
        return self.index_over(type(store)(
            collection_name=collection_name, **{k: getattr(store, k) for k in public},
            **{k: getattr(store, f"_{k}", None) for k in private}))


class LangChainQdrantAdapter(QdrantAdapter):
    """A LangChain ``QdrantVectorStore``; ``filter`` is a Qdrant ``Filter``."""

    kind = "langchain QdrantVectorStore"
    framework = "langchain"
    search_options = frozenset({"search_params", "consistency", "score_threshold"})

    def __init__(self, store):
        self.store = store
        mode = str(getattr(store.retrieval_mode, "value", store.retrieval_mode))
        if mode != "dense":
            raise InputError(f"langchain QdrantVectorStore with retrieval_mode={mode!r}: "
                             "hybrid and sparse retrieval rank by more than the dense vectors "
                             "NUDGE moves, so a nudged retriever would rank unlike the store's "
                             "own; use a store with RetrievalMode.DENSE")
        super().__init__(store.client, store.collection_name, store.vector_name, owner=store)

    def embed_model(self):
        return self.store.embeddings

    def query(self, query, k, filters=None, options=None):
        self.check_options(options)
        return super().query(query, k, QdrantSearch(filters, **(options or {})))

    def admits_score(self, native, options):
        """Qdrant's ``score_threshold``: a lowest similarity, or a largest distance."""
        threshold = (options or {}).get("score_threshold")
        if threshold is None:
            return super().admits_score(native, options)
        native = np.asarray(native, dtype=np.float64)
        return native <= threshold**2 if self.similarity == "l2" else native >= threshold

    def payloads(self, ids):
        """Documents of ``ids`` built as the store builds them (``None`` for a missing one)."""
        pids = [p for p in (_point_id(i) for i in ids) if p is not None]
        with database_errors(self.kind, "reading documents"):
            points = self.client.retrieve(self.collection_name, ids=pids, with_payload=True,
                                          with_vectors=False)
        by_id = {str(p.id): p for p in points}
        return [None if i not in by_id else self._document(i, by_id[i]) for i in ids]

    def _document(self, doc_id: str, point):
        """The Document the store's own search would give for ``point``, with its id set."""
        store = self.store
        doc = store._document_from_point(point, store.collection_name,
                                         store.content_payload_key, store.metadata_payload_key)
        doc.id = doc_id
        return doc

    def _over(self, collection_name):
        store = self.store
        return type(store)(client=store.client, collection_name=collection_name,
                           embedding=store.embeddings, retrieval_mode=store.retrieval_mode,
                           vector_name=store.vector_name,
                           content_payload_key=store.content_payload_key,
                           metadata_payload_key=store.metadata_payload_key,
                           distance=store.distance, sparse_embedding=store._sparse_embeddings,
                           sparse_vector_name=store.sparse_vector_name)
