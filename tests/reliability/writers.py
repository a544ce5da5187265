"""Two different versions of each thing nudge-rag writes, small and fast to write, for the
kill loops: a delta, and each persisted index layout of the command line."""

from __future__ import annotations

import pytest

from tests.small_corpus import DOCS, QUESTIONS

KINDS = ("llama-index", "langchain", "faiss")


def index_pair(kind: str):
    """``(original, nudged)`` framework objects of one index layout."""
    from nudge_rag import EmbeddingFinetuner

    if kind == "llama-index":
        pytest.importorskip("llama_index.core")
        from tests.integrations.test_llama_index import small_index

        obj, _ = small_index()
    else:
        pytest.importorskip("langchain_core")
        from tests.fakes import CountingLangChainEmbeddings, hashed_embedding

        emb = CountingLangChainEmbeddings(dim=64)
        texts = {k: t for k, (t, _) in DOCS.items()}
        if kind == "langchain":
            from langchain_core.vectorstores import InMemoryVectorStore

            obj = InMemoryVectorStore(emb)
            for k, t in texts.items():
                obj.store[k] = {"id": k, "vector": hashed_embedding(t, 64), "text": t,
                                "metadata": {}}
        else:
            pytest.importorskip("faiss")
            pytest.importorskip("langchain_community")
            from langchain_community.vectorstores import FAISS

            obj = FAISS.from_embeddings([(t, hashed_embedding(t, 64)) for t in texts.values()],
                                        emb, ids=list(texts))
    delta = EmbeddingFinetuner(obj, gamma=0.3, show_progress=False).fit(QUESTIONS)
    return obj, delta.apply(obj)


def index_path(tmp_path, kind: str):
    return tmp_path / ("store.json" if kind == "langchain" else "index")
