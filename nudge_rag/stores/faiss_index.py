"""FAISS indexes read by position: approximate ones (HNSW, IVF) behind LangChain's ``FAISS``
store (:mod:`nudge_rag.stores.langchain_faiss`), and any of flat/HNSW/IVF behind LlamaIndex's
``FaissVectorStore`` (here).

Vectors are read by position (``reconstruct``) and searched with the index's own search, so
the validation competition is what the index itself would return. Writes never change the
index that readers hold: an IVF index is copied and the copy's changed rows move to their new
lists (``update_vectors``); an HNSW graph cannot change a node in place, so writing rebuilds the
graph (same M and efConstruction) from its own stored vectors. Either way the store then points
at the new index; where the copy is too costly, use the overlay.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, StoreError
from .base import StoreAdapter

ANN_TYPES = ("IndexHNSWFlat", "IndexIVFFlat")
FLAT_TYPES = ("IndexFlatL2", "IndexFlatIP", "IndexFlat")


def within_index(k: int, index) -> int:
    """``k`` for a search of ``index``: at most the rows it holds (FAISS allocates its answer
    for every row asked, so ``k=10**9`` would take gigabytes), and at least one."""
    return max(1, min(int(k), int(index.ntotal)))


class FaissPositionalAdapter(StoreAdapter):
    """A FAISS index whose rows are records by position; subclasses say where the index and
    the position → id map live."""

    def __init__(self, index, similarity: str):
        import faiss

        self.similarity = similarity
        # downcast_index's proxy neither owns the index nor keeps ``index`` alive: hold it, or
        # a write through another adapter (which swaps the store's index) frees the index
        # under this one, and its next search reads freed memory (a segfault in the tests)
        self._source = index
        self.index = faiss.downcast_index(index)
        name = type(self.index).__name__
        self.ivf = name == "IndexIVFFlat"
        self.flat = name in FLAT_TYPES
        self.kind = f"{self.kind} {name}"

    def _id_at(self) -> dict:
        """Position → record id."""
        raise NotImplementedError

    def _put_index(self, index) -> None:
        raise NotImplementedError

    def _normalise_queries(self) -> bool:
        return False

    def count(self):
        return int(self.index.ntotal)

    def dimension(self):
        return int(self.index.d) if self.index.ntotal else None

    def _positions(self):
        return {doc_id: int(pos) for pos, doc_id in self._id_at().items()}

    def _ivf_rows(self, positions: np.ndarray) -> np.ndarray:
        """Vectors at ``positions`` of an IVF-Flat index, read from its inverted lists (a
        flat code is the vector itself). ``reconstruct`` would need a direct map, which the
        index would keep and which stops LangChain's ``delete`` (``remove_ids``) working."""
        import faiss

        lists = self.index.invlists
        rows = np.empty((len(positions), self.index.d), dtype=np.float32)
        slot = {int(p): j for j, p in enumerate(positions)}
        for number in range(self.index.nlist):
            size = lists.list_size(number)
            if not size:
                continue
            labels = faiss.rev_swig_ptr(lists.get_ids(number), size)
            hits = np.flatnonzero(np.isin(labels, positions))
            if len(hits):
                codes = faiss.rev_swig_ptr(lists.get_codes(number), size * lists.code_size)
                vectors = np.frombuffer(codes, dtype=np.float32).reshape(size, self.index.d)
                for h in hits:
                    rows[slot[int(labels[h])]] = vectors[h]
        return rows

    def existing(self, ids):
        pos = self._positions()
        return [i for i in ids if i in pos]

    def fetch(self, ids):
        pos = self._positions()
        found = [i for i in ids if i in pos]
        if not found:
            return [], np.zeros((0, self.index.d))
        positions = np.array([pos[i] for i in found], dtype=np.int64)
        if self.ivf and self.index.direct_map.type == 0:  # no direct map: read the lists
            rows = self._ivf_rows(positions)
        else:
            rows = np.stack([self.index.reconstruct(int(p)) for p in positions])
        return found, rows.astype(np.float64)

    def search(self, queries, k, filters=None):
        k = within_index(k, self.index)
        if filters is not None:
            found = [self.admitted_search(q, k, filters) for q in np.atleast_2d(queries)]
            native = np.full((len(found), k), np.nan)
            for j, (_, s) in enumerate(found):
                native[j, :len(s)] = s
            return [ids for ids, _ in found], native
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32)).copy()
        if self._normalise_queries():
            q /= np.linalg.norm(q, axis=1, keepdims=True)
        native, rows = self.index.search(q, k)
        id_at = self._id_at()
        ids = [[id_at[int(r)] for r in rr if r >= 0] for rr in rows]
        return ids, np.where(rows >= 0, native.astype(np.float64), np.nan)

    def _rows(self, ids):
        pos = self._positions()
        missing = [i for i in ids if i not in pos]
        if missing:
            raise StoreError(f"ids {missing[:3]} are not in this FAISS store")
        return np.array([pos[i] for i in ids], dtype=np.int64)

    def _rebuilt(self, rows, vectors):
        """A flat or HNSW index like this one, holding ``vectors`` at ``rows``."""
        import faiss

        index = self.index
        mat = index.reconstruct_n(0, index.ntotal)
        mat[rows] = vectors
        if self.flat:
            new = faiss.IndexFlat(index.d, index.metric_type)
        else:
            new = faiss.IndexHNSWFlat(index.d, index.hnsw.nb_neighbors(0) // 2,
                                      index.metric_type)
            new.hnsw.efConstruction = index.hnsw.efConstruction
            new.hnsw.efSearch = index.hnsw.efSearch
        new.add(mat)
        return new

    def _ivf_updated(self, rows, vectors):
        """A copy of this IVF index holding ``vectors`` at ``rows`` (the copy gets the direct
        map that ``update_vectors`` needs; this index is left as it is)."""
        import faiss

        new = faiss.clone_index(self.index)
        new.make_direct_map()
        new.update_vectors(rows, np.ascontiguousarray(vectors, dtype=np.float32))
        return new

    def write(self, ids, vectors):
        rows = self._rows(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # Never change the index readers may be searching. IVF ``update_vectors`` moves entries
        # between inverted lists with the GIL released, so a search or ``reconstruct`` in another
        # thread meanwhile reads torn lists: it got other records' vectors and "offset out of
        # range" errors (tests/databases/test_concurrency.py). Like the HNSW rebuild, the IVF
        # write goes into a copy, and one attribute assignment swaps it in: a reader keeps the
        # whole index it started with. The cost is one copy of the index while writing.
        self.index = self._source = self._ivf_updated(rows, vectors) if self.ivf else \
            self._rebuilt(rows, vectors)
        self._put_index(self.index)


class LlamaFaissAdapter(FaissPositionalAdapter):
    """A LlamaIndex ``VectorStoreIndex`` over a ``FaissVectorStore``: the index's struct maps
    FAISS positions to node ids, and its docstore holds the nodes."""

    kind = "llama-index FaissVectorStore"
    framework = "llama-index"

    def __init__(self, vector_store, index):
        import faiss

        self.llama_index = index
        self.store = vector_store
        raw = self.store._faiss_index
        metric = faiss.downcast_index(raw).metric_type
        if metric not in (faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT):
            raise InputError("FaissVectorStore: only L2 and inner-product indexes are supported")
        super().__init__(raw, "l2" if metric == faiss.METRIC_L2 else "dot")

    def framework_object(self):
        return self.llama_index

    def _id_at(self):
        return {int(pos): node_id for pos, node_id in
                self.llama_index.index_struct.nodes_dict.items()}

    def _put_index(self, index):
        self.store._faiss_index = index

    def embed_model(self):
        return getattr(self.llama_index, "_embed_model", None)

    def payloads(self, ids):
        """Nodes of ``ids`` from the index's docstore (``None`` for a missing one)."""
        return self.llama_index.docstore.get_nodes(list(ids), raise_error=False)

    def filter_ids(self, ids, filters, options=None):
        """LlamaIndex ``MetadataFilters`` on the nodes' metadata (FaissVectorStore itself has
        no filtered search, so this is what makes filters work through the overlay)."""
        if filters is None:
            return list(ids)
        from llama_index.core.vector_stores.utils import build_metadata_filter_fn

        meta = {n.node_id: n.metadata for n in self.payloads(ids) if n is not None}
        admit = build_metadata_filter_fn(lambda node_id: meta.get(node_id, {}), filters)
        return [i for i in ids if admit(i)]


def llama_faiss(vector_store, index=None) -> LlamaFaissAdapter:
    """The adapter for a LlamaIndex ``FaissVectorStore`` (its index maps positions to nodes,
    so a bare store is not enough)."""
    if index is None:
        raise InputError("a bare FaissVectorStore does not know which node each row is; pass "
                         "the VectorStoreIndex over it")
    check_supported(vector_store._faiss_index, flat_ok=True)
    return LlamaFaissAdapter(vector_store, index)


def check_supported(index, flat_ok: bool = False) -> None:
    import faiss

    name = type(faiss.downcast_index(index)).__name__
    flat = FLAT_TYPES if flat_ok else ()
    if name not in ANN_TYPES + flat:
        raise InputError(f"FAISS index type {name} is not supported; use a flat index, "
                         "IndexHNSWFlat or IndexIVFFlat, or the overlay retriever")
