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
