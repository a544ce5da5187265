"""Milvus: one collection through a ``pymilvus.MilvusClient`` (milvus-lite on a local ``.db``
folder, a standalone server or a distributed cluster: the same client), reached through
LlamaIndex's ``MilvusVectorStore`` or langchain-milvus' ``Milvus``.

Milvus scores ``COSINE`` and ``IP`` as similarities and ``L2`` as a squared distance, which is
what every adapter reports. Reads by id are ``get`` with only the vector field; the
competition is the collection's own ``search`` (its index, its filter expression); every read
asks for ``Strong`` consistency, so a fit sees every write made before it. Milvus has no
"change one field": a vector is changed by upserting the whole entity (its other fields read
back first), which on a cluster replaces the entity atomically. Collections whose primary key
is generated (``auto_id``) are refused for in-place writes: a cluster's upsert gives such an
entity a new key. A copy is a new collection with the same schema, indexes, partitions and
properties, filled a batch at a time by iterating the source.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import InputError, StoreError
from . import database
from .database import DatabaseAdapter, LlamaNodeStore, copy_whole, database_errors, name_taken

_METRICS = {"COSINE": "cosine", "IP": "dot", "L2": "l2"}
#: the most results one Milvus search returns, and the most query vectors it takes (nq)
_MAX_LIMIT = 16_384
_MAX_NQ = 16_384
#: query vectors per search request, in bytes: well under a server's 64 MB request limit
_REQUEST_BYTES = 16 * 2**20
#: hits (queries × limit) per search request, so that a deep search's answer stays small
_MAX_HITS = 1_000_000
#: graph indexes whose search breadth (``ef``) must be at least the number of results asked for
_GRAPH_INDEXES = ("HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ", "AUTOINDEX")


def _dense_fields(fields, name: str | None, kind: str):
    """The float vector field named ``name`` (or the only one) of a collection's fields."""
    from pymilvus import DataType

    dense = [f for f in fields if f["type"] == DataType.FLOAT_VECTOR]
    if name is not None:
        dense = [f for f in dense if f["name"] == name]
    if len(dense) != 1:
        have = [f["name"] for f in fields if f["type"] == DataType.FLOAT_VECTOR]
        raise InputError(f"{kind}: expected one FLOAT_VECTOR field"
                         f"{f' named {name!r}' if name else ''}, the collection has {have}; "
                         "name the field NUDGE should move")
    return dense[0]


def _search_params(params: dict | None, index_type: str, k: int) -> dict:
    """The store's own search parameters, with a graph index's ``ef`` raised to ``k``
    (Milvus refuses ``ef < limit``)."""
    params = dict(params or {})
    inner = dict(params.pop("params", None) or {})
    params.pop("metric_type", None)  # the index's own metric
    inner.update({key: params.pop(key) for key in list(params)
                  if key not in ("radius", "range_filter")})
    if index_type in _GRAPH_INDEXES:
        inner["ef"] = max(int(inner.get("ef", 0)), int(k))
    return {**params, "params": inner}


