"""Issue 16: one split. ``nudge-rag fit`` holds out its validation questions through the
finetuner, so the command and the API choose γ on the same questions."""

from __future__ import annotations

from nudge_rag import EmbeddingFinetuner, NudgeDelta
from nudge_rag.cli.indexes import load_index
from nudge_rag.questions import QuestionSet

from .conftest import run


def test_fit_holds_out_validation_as_the_finetuner_does(work, tmp_path):
    lines = (work / "train.jsonl").read_text().splitlines()
    for n in (4, 30):  # 4: 10 % rounds to no question, and one is held out all the same
        path = tmp_path / f"q{n}.jsonl"
        path.write_text("\n".join(lines[:n]) + "\n")
        # the paper's protocol holds validation questions out (the default cross-validates)
        assert run("fit", work / "index", path, "-o", tmp_path / f"d{n}", "--seed", 2,
                   "--selection", "validation", "--no-progress") == 0
        by_command = NudgeDelta.load(tmp_path / f"d{n}")
        loaded = load_index(work / "index")
        by_api = EmbeddingFinetuner(loaded.obj, seed=2, selection="validation",
                                    show_progress=False).fit(QuestionSet.from_jsonl(path))
        assert by_command.questions == by_api.questions  # the same training questions
        assert by_command.fit_report["n_val_questions"] == \
            by_api.fit_report["n_val_questions"] >= 1
        assert by_command.gamma == by_api.gamma and by_command.ids == by_api.ids
