"""Issue 11, data loss 2: no NaN or infinite vector ever reaches a store.

A γ whose vectors overflow float32 is refused at fit; a delta holding NaN/inf (checksum
recomputed, so only the values tell) is refused on load and, built in memory, before apply
writes anything. Values too large to square are reported as too large."""

from __future__ import annotations

import numpy as np
import pytest

from nudge_rag import EmbeddingFinetuner, NudgeDelta, NudgeM, NudgeN
from nudge_rag.errors import InputError
from tests.conftest import clustered_problem

from .helpers import make_delta
from .tampering import read_arrays, write_arrays


def test_a_gamma_that_overflows_float32_is_refused():
    docs, tq, tr, _, _ = clustered_problem(n=120, n_train=40)
    with pytest.raises(InputError, match="float32") as exc:
        NudgeM(gamma=1e40).fit(docs, tq, tr)
    assert "gamma=1e+40" in str(exc.value) or "gamma=1e40" in str(exc.value)
    # the largest γ that fits still works and stays finite
    ok = NudgeM(gamma=1e30).fit(docs, tq, tr)
    assert np.isfinite(ok.vectors_).all()


def test_an_overflowing_gamma_is_refused_by_the_finetuner():
    """On an inner-product FAISS store (where NUDGE-M belongs): refused, store unchanged."""
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    from tests.fakes import CountingLangChainEmbeddings, hashed_embedding
    from tests.small_corpus import DOCS, QUESTIONS

    store = FAISS.from_embeddings([(t, hashed_embedding(t, 64)) for t, _ in DOCS.values()],
                                  CountingLangChainEmbeddings(dim=64), ids=list(DOCS),
                                  distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    before = store.index.reconstruct_n(0, store.index.ntotal).copy()
    with pytest.raises(InputError, match="float32"):
        EmbeddingFinetuner(store, method="nudge-m", gamma=1e40, show_progress=False) \
            .fit(QUESTIONS)
    assert np.array_equal(store.index.reconstruct_n(0, store.index.ntotal), before)


@pytest.mark.parametrize("field", ["vectors", "original", "sums"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_refuses_non_finite_values(tmp_path, field, bad):
    path = make_delta().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays[field][3, 1] = bad
    write_arrays(path, arrays)  # the checksum matches: only the values are wrong
    with pytest.raises(InputError, match=f"{field}.*rec-0-3") as exc:
        NudgeDelta.load(path)
    assert str(path) in str(exc.value)


def test_apply_refuses_non_finite_vectors_before_writing():
    pytest.importorskip("llama_index.core")
    from tests.integrations.test_llama_index import small_index
    from tests.small_corpus import QUESTIONS

    index, _ = small_index()
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    delta.vectors[-1, 0] = np.nan  # changed in memory after the fit
    before = {k: list(v) for k, v in index.vector_store.data.embedding_dict.items()}
    for inplace in (True, False):
        with pytest.raises(InputError, match="NaN"):
            delta.apply(index, inplace=inplace)
    assert index.vector_store.data.embedding_dict == before


def test_huge_rows_are_reported_as_too_large():
    docs, tq, tr, vq, vr = clustered_problem(n=120, n_train=40)
    for name, args in (("doc_emb", (docs * 1e200, tq, tr)),
                       ("train_q", (docs, tq * 1e200, tr))):
        with pytest.raises(InputError, match="too large") as exc:
            NudgeN(gamma=0.1).fit(*args)
        assert "NaN" not in str(exc.value) and name in str(exc.value)
    docs[5, 2] = np.nan
    with pytest.raises(InputError, match="row 5 contains NaN"):
        NudgeN(gamma=0.1).fit(docs, tq, tr)


def test_revert_repairs_records_a_broken_apply_left_non_finite():
    """A store that an older version filled with inf (γ = 1e40 was accepted then): revert
    writes the original vectors back instead of skipping them as re-embedded."""
    pytest.importorskip("llama_index.core")
    from tests.integrations.test_llama_index import small_index
    from tests.small_corpus import QUESTIONS

    index, _ = small_index()
    before = {k: list(v) for k, v in index.vector_store.data.embedding_dict.items()}
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    emb = index.vector_store.data.embedding_dict
    emb["cats"] = [float("inf")] * len(emb["cats"])
    emb["dogs"] = [float("nan")] * len(emb["dogs"])
    assert delta.revert(index) == 2
    assert {k: list(v) for k, v in emb.items()} == before


def test_vectors_beyond_float32_are_refused_before_any_write(tmp_path):
    """Nudged vectors changed in memory to values float32 cannot hold (1e39): finite in
    float64, inf once a FAISS index or the delta's own file keeps them. apply refuses before
    writing, and save refuses rather than write a delta that load would refuse (review of
    issue 11: both used to go through)."""
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from tests.small_corpus import QUESTIONS

    from .writers import index_pair

    store, _ = index_pair("faiss")
    delta = EmbeddingFinetuner(store, gamma=0.3, show_progress=False).fit(QUESTIONS)
    delta.vectors = delta.vectors.astype(np.float64)
    delta.vectors[2, 5] = 1e39
    before = store.index.reconstruct_n(0, store.index.ntotal).copy()
    for inplace in (True, False):
        with pytest.raises(InputError, match="too large") as exc:
            delta.apply(store, inplace=inplace)
        assert "float32" in str(exc.value) and delta.ids[2] in str(exc.value)
    assert np.array_equal(store.index.reconstruct_n(0, store.index.ntotal), before)
    with pytest.raises(InputError, match="too large"):
        delta.save(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def _memory_store(vector_of=None):
    """The small corpus in a LangChain in-memory store, one record's vector changed."""
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from tests.fakes import CountingLangChainEmbeddings, hashed_embedding
    from tests.small_corpus import DOCS

    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=64))
    for key, (text, _) in DOCS.items():
        vector = hashed_embedding(text, 64)
        if vector_of and key in vector_of:
            vector = vector_of[key](np.asarray(vector)).tolist()
        store.store[key] = {"id": key, "vector": vector, "text": text, "metadata": {}}
    return store


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("gamma", [0.2, None])
def test_a_store_holding_nan_is_named_not_gamma(bad, gamma):
    """A record the store holds as NaN/inf: the fit says so and names the record (it used
    to blame γ: "gamma=0.2 moves records so far that their vectors do not fit in float32
    (largest value nan)")."""
    from tests.small_corpus import QUESTIONS

    store = _memory_store({"dogs": lambda v: v + bad})
    with pytest.raises(InputError) as exc:
        EmbeddingFinetuner(store, gamma=gamma, show_progress=False).fit(QUESTIONS)
    assert "'dogs'" in str(exc.value) and "NaN or inf" in str(exc.value)
    assert "gamma" not in str(exc.value)


def test_question_embeddings_too_large_are_reported():
    """Question vectors of 1e200 (too large to square): reported as too large, not turned
    silently into zero vectors that move nothing."""
    from nudge_rag.questions import QuestionSet
    from tests.fakes import hashed_embedding
    from tests.small_corpus import QUESTIONS

    store = _memory_store()
    qs = QuestionSet.from_pairs(QUESTIONS)
    emb = np.array([hashed_embedding(text, 64) for text, _ in QUESTIONS])
    assert EmbeddingFinetuner(store, gamma=0.2, show_progress=False) \
        .fit(qs.with_embeddings(emb)).moved.any()
    with pytest.raises(InputError, match="too large") as exc:
        EmbeddingFinetuner(store, gamma=0.2, show_progress=False) \
            .fit(qs.with_embeddings(emb * 1e200))
    assert "train_questions" in str(exc.value) and "NaN" not in str(exc.value)
