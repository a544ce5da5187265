"""PostgreSQL with pgvector, reached through LlamaIndex's ``PGVectorStore`` or LangChain's
``PGVector`` (``langchain-postgres``), over the SQLAlchemy engine the store already holds.

Reads are ``SELECT id, embedding ... WHERE id = ANY(:ids)``; the competition is the table's own
``ORDER BY embedding <op> :q LIMIT k`` (an HNSW index answers it where one exists); writes are
one ``UPDATE`` per moved record, all in one transaction, so an apply is whole or not at all.
Scores: cosine ``1 - (a <=> b)``, inner product ``-(a <#> b)``, squared ``a <-> b``.
Metadata filters (LlamaIndex ``MetadataFilters``, a langchain-postgres ``filter`` dict) are
turned into SQL by the framework's own filter builder, so they mean what they mean there.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, StoreError
from .base import StoreAdapter
from .database import DatabaseAdapter, LangChainDocumentStore, LlamaNodeStore, database_errors

_OPS = {"cosine": "<=>", "dot": "<#>", "l2": "<->"}


def _literal(vec) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


def _parse(value) -> np.ndarray:
    """A vector's text as the float32 values pgvector stores (its text is their shortest
    decimal form), widened exactly to float64."""
    if isinstance(value, str):
        value = value.strip("[]").split(",")
    return np.asarray(value, dtype=np.float32).astype(np.float64)


class PgVectorAdapter(DatabaseAdapter, StoreAdapter):
    """One table (or one collection of it, via ``scope``): ``id_col`` names records,
    ``vec_col`` holds a ``vector`` column."""

    kind = "pgvector table"

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
        ids, scores = [], []
        with self.engine.connect() as conn:
            for q in queries:
                rows = conn.execute(sql, self._params(q=_literal(q), k=int(k))).fetchall()
                ids.append([str(r[0]) for r in rows])
                scores.append(self._similarity([r[1] for r in rows]))
        return ids, scores

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
        from sqlalchemy import text

        sql = text(f"UPDATE {self.table} SET {self.vec_col} = CAST(:v AS vector) "
                   f"WHERE {self._where()} AND {self.id_col} = :id")
        params = [self._params(v=_literal(v), id=i)
                  for i, v in zip(ids, np.asarray(vectors, dtype=np.float32))]
        with database_errors(self.kind, "writing nudged vectors", writing=True):
            with self.engine.begin() as conn:
                conn.execute(sql, params)


class LlamaPgVectorAdapter(LlamaNodeStore, PgVectorAdapter):
    """LlamaIndex ``PGVectorStore`` (ranks by cosine distance; ids are node ids)."""

    kind = "llama-index PGVectorStore"

    def __init__(self, index=None, vector_store=None):
        self.index = index
        self.store = vector_store if vector_store is not None else index.vector_store
        with database_errors(self.kind, "connecting"):
            self.store._initialize()
        table = self.store._table_class.__table__
        name = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
        super().__init__(self.store._engine, name, "node_id", "embedding", "cosine",
                         owner=index if index is not None else self.store)

    def _table_object(self):
        return self.store._table_class.__table__

    def _filter_clause(self, filters):
        """LlamaIndex ``MetadataFilters``, as PGVectorStore itself turns them into SQL."""
        return self.store._recursively_apply_filters(filters)


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
                uuid = collection.uuid if collection is not None else None
        table = store.EmbeddingStore.__table__.name
        super().__init__(store._engine, f'"{table}"', "id", "embedding",
                         strategies[store._distance_strategy],
                         scope=("collection_id", uuid), owner=store)

    def _table_object(self):
        return self.store.EmbeddingStore.__table__

    def _filter_clause(self, filters):
        """A langchain-postgres ``filter`` dict (``{"key": value}``, ``$eq``, ``$in``, ``$and``
        ...), as PGVector itself turns it into SQL over the JSONB metadata."""
        if not isinstance(filters, dict):
            raise InputError("filter for a langchain PGVector store must be a dict such as "
                             "{'topic': 'x'} or {'year': {'$gte': 2020}}")
        return self.store._create_filter_clause(filters)