class MilvusAdapter(DatabaseAdapter):
    kind = "Milvus collection"
    #: consistency of every read nudge-rag makes: it sees each write made before it
    consistency_level = "Strong"

    def __init__(self, client, collection_name: str, vector_field: str | None = None,
                 search_params: dict | None = None, owner=None):
        self.client = client
        self.collection_name = collection_name
        self.owner = owner
        self.search_params = search_params
        self._holds_records = False
        with database_errors(self.kind, f"reading collection {collection_name!r}"):
            info = client.describe_collection(collection_name)
        self._read_schema(info, vector_field)
        self._check_loaded()
        with database_errors(self.kind, f"reading the index of {self.vector_field!r}"):
            names = client.list_indexes(collection_name, field_name=self.vector_field)
            index = client.describe_index(collection_name, names[0]) if names else None
        if index is None:
            raise InputError(f"{self.kind} {collection_name!r} has no index on "
                             f"{self.vector_field!r}; create one (its metric tells how the "
                             "collection ranks)")
        metric = str(index.get("metric_type", "")).upper()
        if metric not in _METRICS:
            raise InputError(f"Milvus metric {metric!r} is not supported; use COSINE, IP or L2")
        self.similarity = _METRICS[metric]
        self.index_type = str(index.get("index_type", "")).upper()

    def _check_loaded(self) -> None:
        """Milvus answers reads only from a loaded collection; loading one is the owner's call
        (it takes the server's memory), so an unloaded one is refused, not loaded."""
        from pymilvus.client.types import LoadState

        with database_errors(self.kind, f"reading the state of {self.collection_name!r}"):
            state = self.client.get_load_state(self.collection_name).get("state")
        if state not in (LoadState.Loaded, LoadState.Loading):
            raise StoreError(f"{self.kind} {self.collection_name!r} is not loaded ({state}); "
                             "load it first with client.load_collection("
                             f"{self.collection_name!r}): the framework's own search needs "
                             "that too")

    def _read_schema(self, info: dict, vector_field: str | None) -> None:
        from pymilvus import DataType

        fields = info["fields"]
        primary = next(f for f in fields if f.get("is_primary"))
        self.pk_field = primary["name"]
        self._int_keys = primary["type"] == DataType.INT64
        self.auto_id = bool(info.get("auto_id") or primary.get("auto_id"))
        self._partition_key = any(f.get("is_partition_key") for f in fields)
        dense = _dense_fields(fields, vector_field, self.kind)
        self.vector_field = dense["name"]
        self._dim = int(dense["params"]["dim"])
        # fields a schema function fills (BM25 sparse vectors): never written by a client
        self._generated = {name for fn in info.get("functions") or []
                           for name in fn.get("output_field_names", [])}

    def framework_object(self):
        return self.owner

    # -- ids ---------------------------------------------------------------------------------
    def _keys(self, ids) -> dict:
        """Primary-key values for ``ids`` (text) that the collection could hold, each mapped
        back to its text; an id of the wrong form is simply not in the collection."""
        keys = {}
        for i in ids:
            if self._int_keys:
                try:
                    keys[int(i)] = i
                except ValueError:
                    continue
            else:
                keys[str(i)] = i
        return keys

    def _in(self, keys) -> str:
        """A filter expression admitting the primary keys ``keys``."""
        return f"{self.pk_field} in {json.dumps(list(keys))}"

    # -- reading -----------------------------------------------------------------------------
    def count(self):
        with database_errors(self.kind, "counting records"):
            got = self.client.query(self.collection_name, filter="",
                                    output_fields=["count(*)"],
                                    consistency_level=self.consistency_level)
        n = int(got[0]["count(*)"])
        self._holds_records = self._holds_records or n > 0
        return n

    def dimension(self):
        # the schema fixes the dimension; only whether the collection holds a record is asked,
        # once per adapter (a count that found records has answered it): a one-entity query
        # reads every segment on milvus-lite (5-8 s at a million records), and a fit asks
        # six times
        if not self._holds_records:
            with database_errors(self.kind, "looking for a record"):
                self._holds_records = bool(self.client.query(
                    self.collection_name, filter="", limit=1, output_fields=[self.pk_field],
                    consistency_level=self.consistency_level))
        return self._dim if self._holds_records else None

    def _get(self, ids):
        keys = self._keys(ids)
        if not keys:
            return [], []
        rows = self.client.get(self.collection_name, ids=list(keys),
                               output_fields=[self.vector_field],
                               consistency_level=self.consistency_level)
        return ([keys[r[self.pk_field]] for r in rows],
                [np.asarray(r[self.vector_field], dtype=np.float32) for r in rows])

    def _exists(self, ids):
        keys = self._keys(ids)
        if not keys:
            return []
        rows = self.client.get(self.collection_name, ids=list(keys),
                               output_fields=[self.pk_field],
                               consistency_level=self.consistency_level)
        return [keys[r[self.pk_field]] for r in rows]

    def _expression(self, filters) -> str:
        """A Milvus boolean expression (subclasses turn their framework's filters into one)."""
        if filters is None:
            return ""
        if not isinstance(filters, str):
            raise InputError("filter for a Milvus collection must be a boolean expression "
                             "such as 'parity == 1'")
        return filters

    def queries_per_search(self, k):
        """As many as Milvus takes in one request: it searches a request's queries together,
        segment by segment, so the cost of visiting every segment (on milvus-lite, a pass
        over every row's key in Python) is paid once per request, not once per 256."""
        limit = max(1, min(int(k), _MAX_LIMIT))
        return max(1, min(_MAX_NQ, _REQUEST_BYTES // (4 * self._dim), _MAX_HITS // limit))

    def _search(self, queries, k, filters):
        k = min(int(k), _MAX_LIMIT)  # deeper than Milvus answers: the competition stops there
        hits = self.client.search(
            self.collection_name, data=np.asarray(queries, np.float32).tolist(), limit=int(k),
            filter=self._expression(filters), anns_field=self.vector_field,
            search_params=_search_params(self.search_params, self.index_type, k),
            output_fields=[self.pk_field], consistency_level=self.consistency_level)
        ids = [[str(h.get(self.pk_field, h.get("id"))) for h in row] for row in hits]
        return ids, [np.array([h["distance"] for h in row], dtype=np.float64) for row in hits]

    def _filter(self, ids, filters):
        keys = self._keys(ids)
        if not keys:
            return []
        rows = self.client.query(self.collection_name,
                                 filter=f"{self._in(keys)} and ({self._expression(filters)})",
                                 output_fields=[self.pk_field],
                                 consistency_level=self.consistency_level)
        return [keys[r[self.pk_field]] for r in rows]

    # -- writing -----------------------------------------------------------------------------
    def _entities(self, keys) -> dict:
        """The stored entities of ``keys`` (every field, dynamic ones included) by key."""
        rows = self.client.get(self.collection_name, ids=list(keys), output_fields=["*"],
                               consistency_level=self.consistency_level)
        return {r[self.pk_field]: r for r in rows}

    def _update(self, ids, vectors):
        if self.auto_id:
            raise StoreError(f"{self.kind} {self.collection_name!r} generates its primary keys "
                             "(auto_id), and a Milvus upsert would give each changed entity a "
                             "new key; apply to a copy (delta.apply(obj)) or use the overlay "
                             "retriever")
        keys = self._keys(ids)
        if len(keys) != len(ids):
            raise InputError(f"some ids are not {self.kind} primary keys: "
                             f"{[i for i in ids if i not in keys.values()][:5]}")
        stored = self._entities(keys)
        missing = [keys[k] for k in keys if k not in stored]
        if missing:
            raise StoreError(f"{self.kind}: records {missing[:5]} vanished before the write")
        new = dict(zip(keys, np.asarray(vectors, dtype=np.float32).tolist()))
        for partition, members in self._partitions_of(list(keys)):
            rows = []
            for key in members:
                row = {f: v for f, v in stored[key].items() if f not in self._generated}
                row[self.vector_field] = new[key]
                rows.append(row)
            self.client.upsert(self.collection_name, rows,
                               **({"partition_name": partition} if partition else {}))

    def _partitions_of(self, keys) -> list[tuple[str | None, list]]:
        """``keys`` grouped by the partition that holds them (``None``: Milvus routes them, as
        with one partition or a partition key). An upsert replaces an entity in the partition
        it names, so each record must be written back into its own."""
        partitions = self.client.list_partitions(self.collection_name)
        if len(partitions) == 1 or self._partition_key:
            return [(None, keys)]
        groups, left = [], set(keys)
        for part in partitions:
            held = self.client.get(self.collection_name, ids=sorted(left),
                                   output_fields=[self.pk_field], partition_names=[part],
                                   consistency_level=self.consistency_level) if left else []
            found = {r[self.pk_field] for r in held}
            if found:
                groups.append((part, [k for k in keys if k in found]))
                left -= found
        return groups

    # -- copying -----------------------------------------------------------------------------
    def clone_with(self, ids, vectors, name=None):
        """Copy the collection into a new one called ``name`` (default ``<source>_nudged``):
        same schema, indexes, partitions, consistency level and properties, the moved
        records' vectors swapped in as their batch passes. Returns the framework object over
        the copy."""
        client, source = self.client, self.collection_name
        name = name or f"{source}_nudged"
        with database_errors(self.kind, f"reading collection {source!r}"):
            info = client.describe_collection(source)
            taken = client.has_collection(name)
            partitions = client.list_partitions(source)
        if taken:
            raise name_taken(self.kind, name, f"a collection named {name!r}")
        moved = dict(zip(self._keys(ids), np.asarray(vectors, dtype=np.float32).tolist()))

        def fill(_):
            for part in ["_default"] if self._partition_key else partitions:
                if part != "_default" and not client.has_partition(name, part):
                    client.create_partition(name, part)
                self._copy_partition(name, None if self._partition_key else part, moved)

        copy_whole(self.kind, name, lambda: self._create_like(name, info), fill,
                   lambda: client.drop_collection(name))
        return self._over(name)

    def _create_like(self, name: str, info: dict) -> str:
        from pymilvus import CollectionSchema

        client = self.client
        index_params = client.prepare_index_params()
        for index_name in client.list_indexes(self.collection_name):
            got = dict(client.describe_index(self.collection_name, index_name))
            field = got.pop("field_name")
            index_type = got.pop("index_type", "")
            metric = got.pop("metric_type", None)
            for key in ("index_name", "total_rows", "indexed_rows", "pending_index_rows",
                        "state"):
                got.pop(key, None)
            index_params.add_index(field, index_type=index_type, index_name=index_name,
                                   **({"metric_type": metric} if metric else {}), params=got)
        properties = dict(info.get("properties") or {})
        if self.auto_id:  # keep the source's keys in the copy
            properties["allow_insert_auto_id"] = "true"
        client.create_collection(
            name, schema=CollectionSchema.construct_from_dict(info), index_params=index_params,
            consistency_level=info.get("consistency_level_name") or "Strong",
            num_shards=info.get("num_shards"), properties=properties or None)
        return name

    def _copy_partition(self, name: str, partition: str | None, moved: dict) -> None:
        """Copy one partition's entities (all of them when ``partition`` is ``None``)."""
        parts = {"partition_names": [partition]} if partition else {}
        pages = self.client.query_iterator(self.collection_name, batch_size=database.BATCH,
                                           filter="", output_fields=["*"], **parts)
        try:
            while True:
                rows = pages.next()
                if not rows:
                    break
                batch = []
                for row in rows:
                    row = {f: v for f, v in dict(row).items() if f not in self._generated}
                    new = moved.get(row[self.pk_field])
                    if new is not None:
                        row[self.vector_field] = new
                    batch.append(row)
                self.client.insert(name, batch, **({"partition_name": partition}
                                                   if partition else {}))
        finally:
            pages.close()

    def _over(self, collection_name):
        """What the user gets for a copied collection (subclasses wrap it)."""
        return collection_name


class LlamaMilvusAdapter(LlamaNodeStore, MilvusAdapter):
    """A LlamaIndex ``VectorStoreIndex`` (or bare store) over a ``MilvusVectorStore``;
    ``filters`` are LlamaIndex ``MetadataFilters`` (or a Milvus expression string)."""

    kind = "llama-index MilvusVectorStore"

    def __init__(self, vector_store, index=None):
        self.index = index
        self.store = vector_store
        if getattr(self.store, "enable_sparse", False) or not self.store.enable_dense:
            raise InputError("hybrid or sparse Milvus stores are not supported; NUDGE moves "
                             "dense vectors only: use a dense-only store")
        super().__init__(self.store.client, self.store.collection_name,
                         self.store.embedding_field, search_params=self.store.search_config,
                         owner=index if index is not None else self.store)

    def _expression(self, filters):
        if filters is None or isinstance(filters, str):
            return super()._expression(filters)
        from llama_index.vector_stores.milvus.base import _to_milvus_filter

        return _to_milvus_filter(filters)

    def _over(self, collection_name):
        # the source store's settings and client, pointed at the copy
        return self.index_over(self.store.model_copy(update={"collection_name":
                                                             collection_name}))


class LangChainMilvusAdapter(MilvusAdapter):
    """A langchain-milvus ``Milvus`` store; ``filter`` is a Milvus boolean expression, and so
    is the store's own search option ``expr`` (both apply when both are given)."""

    kind = "langchain Milvus"
    framework = "langchain"
    search_options = frozenset({"expr"})

    def __init__(self, store):
        self.store = store
        fields = store.vector_fields
        if len(fields) != 1:
            raise InputError(f"langchain Milvus stores with several vector fields ({fields}) "
                             "are not supported; NUDGE moves one dense vector per record")
        params = store.search_params if isinstance(store.search_params, dict) else None
        super().__init__(store.client, store.collection_name, fields[0], search_params=params,
                         owner=store)

    def embed_model(self):
        return self.store.embeddings

    @staticmethod
    def _both(filters, options) -> str | None:
        """``filter`` and the ``expr`` option as one expression."""
        parts = [e for e in (filters, (options or {}).get("expr")) if e]
        return " and ".join(f"({e})" for e in parts) or None

    def query(self, query, k, filters=None, options=None):
        self.check_options(options)
        return super().query(query, k, self._both(filters, options))

    def filter_ids(self, ids, filters, options=None):
        return super().filter_ids(ids, self._both(filters, options))

    def payloads(self, ids):
        """Documents of ``ids`` as the store's own search returns them (text as
        ``page_content``, the other non-vector fields as metadata), with their ids; ``None``
        for an id the collection does not hold."""
        from langchain_core.documents import Document

        keys = self._keys(ids)
        store = self.store
        with database_errors(self.kind, "reading documents"):
            rows = self.client.query(self.collection_name, filter=self._in(keys),
                                     output_fields=["*"],
                                     consistency_level=self.consistency_level) if keys else []
        vectors = set(store.vector_fields)
        got = {}
        for row in rows:
            key = keys[row[self.pk_field]]
            row = {f: v for f, v in row.items() if f not in vectors}
            text = row.pop(store._text_field, "")
            got[key] = Document(id=key, page_content=text,
                                metadata=row.pop(store._metadata_field, {})
                                if store._metadata_field else row)
        return [got.get(i) for i in ids]

    def _over(self, collection_name):
        import copy

        new = copy.copy(self.store)
        new.collection_name = collection_name
        new.fields = list(self.store.fields)
        new._col_cache = None  # the store caches its ORM collection by name
        new._cache_key = None
        return new
