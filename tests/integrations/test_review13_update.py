"""Review of issue 13: ``update`` honours the finetuner's ``memory=False``."""

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from nudge_rag import EmbeddingFinetuner  # noqa: E402
from tests.small_corpus import QUESTIONS  # noqa: E402

from .test_llama_index import small_index  # noqa: E402


def test_update_with_memory_false_keeps_no_question_vectors():
    # memory=False keeps none (issue 13), yet an update of a delta that had a memory kept
    # the old question vectors and added the new ones
    index, _ = small_index()
    first, second = QUESTIONS[:6], QUESTIONS[6:]
    delta = EmbeddingFinetuner(index, gamma=0.25, alpha=0.9, show_progress=False).fit(first)
    assert delta.n_memory == 6
    updated = EmbeddingFinetuner(index, memory=False, show_progress=False).update(delta, second)
    assert updated.n_memory == 0 and updated.alpha == 0 and len(updated.memory_keys) == 0
    plain = EmbeddingFinetuner(index, gamma=0.25, memory=False,
                               show_progress=False).fit(QUESTIONS)
    assert updated.ids == plain.ids and updated.gamma == plain.gamma
    np.testing.assert_allclose(updated.vectors, plain.vectors, atol=1e-6)
