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


def test_the_benchmark_refills_a_kept_collection_built_with_another_index(tmp_path):
    # ``benchmarks/milvus.py --keep DIR`` reuses the size's collection; a folder kept from a
    # run with another index (before the IVF_FLAT sizing rule, nlist=1024 at every size) was
    # reused as it was, so the table reported one index and measured another. milvus-lite 3
    # reports only the index type and metric, so another type stands in for another nlist
    from pymilvus import MilvusClient

    from benchmarks.milvus import INDEX, cpp_index, load
    from tests.databases.builders import milvus_uri

    uri = milvus_uri(tmp_path / "db")
    assert load(uri, 300, 8, cpp_index(300), wait=False)["load_s"] is not None
    assert load(uri, 300, 8, cpp_index(300), wait=False)["load_s"] is None  # kept as it is
    assert load(uri, 300, 8, INDEX, wait=False)["load_s"] is not None  # filled again
    client = MilvusClient(uri=uri)
    assert client.describe_index("docs_300", "embedding")["index_type"] == "HNSW"
    held = client.query("docs_300", filter="", output_fields=["count(*)"],
                        consistency_level="Strong")
    assert held[0]["count(*)"] == 300
