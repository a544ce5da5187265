"""PostgreSQL with pgvector, reached through LlamaIndex's ``PGVectorStore`` or LangChain's
``PGVector`` (``langchain-postgres``), over the SQLAlchemy engine the store already holds.

Reads are ``SELECT id, embedding ... WHERE id = ANY(:ids)``; the competition is the table's own
``ORDER BY embedding <op> :q LIMIT k`` (an HNSW index answers it where one exists); writes are
one ``UPDATE`` per moved record, all in one transaction, so an apply is whole or not at all.
Scores: cosine ``1 - (a <=> b)``, inner product ``-(a <#> b)``, squared ``a <-> b``.
Metadata filters (LlamaIndex ``MetadataFilters``, a langchain-postgres ``filter`` dict) are
turned into SQL by the framework's own filter builder, so they mean what they mean there.

A copy is made by the server in one transaction (``CREATE TABLE ... (LIKE ... INCLUDING ALL)``,
``INSERT ... SELECT``, the moved rows' ``UPDATE``): a failure leaves no table behind.
LlamaIndex's copy is a new table beside the source. langchain-postgres keeps every collection in
one table whose primary key is the record id alone, so its copy is a new schema holding the same
two tables, reached through the engine with SQLAlchemy's ``schema_translate_map``.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref

import numpy as np

from ..errors import InputError, StoreError
from .database import (
    DatabaseAdapter,
    LangChainDocumentStore,
    LlamaNodeStore,
    database_errors,
    name_taken,
)

_OPS = {"cosine": "<=>", "dot": "<#>", "l2": "<->"}
#: PostgreSQL cuts longer identifiers short, which would name another table than asked for
_MAX_NAME = 63


def _literal(vec) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str | None, name: str) -> str:
    return f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)


def _check_name(name: str, full: str) -> None:
    if len(full.encode()) > _MAX_NAME:
        raise InputError(f"copy_name={name!r} makes the PostgreSQL name {full!r}, longer than "
                         f"{_MAX_NAME} bytes; pass a shorter copy_name")


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _copy_table(conn, source: str, schema: str | None, name: str, where: str, params: dict,
                replace: dict | None = None) -> str:
    """Make table ``name`` like ``source`` (columns, defaults, constraints, indexes HNSW
    included), copy the rows ``where`` admits, with ``replace`` giving SQL for some columns,
    and return its qualified name. Runs inside the caller's transaction."""
    from sqlalchemy import text

    replace = replace or {}
    target = _qualified(schema, name)
    conn.execute(text(f"CREATE TABLE {target} (LIKE {source} INCLUDING ALL)"))
    columns = conn.execute(text(
        "SELECT attname, attgenerated <> '', attidentity = '' AND "
        "pg_get_serial_sequence(:t, attname) IS NOT NULL FROM pg_attribute "
        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum"), {"t": source}).fetchall()
    for col, _, serial in columns:
        if serial:
            # LIKE leaves the copy drawing from the source's sequence, which could then not be
            # dropped with the source: give the copy a sequence of its own
            seq = _qualified(schema, f"{name}_{col}_seq")
            conn.execute(text(f"CREATE SEQUENCE {seq} OWNED BY {target}.{_quote(col)}"))
            conn.execute(text(f"ALTER TABLE {target} ALTER COLUMN {_quote(col)} SET DEFAULT "
                              f"nextval({_string(seq)})"))
    copied = [col for col, generated, _ in columns if not generated]
    names = ", ".join(_quote(c) for c in copied)
    values = ", ".join(replace.get(c, _quote(c)) for c in copied)
    conn.execute(text(f"INSERT INTO {target} ({names}) OVERRIDING SYSTEM VALUE "
                      f"SELECT {values} FROM {source} WHERE {where}"), params)
    sequences = conn.execute(text(
        "SELECT attname, pg_get_serial_sequence(:t, attname) FROM pg_attribute "
        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped AND "
        "pg_get_serial_sequence(:t, attname) IS NOT NULL"), {"t": target}).fetchall()
    for col, seq in sequences:  # new rows are numbered after the copied ones
        conn.execute(text(f"SELECT setval(CAST(:s AS regclass), COALESCE(max({_quote(col)}), "
                          f"0) + 1, false) FROM {target}"), {"s": seq})
    return target


def _parse(value) -> np.ndarray:
    """A vector's text as the float32 values pgvector stores (its text is their shortest
    decimal form), widened exactly to float64."""
    if isinstance(value, str):
        value = value.strip("[]").split(",")
    return np.asarray(value, dtype=np.float32).astype(np.float64)


class PgVectorAdapter(DatabaseAdapter):
    """One table (or one collection of it, via ``scope``): ``id_col`` names records,
    ``vec_col`` holds a ``vector`` column."""

    kind = "pgvector table"
    #: connections that share a batch of validation searches (a pool's default allows 5)
    search_connections = 4
    #: the store's SQLAlchemy ``AsyncEngine``, when it has one
    async_engine = None
    #: async engine -> the event loop its connections belong to (see ``_loop_may_use``)
    _engine_loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, engine, table: str, id_col: str, vec_col: str, similarity: str,
                 scope: tuple[str, object] | None = None, owner=None):
        self.engine = engine
        self.table = table
        self.id_col = id_col
        self.vec_col = vec_col
        self.similarity = similarity
        self.scope = scope
        self.owner = owner
        self._dim = None

    def framework_object(self):
        return self.owner

    def payloads(self, ids):
        """A bare table (no framework around it) holds vectors only: no payload for any id.
        The LlamaIndex and LangChain adapters below return nodes and documents."""
        return [None] * len(ids)

    def _where(self) -> str:
        return f"{self.scope[0]} = :scope" if self.scope else "TRUE"

    def _params(self, **kw):
        if self.scope:
            kw["scope"] = self.scope[1]
        return kw

    def _run(self, sql: str, **params):
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), self._params(**params)).fetchall()

    def count(self):
        with database_errors(self.kind, "counting records"):
            return int(self._run(f"SELECT count(*) FROM {self.table} WHERE {self._where()}")[0][0])

    def dimension(self):
        if self._dim is None:
            with database_errors(self.kind, "reading the vector dimension"):
                got = self._run(f"SELECT vector_dims({self.vec_col}) FROM {self.table} "
                                f"WHERE {self._where()} LIMIT 1")
            self._dim = int(got[0][0]) if got else None
        return self._dim

    def _get(self, ids):
        rows = self._run(f"SELECT {self.id_col}, {self.vec_col}::text FROM {self.table} "
                         f"WHERE {self._where()} AND {self.id_col} = ANY(:ids)", ids=list(ids))
        return [str(r[0]) for r in rows], [_parse(r[1]) for r in rows]

    def _exists(self, ids):
        rows = self._run(f"SELECT {self.id_col} FROM {self.table} WHERE {self._where()} AND "
                         f"{self.id_col} = ANY(:ids)", ids=list(ids))
        return [str(r[0]) for r in rows]

    def _search(self, queries, k, filters):
        if filters is not None:
            return self._filtered_search(queries, k, self._filter_clause(filters))
        from sqlalchemy import text

        op = _OPS[self.similarity]
        sql = text(f"SELECT {self.id_col}, {self.vec_col} {op} CAST(:q AS vector) AS d "
                   f"FROM {self.table} WHERE {self._where()} ORDER BY d LIMIT :k")

        def run(part):
            ids, scores = [], []
            with self.engine.connect() as conn:
                for q in part:
                    rows = conn.execute(sql, self._params(q=_literal(q), k=int(k))).fetchall()
                    ids.append([str(r[0]) for r in rows])
                    scores.append(self._similarity([r[1] for r in rows]))
            return ids, scores

        # one query at a time leaves the server idle during every round trip: a few
        # connections, each with its own share of the questions, keep its cores busy
        n_conn = max(1, min(self.search_connections, len(queries) // 16))
        if n_conn == 1:
            return run(queries)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_conn) as pool:
            parts = list(pool.map(run, np.array_split(queries, n_conn)))
        return [i for p in parts for i in p[0]], [s for p in parts for s in p[1]]

    async def aquery(self, query, k, filters=None, options=None):
        """The top-``k`` on the store's async engine where it has one (asyncpg), so that the
        event loop waits on the server instead of a thread; filtered searches and stores
        without one run :meth:`query` in a worker thread."""
        engine = self.async_engine
        if engine is None or filters is not None or not self._loop_may_use(engine):
            return await super().aquery(query, k, filters, options)
        from sqlalchemy import text

        self.check_options(options)
        op = _OPS[self.similarity]
        sql = text(f"SELECT {self.id_col}, {self.vec_col} {op} CAST(:q AS vector) AS d "
                   f"FROM {self.table} WHERE {self._where()} ORDER BY d LIMIT :k")
        with database_errors(self.kind, "searching"):
            async with engine.connect() as conn:
                result = await conn.execute(sql, self._params(q=_literal(query), k=int(k)))
                rows = result.fetchall()
        return [str(r[0]) for r in rows], self._similarity([r[1] for r in rows])

    @classmethod
    def _loop_may_use(cls, engine) -> bool:
        """Whether the running event loop may use ``engine``: asyncpg connections belong to
        the loop that opened them, so an engine serves the first loop that searches through
        it here, and searches from any other loop (a second ``asyncio.run``) take the thread
        path instead of failing."""
        loop = asyncio.get_running_loop()
        first = cls._engine_loops.setdefault(engine, weakref.ref(loop))()
        return first is loop

    def _similarity(self, distances) -> np.ndarray:
        d = np.array(distances, dtype=np.float64)
        return 1.0 - d if self.similarity == "cosine" else -d if self.similarity == "dot" else d**2

    # -- metadata filters: the framework's own filter, turned into SQL by the framework ---------
    def _table_object(self):
        """The SQLAlchemy table behind the store (subclasses that take filters say which)."""
        raise StoreError(f"{self.kind}: metadata filters need the framework's table; use "
                         "LlamaIndex PGVectorStore or langchain-postgres PGVector")

    def _filter_clause(self, filters):
        raise StoreError(f"{self.kind} cannot evaluate metadata filters")

    def _scoped(self, stmt, table):
        return stmt.where(table.c[self.scope[0]] == self.scope[1]) if self.scope else stmt

    def _filtered_search(self, queries, k, clause):
        """``ORDER BY distance LIMIT k`` under the filter, as the store's own filtered query
        runs it (with HNSW, pgvector filters the index's candidates)."""
        from sqlalchemy import select

        table = self._table_object()
        col = table.c[self.vec_col]
        distance = {"cosine": col.cosine_distance, "dot": col.max_inner_product,
                    "l2": col.l2_distance}[self.similarity]
        ids, scores = [], []
        with self.engine.connect() as conn:
            for q in queries:
                d = distance(np.asarray(q, dtype=np.float32).tolist()).label("d")
                stmt = self._scoped(select(table.c[self.id_col], d), table).where(clause)
                rows = conn.execute(stmt.order_by(d).limit(int(k))).fetchall()
                ids.append([str(r[0]) for r in rows])
                scores.append(self._similarity([r[1] for r in rows]))
        return ids, scores

    def _filter(self, ids, filters):
        from sqlalchemy import select

        table = self._table_object()
        key = table.c[self.id_col]
        stmt = self._scoped(select(key), table).where(key.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.where(self._filter_clause(filters))).fetchall()
        return [str(r[0]) for r in rows]

    def write(self, ids, vectors):
        """Every moved record in one transaction: all of them change, or none."""
        with database_errors(self.kind, "writing nudged vectors", writing=True):
            self._update(ids, vectors)

    def _update(self, ids, vectors):
        with self.engine.begin() as conn:
            self._set(conn, self.table, ids, vectors)

    def _set(self, conn, table: str, ids, vectors, scoped: bool = True) -> None:
        """``UPDATE`` the vectors of ``ids`` in ``table`` on ``conn`` (a copy holds one
        collection only, so it is not ``scoped``)."""
        from sqlalchemy import text

        where = self._where() if scoped else "TRUE"
        sql = text(f"UPDATE {table} SET {self.vec_col} = CAST(:v AS vector) "
                   f"WHERE {where} AND {self.id_col} = :id")
        bind = self._params if scoped else dict
        params = [bind(v=_literal(v), id=i)
                  for i, v in zip(ids, np.asarray(vectors, dtype=np.float32))]
        if params:
            conn.execute(sql, params)

    def _taken(self, sql: str, **params) -> bool:
        from sqlalchemy import text

        with database_errors(self.kind, "looking for the copy's name"):
            with self.engine.connect() as conn:
                return bool(conn.execute(text(sql), params).scalar())


class LlamaPgVectorAdapter(LlamaNodeStore, PgVectorAdapter):
    """LlamaIndex ``PGVectorStore`` (ranks by cosine distance; ids are node ids)."""

    kind = "llama-index PGVectorStore"

    def __init__(self, vector_store, index=None):
        self.index = index
        self.store = vector_store
        with database_errors(self.kind, "connecting"):
            self.store._initialize()
        table = self.store._table_class.__table__
        super().__init__(self.store._engine, _qualified(table.schema, table.name), "node_id",
                         "embedding", "cosine", owner=index if index is not None
                         else self.store)
        self.async_engine = self.store._async_engine

    def _table_object(self):
        return self.store._table_class.__table__

    def _filter_clause(self, filters):
        """LlamaIndex ``MetadataFilters``, as PGVectorStore itself turns them into SQL."""
        return self.store._recursively_apply_filters(filters)

    def clone_with(self, ids, vectors, name=None):
        """Copy the table into a new one beside it (``data_<name>``, default
        ``<table_name>_nudged``) in one transaction, and return an index over it."""
        store = self.store
        # PGVectorStore lower-cases table names; so do we, to find the table it will use
        name = (name or f"{store.table_name}_nudged").lower()
        hnsw = dict(store.hnsw_kwargs) if store.hnsw_kwargs is not None else None
        copy = type(store)(
            connection_string=store.connection_string,
            async_connection_string=store.async_connection_string, table_name=name,
            schema_name=store.schema_name, hybrid_search=store.hybrid_search,
            text_search_config=store.text_search_config, embed_dim=store.embed_dim,
            cache_ok=store.cache_ok, debug=store.debug, use_jsonb=store.use_jsonb,
            hnsw_kwargs=hnsw, create_engine_kwargs=store.create_engine_kwargs,
            initialization_fail_on_error=store.initialization_fail_on_error,
            use_halfvec=store.use_halfvec, indexed_metadata_keys=store.indexed_metadata_keys,
            customize_query_fn=store._customize_query_fn,
            # the copy is made whole below (indexes included): nothing left to set up, and
            # it shares the source's connection pools
            perform_setup=False, engine=store._engine, async_engine=store._async_engine)
        table = copy._table_class.__table__
        _check_name(name, table.name)
        target = _qualified(table.schema, table.name)
        if self._taken("SELECT to_regclass(:t) IS NOT NULL", t=target):
            raise name_taken(self.kind, name, f"table {target}")
        with database_errors(self.kind, f"copying into table {target}", writing=True):
            with self.engine.begin() as conn:
                _copy_table(conn, self.table, table.schema, table.name, "TRUE", {})
                self._set(conn, target, ids, vectors, scoped=False)
        return self.index_over(copy)


def _translated_schema(engine) -> str | None:
    """The schema an engine maps LangChain's schema-less tables to (a copy's engine), if any."""
    return (engine.get_execution_options().get("schema_translate_map") or {}).get(None)


class LangChainPgVectorAdapter(LangChainDocumentStore, PgVectorAdapter):
    """LangChain ``PGVector`` (langchain-postgres): one collection of ``langchain_pg_embedding``."""

    kind = "langchain PGVector"

    def __init__(self, store):
        from langchain_postgres.vectorstores import DistanceStrategy

        self.store = store
        strategies = {DistanceStrategy.COSINE: "cosine", DistanceStrategy.EUCLIDEAN: "l2",
                      DistanceStrategy.MAX_INNER_PRODUCT: "dot"}
        with database_errors(self.kind, "reading the collection"):
            with store._make_sync_session() as session:
                collection = store.get_collection(session)
                scope = collection.uuid if collection is not None else None
        self.schema = _translated_schema(store._engine)
        table = store.EmbeddingStore.__table__.name
        super().__init__(store._engine, _qualified(self.schema, table), "id", "embedding",
                         strategies[store._distance_strategy],
                         scope=("collection_id", scope), owner=store)
        self.async_engine = store._async_engine

    def clone_with(self, ids, vectors, name=None):
        """Copy the collection into a new schema ``name`` (default ``<collection>_nudged``)
        holding LangChain's two tables and one collection of that name, in one transaction.
        The ids are the table's whole primary key, so a copy cannot share the source's
        table. Returns a PGVector over it: the source's engine, with the schema mapped in."""
        from sqlalchemy import text

        store = self.store
        name = name or f"{store.collection_name}_nudged"
        _check_name(name, name)
        if self._taken("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :n)",
                        n=name):
            raise name_taken(self.kind, name, f"a schema named {name!r}")
        collections = store.CollectionStore.__table__.name
        embeddings = store.EmbeddingStore.__table__.name
        params = {"old": self.scope[1], "new": str(uuid.uuid4()), "name": name}
        with database_errors(self.kind, f"copying into schema {name!r}", writing=True):
            with self.engine.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {_quote(name)}"))
                owner = _copy_table(conn, _qualified(self.schema, collections), name,
                                    collections, "uuid = :old", params,
                                    replace={"uuid": "CAST(:new AS uuid)", "name": ":name"})
                rows = _copy_table(conn, self.table, name, embeddings, "collection_id = :old",
                                   params, replace={"collection_id": "CAST(:new AS uuid)"})
                # LIKE leaves foreign keys out; deleting the collection relies on this one
                conn.execute(text(f"ALTER TABLE {rows} ADD FOREIGN KEY (collection_id) "
                                  f"REFERENCES {owner} (uuid) ON DELETE CASCADE"))
                self._set(conn, rows, ids, vectors, scoped=False)
        engine = store._engine.execution_options(schema_translate_map={None: name})
        return type(store)(store.embeddings, connection=engine,
                           embedding_length=store._embedding_length, collection_name=name,
                           collection_metadata=store.collection_metadata,
                           distance_strategy=store._distance_strategy, logger=store.logger,
                           relevance_score_fn=store.override_relevance_score_fn,
                           use_jsonb=store.use_jsonb, create_extension=False)

    def _table_object(self):
        return self.store.EmbeddingStore.__table__

    def _filter_clause(self, filters):
        """A langchain-postgres ``filter`` dict (``{"key": value}``, ``$eq``, ``$in``, ``$and``
        ...), as PGVector itself turns it into SQL over the JSONB metadata."""
        if not isinstance(filters, dict):
            raise InputError("filter for a langchain PGVector store must be a dict such as "
                             "{'topic': 'x'} or {'year': {'$gte': 2020}}")
        return self.store._create_filter_clause(filters)
