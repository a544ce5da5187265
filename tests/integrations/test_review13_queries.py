"""Review of issue 13: a bad query vector through the overlay retriever (moved records and
query memory) gets the package's error, not numpy's or the store's."""

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from nudge_rag import EmbeddingFinetuner, InputError  # noqa: E402
from tests.conftest import clustered_problem  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    from langchain_core.vectorstores import InMemoryVectorStore

    from tests.fakes import CountingLangChainEmbeddings

    docs, tq, tr, vq, vr = clustered_problem(4, n=150, d=12, n_train=60, n_val=15)
    ids = [f"r{i:03d}" for i in range(len(docs))]
    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=12))
    for i, v in zip(ids, docs):
        store.store[i] = {"id": i, "vector": v.tolist(), "text": i, "metadata": {}}

    def qs(q, rel):
        return [(v, {ids[r]: g for r, g in rr.items()}) for v, rr in zip(q, rel)]

    delta = EmbeddingFinetuner(store, show_progress=False).fit(qs(tq, tr), qs(vq, vr))
    return store, delta


@pytest.mark.parametrize("query", [[0.1] * 8, [[0.1] * 12], [np.nan] + [0.1] * 11,
                                   [0.0] * 12])
def test_a_bad_query_is_an_input_error(fitted, query):
    # a wrong-dimension query failed in numpy's matmul, a zero one in the store ("NaN values
    # found"): the overlay scores the delta's records before it asks the store
    store, delta = fitted
    with pytest.raises(InputError, match="query"):
        delta.as_retriever(store, k=3).search_with_scores(query)
