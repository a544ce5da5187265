"""One method type from the user's string through the engine into a saved delta and back."""

import json

import numpy as np
import pytest

from nudge_rag import InputError, NudgeDelta, NudgeM, NudgeN
from nudge_rag.core.method import Method

from ..conftest import clustered_problem


def test_parse_accepts_the_names_users_write():
    assert Method.parse("nudge-n") is Method.N
    assert Method.parse(" NUDGE-M ") is Method.M
    assert Method.parse(Method.N) is Method.N
    for bad in ("n", "m", "nudge", None, 3):
        with pytest.raises(InputError, match=r"method=.* is unknown; use 'nudge-n'"):
            Method.parse(bad)


def test_it_reads_and_writes_as_its_name():
    assert Method.M == "nudge-m" and str(Method.M) == "nudge-m" and f"{Method.N}" == "nudge-n"
    assert json.dumps({"method": Method.N}) == '{"method": "nudge-n"}'
    assert repr(Method.M) == "'nudge-m'"


def test_estimators_report_the_same_type():
    docs, tq, tr, vq, vr = clustered_problem(1)
    assert NudgeN().fit(docs, tq, tr, vq, vr).report_["method"] is Method.N
    assert NudgeM().fit(docs, tq, tr, vq, vr).report_["method"] is Method.M


def _delta(method):
    vecs = np.eye(3)[:2]
    return NudgeDelta(ids=["a", "b"], vectors=vecs, original=vecs, sums=vecs,
                      counts=np.array([1, 2]), method=method, gamma=0.2, metric="ndcg@10",
                      similarity="dot", dim=3)


def test_saved_deltas_keep_their_name_on_disk_and_load_as_the_type(tmp_path):
    delta = _delta("nudge-m")
    assert delta.method is Method.M
    assert "method='nudge-m'" in repr(delta)
    path = delta.save(tmp_path / "delta")
    meta = json.loads((path / "delta.json").read_text())
    assert meta["method"] == "nudge-m"  # what every saved delta holds
    assert NudgeDelta.load(path).method is Method.M


def test_a_delta_with_an_unknown_method_is_refused():
    with pytest.raises(InputError, match="method='nudge-q'"):
        _delta("nudge-q")
