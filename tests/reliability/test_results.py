"""Issue 11, wrong results: metric cut-offs beyond the corpus, γ = 0, exact revert, messages
that say what was done, eval labels, and a model fingerprint that ignores the wrapper class."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nudge_rag import EmbeddingFinetuner, NudgeDelta, NudgeN
from nudge_rag.errors import MismatchError
from tests.conftest import clustered_problem
from tests.small_corpus import DOCS, QUESTIONS

from .helpers import one_line_error, run

pytest.importorskip("llama_index.core")

HUGE = "ndcg@1000000000000"  # asks for 80 TB of scores if k is not clipped


def small_index():
    from tests.integrations.test_llama_index import small_index as build

    return build()[0]


def stored(index) -> dict:
    return {k: list(v) for k, v in index.vector_store.data.embedding_dict.items()}


def test_a_metric_cut_off_beyond_the_corpus_is_clipped():
    docs, tq, tr, vq, vr = clustered_problem(n=200, n_train=60, n_val=20)
    huge = NudgeN(metric=HUGE).fit(docs, tq, tr, vq, vr)
    whole = NudgeN(metric="ndcg@200").fit(docs, tq, tr, vq, vr)
    assert huge.gamma_ == whole.gamma_
    assert huge.report_["after"][HUGE] == whole.report_["after"]["ndcg@200"]


def test_the_finetuner_clips_the_cut_off_too():
    index = small_index()
    train, val = QUESTIONS[:7], QUESTIONS[7:]
    ft = EmbeddingFinetuner(index, metric=HUGE, show_progress=False)
    delta = ft.fit(train, val)
    result = ft.evaluate(val, delta, metrics=(HUGE, "recall@10000000000"))
    assert 0 < result["after"][HUGE] <= 1


def test_gamma_zero_moves_nothing_and_writes_nothing():
    index = small_index()
    before = stored(index)
    delta = EmbeddingFinetuner(index, gamma=0.0, show_progress=False).fit(QUESTIONS)
    assert "0 records moved" in delta.report()
    assert np.array_equal(delta.vectors, delta.original.astype(np.float32))
    delta.apply(index, inplace=True)
    assert stored(index) == before  # bit for bit: nothing was rewritten
    copy = delta.apply(index)
    assert stored(copy) == before
    assert delta.revert(index) == 0
    assert stored(index) == before


@pytest.mark.parametrize("kind", ["llama-index", "langchain", "faiss"])
def test_revert_restores_bit_for_bit_in_the_store_dtype(kind):
    from nudge_rag.stores import adapt

    from .writers import index_pair

    obj, _ = index_pair(kind)
    adapter = adapt(obj)
    ids = sorted(DOCS)
    found, before = adapter.fetch(ids)
    delta = EmbeddingFinetuner(obj, gamma=0.3, show_progress=False).fit(QUESTIONS)
    delta.apply(obj, inplace=True)
    assert delta.revert(obj) == len(delta)
    found2, after = adapt(obj).fetch(ids)
    assert found2 == found
    assert after.dtype == before.dtype and np.array_equal(after, before)


def test_revert_and_apply_say_what_they_did(work, capsys):
    index, delta = work / "index", work / "delta"
    assert run("revert", index, delta) == 0
    assert "0 records changed" in capsys.readouterr().out
    assert run("apply", index, delta, "--inplace", "--no-backup") == 0
    out = capsys.readouterr().out
    moved = len(NudgeDelta.load(delta).ids)
    assert f"applied {moved}" in out or "records changed" in out
    assert run("apply", index, delta, "--inplace", "--no-backup") == 0
    assert "0 records changed: " in capsys.readouterr().out
    assert run("revert", index, delta) == 0
    assert "restored the original vectors of" in capsys.readouterr().out
    assert run("revert", index, delta) == 0
    out = capsys.readouterr().out
    assert "0 records changed" in out and "already holds the original vectors" in out


def test_messages_do_not_claim_vectors_another_delta_wrote(work, capsys):
    """Delta A applied in place, then delta B (fitted on the original index, another γ):
    B finds its records holding neither its original nor its nudged vectors and leaves them
    alone. It used to add "index already holds the nudged vectors" (for apply) and "already
    holds the original vectors" (for revert), neither of which was true."""
    index, a, b = work / "index", work / "delta", work / "delta-b"
    assert run("fit", index, work / "train.jsonl", "-o", b, "--gamma", 0.21,
               "--no-progress") == 0
    assert run("apply", index, a, "--inplace", "--no-backup") == 0
    capsys.readouterr()
    for command in ("apply", "revert"):
        extra = ("--inplace", "--no-backup") if command == "apply" else ()
        assert run(command, index, b, *extra) == 0
        out = capsys.readouterr().out
        assert "0 records changed" in out and "already holds" not in out, out
        assert "left alone" in out and str(len(NudgeDelta.load(b))) in out, out
    assert run("revert", index, a) == 0
    assert "restored the original vectors of" in capsys.readouterr().out


