"""Bad input and faults on real databases: each gets a clear error and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import BUILDERS, PACKAGES, problem

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


@pytest.fixture(scope="module")
def prob():
    return problem()


def _build(name, path, prob):
    for module in PACKAGES[name]:
        pytest.importorskip(module)
    return BUILDERS[name](path, prob)


@pytest.fixture(params=sorted(BUILDERS))
def built(request, tmp_path, prob):
    obj, counter = _build(request.param, tmp_path / "db", prob)
    return request.param, obj, counter


def _vectors(obj, ids):
    from nudge_rag.stores import adapt

    return adapt(obj).fetch(ids)[1]


def _finetuner(obj):
    from nudge_rag import EmbeddingFinetuner

    return EmbeddingFinetuner(obj, show_progress=False, memory=False)


def test_connection_refused_is_a_store_error():
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from nudge_rag.errors import StoreError
    from nudge_rag.stores.qdrant import QdrantAdapter

    class BareCollection(QdrantAdapter):
        """The shared collection adapter alone, without a framework's documents or nodes."""

        def payloads(self, ids):
            return [None] * len(ids)

    client = QdrantClient(url="http://127.0.0.1:9", timeout=2)  # nothing listens there
    with pytest.raises(StoreError, match="running and reachable"):
        BareCollection(client, "docs")


def test_database_going_away_mid_fit(built, prob):
    from nudge_rag.errors import StoreError

    name, obj, counter = built
    before = _vectors(obj, prob.ids)
    method = {"chroma": "query", "milvus": "search"}.get(name.split("-")[0],
                                                         "query_batch_points")
    counter.fail_on = {method: ConnectionError("connection reset by peer")}
    with pytest.raises(StoreError, match="failed while searching.*reachable"):
        _finetuner(obj).fit(prob.train, prob.val)
    counter.fail_on = {}
    np.testing.assert_array_equal(_vectors(obj, prob.ids), before)


def test_ids_the_store_lacks(built, prob):
    from nudge_rag.errors import InputError

    name, obj, counter = built
    absent = "ffffffff-ffff-ffff-ffff-ffffffffffff"
    bad = [*prob.train, (prob.train[0][0], {absent: 1.0, "not-a-uuid": 1.0})]
    with pytest.raises(InputError, match="2 record id.*not in the"):
        _finetuner(obj).fit(bad, prob.val)


def test_collection_of_another_dimension(built, prob, tmp_path):
    from nudge_rag.errors import MismatchError

    name, obj, counter = built
    delta = _finetuner(obj).fit(prob.train, prob.val)
    other = problem(dim=8)
    other_obj, _ = _build(name, tmp_path / "other", other)
    before = _vectors(other_obj, other.ids)
    with pytest.raises(MismatchError, match="16-d vectors but the .* holds 8-d"):
        delta.apply(other_obj, inplace=True)
    with pytest.raises(MismatchError, match="dimension 16 but the .* holds 8-d"):
        _finetuner(other_obj).fit([(q, {other.ids[0]: 1.0}) for q, _ in prob.train[:5]],
                                  [(q, {other.ids[1]: 1.0}) for q, _ in prob.val[:3]])
    np.testing.assert_array_equal(_vectors(other_obj, other.ids), before)


def test_write_refused_suggests_the_overlay(built, prob):
    from nudge_rag.errors import StoreError

    name, obj, counter = built
    delta = _finetuner(obj).fit(prob.train, prob.val)
    before = _vectors(obj, prob.ids)

    method = {"chroma": "update", "milvus": "upsert"}.get(name.split("-")[0], "update_vectors")
    counter.fail_on = {method: PermissionError("this API key may only read")}
    with pytest.raises(StoreError, match="overlay retriever"):
        delta.apply(obj, inplace=True)
    # the overlay it suggests works on the read-only store
    from nudge_rag.overlay import Overlay

    hits = Overlay(obj, delta).search(prob.val[0][0], 5)
    assert len(hits) == 5
    counter.fail_on = {}
    np.testing.assert_array_equal(_vectors(obj, prob.ids), before)
