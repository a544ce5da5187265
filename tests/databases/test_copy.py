"""``delta.apply(obj)`` on Chroma, Qdrant and Milvus, through LlamaIndex and LangChain: a new
collection holding the nudged vectors, the original untouched; a copy that fails half-way
leaves nothing behind. (pgvector's copies are tested in test_pgvector.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import BUILDERS, PACKAGES, problem
from tests.databases.copies import check_copy, vectors

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


@pytest.fixture(scope="module")
def prob():
    return problem()


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def fitted(request, tmp_path_factory, prob):
    """One store and delta per pair for the module: the tests only ever add collections."""
    from nudge_rag import EmbeddingFinetuner

    for module in PACKAGES[request.param]:
        pytest.importorskip(module)
    obj, counter = BUILDERS[request.param](tmp_path_factory.mktemp("db"), prob)
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    return request.param, obj, counter, delta


def test_copy_holds_the_nudged_vectors_and_the_original_is_untouched(fitted, prob):
    name, obj, counter, delta = fitted
    # cosine collections renormalise what they store (one float32 rounding)
    check_copy(obj, delta, prob, atol=2e-7)


def _copy_exists(obj, name: str) -> bool:
    from nudge_rag.stores import adapt

    adapter = adapt(obj)
    if hasattr(adapter, "pk_field"):  # Milvus
        return adapter.client.has_collection(name)
    if hasattr(adapter, "client"):
        return adapter.client.collection_exists(name)
    source = adapter.collection
    return name in [c.name for c in source._client.list_collections(
        tenant=source.tenant, database=source.database)]


def test_copy_failing_half_way_leaves_nothing_behind(fitted, prob, monkeypatch):
    import nudge_rag.stores.database as database
    from nudge_rag.errors import StoreError

    name, obj, counter, delta = fitted
    before = vectors(obj, prob.ids)
    monkeypatch.setattr(database, "BATCH", 64)  # 300 records: five writes
    writes = []

    def second_write_fails(real):
        def write(*args, **kwargs):
            writes.append(1)
            if len(writes) == 2:
                raise ConnectionError("connection reset by peer")
            return real(*args, **kwargs)
        return write

    if name.startswith("chroma"):
        from chromadb.api.models.Collection import Collection

        monkeypatch.setattr(Collection, "upsert", second_write_fails(Collection.upsert))
    else:  # Qdrant upserts a copy's points, Milvus inserts its entities
        method = "insert" if name.startswith("milvus") else "upsert"
        monkeypatch.setattr(counter._inner, method, second_write_fails(getattr(counter._inner,
                                                                               method)))
    with pytest.raises(StoreError, match="copying records into 'docs_fault'.*reset by peer"):
        delta.apply(obj, copy_name="docs_fault")
    assert len(writes) == 2
    assert not _copy_exists(obj, "docs_fault")
    np.testing.assert_array_equal(vectors(obj, prob.ids), before)
    monkeypatch.undo()
    # nothing left in the way: the same copy now succeeds
    copy = delta.apply(obj, copy_name="docs_fault")
    assert _copy_exists(obj, "docs_fault")
    assert len(vectors(copy, prob.ids)) == len(prob.ids)
