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


def delta_state(path):
    """What ``NudgeDelta.load`` sees: the delta's facts and arrays, or why it could not load."""
    from nudge_rag import NudgeDelta
    from nudge_rag.errors import InputError

    try:
        d = NudgeDelta.load(path)
    except InputError as exc:
        return f"error: {exc}"
    return (tuple(d.ids), d.gamma, d.vectors.tobytes(), d.original.tobytes(), d.sums.tobytes(),
            d.counts.tobytes())


def two_versions(name: str, folder):
    """``(path, write_a, write_b, snapshot)`` for the writer ``name`` (``"delta"`` or an
    index kind), writing into ``folder``."""
    from nudge_rag.cli.indexes import save_index

    from .helpers import make_delta, snapshot

    if name == "delta":
        path = folder / "delta"
        a, b = make_delta(0, n=200, dim=64), make_delta(1, n=200, dim=64)
        return (path, lambda: a.save(path, overwrite=True),
                lambda: b.save(path, overwrite=True), delta_state)
    old, new = index_pair(name)
    path = index_path(folder, name)
    return (path, lambda: save_index(old, name, path), lambda: save_index(new, name, path),
            snapshot)
