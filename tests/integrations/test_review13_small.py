"""Review of issue 13: a small training set gets fewer folds through the finetuner, as it
does on arrays (``fold_labels_at_most``), instead of an error from the default settings."""

import pytest

pytest.importorskip("llama_index.core")

from nudge_rag import EmbeddingFinetuner  # noqa: E402
from tests.small_corpus import QUESTIONS  # noqa: E402

from .test_llama_index import small_index  # noqa: E402


def test_three_training_questions_get_three_folds():
    index, _ = small_index()
    delta = EmbeddingFinetuner(index, show_progress=False).fit(QUESTIONS[:3], QUESTIONS[3:5])
    assert delta.fit_report["estimate"] == "cross-validated"
    assert delta.fit_report["folds"] == 3


def test_one_training_question_is_chosen_on_validation_alone():
    index, _ = small_index()
    delta = EmbeddingFinetuner(index, show_progress=False).fit(QUESTIONS[:1], QUESTIONS[3:5])
    assert delta.fit_report["estimate"] == "validation" and delta.fit_report["folds"] == 0
