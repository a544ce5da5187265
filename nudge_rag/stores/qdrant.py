"""Qdrant: one collection through a ``QdrantClient`` (local mode, a server or a cluster: the
same client), reached through LlamaIndex's ``QdrantVectorStore`` or LangChain's
``QdrantVectorStore``.

Qdrant scores ``Cosine`` and ``Dot`` as similarities and ``Euclid`` as a plain distance; this
adapter reports squared distances for ``l2`` like every other store. Cosine collections
renormalise vectors on write, so they accept NUDGE-N (unit-norm output) only. Point ids are
UUIDs or unsigned integers; any other id is simply not in the collection. Filters are Qdrant
``Filter`` objects.
"""

from __future__ import annotations

import uuid

import numpy as np

from ..errors import InputError
from .base import StoreAdapter
from .database import DatabaseAdapter, LlamaNodeStore, database_errors

_DISTANCES = {"Cosine": "cosine", "Dot": "dot", "Euclid": "l2"}


def _point_id(text: str):
    """The Qdrant id for ``text``, or ``None`` when Qdrant could not hold it."""
    if text.isdigit():
        return int(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class QdrantAdapter(DatabaseAdapter, StoreAdapter):
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

        requests = [models.QueryRequest(query=q.tolist(), limit=k, filter=filters,
                                        using=self.vector_name or None, with_payload=False)
                    for q in queries]
        answers = self.client.query_batch_points(self.collection_name, requests=requests)
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

    def _filter(self, ids, filters):
        from qdrant_client import models

        pids = [p for p in (_point_id(i) for i in ids) if p is not None]
        both = models.Filter(must=[models.HasIdCondition(has_id=pids), filters])
        points, _ = self.client.scroll(self.collection_name, scroll_filter=both,
                                       limit=len(pids) + 1, with_payload=False)
        return [str(p.id) for p in points]


class LlamaQdrantAdapter(LlamaNodeStore, QdrantAdapter):
    """A LlamaIndex ``VectorStoreIndex`` (or bare store) over a ``QdrantVectorStore``;
    ``filters`` are LlamaIndex ``MetadataFilters``."""

    kind = "llama-index QdrantVectorStore"

    def __init__(self, index=None, vector_store=None):
        self.index = index
        self.store = vector_store if vector_store is not None else index.vector_store
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


class LangChainQdrantAdapter(QdrantAdapter):
    """A LangChain ``QdrantVectorStore``; ``filter`` is a Qdrant ``Filter``."""

    kind = "langchain QdrantVectorStore"

    def __init__(self, store):
        self.store = store
        super().__init__(store.client, store.collection_name, store.vector_name, owner=store)

    def embed_model(self):
        return self.store.embeddings

    def documents(self, ids):
        from langchain_core.documents import Document

        pids = [p for p in (_point_id(i) for i in ids) if p is not None]
        with database_errors(self.kind, "reading documents"):
            points = self.client.retrieve(self.collection_name, ids=pids, with_payload=True,
                                          with_vectors=False)
        payload = {str(p.id): p.payload or {} for p in points}
        return [Document(id=i, page_content=payload[i].get(self.store.content_payload_key)
                         or "", metadata=payload[i].get(self.store.metadata_payload_key) or {})
                for i in ids if i in payload]
