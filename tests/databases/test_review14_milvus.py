"""Review of the Milvus adapter remembering that its collection holds records: a collection
emptied behind an adapter that saw records must still be refused clearly, as a fresh adapter
on an empty collection is."""

from __future__ import annotations

import pytest

from nudge_rag import EmbeddingFinetuner, MismatchError, StoreError
from tests.databases.builders import milvus_langchain, problem

pytest.importorskip("milvus_lite")
pytest.importorskip("langchain_milvus")

#: what each call on an empty collection raises: the finetuner counts the records first;
#: a delta finds none of its records
CALLS = {
    "fit": (StoreError, "holds no vectors", lambda ft, p, d, a: ft.fit(p.train, p.val)),
    "evaluate": (StoreError, "holds no vectors", lambda ft, p, d, a: ft.evaluate(p.val, d)),
    "update": (StoreError, "holds no vectors", lambda ft, p, d, a: ft.update(d, p.val)),
    "apply": (MismatchError, "none of this delta's",
              lambda ft, p, d, a: d.apply(a, inplace=True)),
    "copy": (MismatchError, "none of this delta's",
             lambda ft, p, d, a: d.apply(a, copy_name="docs_copy")),
    "revert": (MismatchError, "none of this delta's", lambda ft, p, d, a: d.revert(a)),
}


@pytest.mark.parametrize("fresh", [False, True], ids=["adapter-that-saw-records", "fresh"])
def test_a_collection_emptied_after_a_fit_is_refused_clearly(tmp_path, fresh):
    from nudge_rag.stores import adapt

    prob = problem()
    obj, counter = milvus_langchain(tmp_path / "db", prob)
    adapter = adapt(obj)
    delta = EmbeddingFinetuner(adapter, show_progress=False, memory=False).fit(prob.train,
                                                                               prob.val)
    counter.delete("docs", ids=prob.ids)
    if fresh:
        adapter = adapt(obj)
    assert adapter.count() == 0
    again = EmbeddingFinetuner(adapter, show_progress=False, memory=False)
    for error, message, call in CALLS.values():
        with pytest.raises(error, match=message):
            call(again, prob, delta, adapter)
    found, rows = adapter.fetch(prob.ids[:3])
    assert found == [] and len(rows) == 0
