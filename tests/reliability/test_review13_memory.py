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