def test_eval_labels_say_what_was_measured(work, capsys):
    assert run("eval", work / "index", work / "delta", work / "test.jsonl") == 0
    fresh = capsys.readouterr().out
    assert run("apply", work / "index", work / "delta", "--inplace", "--no-backup") == 0
    capsys.readouterr()
    assert run("eval", work / "index", work / "delta", work / "test.jsonl") == 0
    nudged = capsys.readouterr().out
    header = next(line for line in nudged.splitlines() if line.startswith("metric"))
    assert "original" in header and "nudged" in header and "before" not in header
    assert "already holds the nudged vectors" in nudged
    # the numbers are the same: both columns are computed from the delta, not the index
    assert fresh.splitlines()[-4:] == nudged.splitlines()[-4:]


# -- the model fingerprint ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def langchain_copy(project, tmp_path_factory):
    """The project's index as a LangChain InMemoryVectorStore of the same local model."""
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from nudge_rag.cli.indexes import load_index
    from nudge_rag.local import langchain_embeddings

    loaded = load_index(project / "index")
    emb = loaded.obj.vector_store.data.embedding_dict
    store = InMemoryVectorStore(langchain_embeddings())
    for i, text in loaded.chunks():
        store.store[i] = {"id": i, "vector": list(emb[i]), "text": text, "metadata": {}}
    path = tmp_path_factory.mktemp("lc") / "store.json"
    store.dump(str(path))
    return path


def test_a_delta_fitted_through_langchain_applies_to_llamaindex(work, langchain_copy, capsys):
    assert run("fit", langchain_copy, work / "train.jsonl", "-o", work / "lc-delta",
               "--val", work / "val.jsonl", "--no-progress") == 0
    assert run("apply", work / "index", work / "lc-delta", "-o", work / "nudged") == 0
    assert run("eval", work / "index", work / "lc-delta", work / "test.jsonl") == 0
    model = json.loads((work / "lc-delta" / "delta.json").read_text())["model"]
    assert "class" not in model and model["name"] == "all-MiniLM-L6-v2" and model["probe"]


def test_a_model_that_computes_something_else_is_refused(work):
    """Same name, same dimension, other embeddings: the probe text tells them apart."""
    from llama_index.core import StorageContext, load_index_from_storage

    from tests.fakes import CountingLlamaEmbedding

    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "d", "--gamma", "0.1",
               "--no-progress") == 0  # questions embedded here: the probe is recorded
    delta = NudgeDelta.load(work / "d")
    impostor = CountingLlamaEmbedding(dim=384, model_name="all-MiniLM-L6-v2")
    storage = StorageContext.from_defaults(persist_dir=str(work / "index"))
    index = load_index_from_storage(storage, embed_model=impostor)
    with pytest.raises(MismatchError, match="probe") as exc:
        delta.apply(index)
    assert "all-MiniLM-L6-v2" in str(exc.value)


def test_old_fingerprints_still_load_and_compare_by_name(work, capsys):
    from .tampering import edit_meta

    def old_style(meta):
        meta["model"] = {"class": "LocalEmbeddings", "name": "all-MiniLM-L6-v2", "dim": 384}
        return meta

    edit_meta(work / "delta", old_style)
    assert run("apply", work / "index", work / "delta", "-o", work / "nudged") == 0

    def other_name(meta):
        meta["model"] = {"class": "LocalEmbedding", "name": "bge-small-en", "dim": 384}
        return meta

    edit_meta(work / "delta", other_name)
    assert run("apply", work / "index", work / "delta", "-o", work / "nudged2") == 1
    one_line_error(capsys, "bge-small-en", "all-MiniLM-L6-v2")


def test_a_model_that_cannot_embed_the_probe_is_refused():
    """No name on either side (LlamaIndex's placeholder 'unknown') and an index whose model
    cannot embed (MockEmbedding): the delta's probe cannot be matched, so it is refused."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import TextNode

    from tests.fakes import hashed_embedding

    delta = EmbeddingFinetuner(small_index(), gamma=0.2, show_progress=False).fit(QUESTIONS)
    assert delta.model["name"] is None and delta.model["probe"]
    nodes = [TextNode(id_=k, text=t, embedding=hashed_embedding(t, 64))
             for k, (t, _) in DOCS.items()]
    twin = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=64))
    with pytest.raises(MismatchError, match="cannot embed the probe"):
        delta.apply(twin)
    assert delta.apply(twin, allow_model_mismatch=True) is not twin
