"""Review of issue 13: a saved query memory whose keys are not unit vectors."""

import pytest

from nudge_rag.errors import InputError


@pytest.mark.parametrize("scale", [0.0, 100.0])
def test_a_delta_with_non_unit_memory_keys_is_refused(tmp_path, scale):
    # the memory scores α·q·t̂ with unit keys; a file whose keys are scaled (checksum redone)
    # loaded, and one key ×100 lifted its records to the top of every query
    from nudge_rag import NudgeDelta

    from .tampering import read_arrays, write_arrays
    from .test_memory_format import with_memory

    path = with_memory().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays["memory_keys"][2] *= scale
    write_arrays(path, arrays)
    with pytest.raises(InputError, match="memory_keys"):
        NudgeDelta.load(path)


def test_report_does_not_say_a_fixed_gamma_and_alpha_were_chosen():
    # with gamma and alpha both given nothing is chosen, yet the first line said
    # "gamma=0.1, alpha=0.9 (chosen by ndcg@10)"
    import dataclasses

    from .test_memory_format import with_memory

    delta = dataclasses.replace(with_memory(), gamma=0.1, fit_report={
        "gamma": 0.1, "alpha": 0.9, "n_train_questions": 7, "n_val_questions": 0})
    first = delta.report().splitlines()[0]
    assert "chosen" not in first and "fixed" in first


def test_the_docs_do_not_promise_that_memory_false_keeps_no_question_vectors():
    # a delta fitted with memory=False still keeps each record's sum of question vectors
    # (update() needs them); for a record that one question names, the sum IS that
    # question's vector. The privacy notes said memory=False "keeps none".
    from pathlib import Path

    import numpy as np

    from nudge_rag import EmbeddingFinetuner
    from tests.conftest import clustered_problem

    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from tests.fakes import CountingLangChainEmbeddings

    docs, tq, tr, _, _ = clustered_problem(2, n=80, d=8, n_train=30, n_val=0)
    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=8))
    for i, v in enumerate(docs):
        store.store[f"r{i}"] = {"id": f"r{i}", "vector": v.tolist(), "text": "", "metadata": {}}
    questions = [(q, {f"r{r}": g for r, g in rel.items()}) for q, rel in zip(tq, tr)]
    delta = EmbeddingFinetuner(store, memory=False, gamma=0.2, show_progress=False).fit(questions)
    assert delta.n_memory == 0
    one = np.flatnonzero(delta.counts == 1)
    unit_q = tq / np.linalg.norm(tq, axis=1, keepdims=True)
    sums = delta.sums[one] / np.linalg.norm(delta.sums[one], axis=1, keepdims=True)
    assert len(one) and np.all((sums @ unit_q.T).max(axis=1) > 0.9999)
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/concepts.md"):
        text = " ".join((root / doc).read_text().split())
        assert "keeps none" not in text and "per-record question sums" in text, doc


def test_report_says_when_gamma_was_fixed_and_alpha_alone_chosen():
    # gamma given, alpha searched: the header said both were "chosen by ndcg@10"
    from nudge_rag import NudgeN
    from tests.conftest import clustered_problem

    docs, tq, tr, vq, vr = clustered_problem(0)
    fixed = NudgeN(gamma=0.1).fit(docs, tq, tr, vq, vr)
    chosen = NudgeN().fit(docs, tq, tr, vq, vr)
    assert fixed.report_["gamma_fixed"] and not chosen.report_["gamma_fixed"]
    import dataclasses

    from .test_memory_format import with_memory

    base = with_memory()
    report = dict(fixed.report_, n_train_questions=len(tq))
    first = dataclasses.replace(base, gamma=0.1, fit_report=report).report().splitlines()[0]
    assert "gamma fixed, alpha chosen by" in first
    report = dict(chosen.report_, n_train_questions=len(tq))
    first = dataclasses.replace(base, fit_report=report).report().splitlines()[0]
    assert "gamma fixed" not in first and "chosen by" in first
