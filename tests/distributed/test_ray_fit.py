"""The array engine on Ray, on SciFact (5,183 records, all-MiniLM-L6-v2) cut into shards of
both kinds and into a Ray Dataset: the fit equals the in-process fit on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from nudge_rag import NudgeM, NudgeN

pytestmark = pytest.mark.slow


def _same_fit(got, want):
    assert got.gamma_ == want.gamma_
    np.testing.assert_array_equal(got.rows_, want.rows_)
    np.testing.assert_array_equal(got.vectors_, want.vectors_)
    assert got.report_ == want.report_


def _write_shards(docs, folder, cuts, kinds):
    """``docs`` cut at ``cuts``, each piece a .npy or a Parquet file (fixed-size lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for i, (part, kind) in enumerate(zip(np.split(docs, cuts), kinds)):
        path = folder / f"shard-{i:02d}.{kind}"
        if kind == "npy":
            np.save(path, part)
        else:
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), part.shape[1])
            pq.write_table(pa.table({"id": np.arange(len(part)), "embedding": vectors}), path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def scifact(scifact_split):
    return scifact_split


@pytest.mark.parametrize("estimator", [NudgeN, NudgeM])
def test_shard_files_equal_the_in_process_fit(ray_local, scifact, tmp_path, estimator):
    from nudge_rag.ray_fit import fit_shards

    s = scifact
    docs = s.doc_emb.astype(np.float32)
    want = estimator().fit(docs, s.train_q, s.train_rel, s.val_q, s.val_rel)
    # uneven shards, both formats, one shard without any moved record or relevant one
    paths = _write_shards(docs, tmp_path, [700, 2000, 2001, 3900], ["npy", "parquet", "npy",
                                                                    "parquet", "npy"])
    got = fit_shards(estimator(), paths, s.train_q, s.train_rel, s.val_q, s.val_rel)
    _same_fit(got, want)
    assert got.report_["after"]["ndcg@10"] > got.report_["before"]["ndcg@10"]


def test_ray_dataset_and_fixed_gamma(ray_local, scifact):
    from nudge_rag.ray_fit import fit_shards

    s = scifact
    docs = s.doc_emb.astype(np.float32)
    dataset = ray_local.data.from_numpy(np.array_split(docs, 4))
    got = fit_shards(NudgeN(), dataset, s.train_q, s.train_rel, s.val_q, s.val_rel)
    _same_fit(got, NudgeN().fit(docs, s.train_q, s.train_rel, s.val_q, s.val_rel))
    fixed = fit_shards(NudgeN(gamma=0.1), dataset, s.train_q, s.train_rel)
    _same_fit(fixed, NudgeN(gamma=0.1).fit(docs, s.train_q, s.train_rel))
    # the caller's groups choose the folds, as in process
    groups = [f"claim-{i // 3}" for i in range(len(s.train_q))]
    grouped = fit_shards(NudgeN(), dataset, s.train_q, s.train_rel, s.val_q, s.val_rel, groups)
    _same_fit(grouped, NudgeN().fit(docs, s.train_q, s.train_rel, s.val_q, s.val_rel, groups))


def test_records_not_unit_norm(ray_local, scifact, tmp_path):
    """One shard scaled: the in-process fit then scores every record by cosine with inverse
    norms, and so must every shard's scan, including the unit-norm ones."""
    from nudge_rag.ray_fit import fit_shards

    s = scifact
    docs = s.doc_emb.astype(np.float32).copy()
    docs[3000:] *= 3.0
    paths = _write_shards(docs, tmp_path, [3000], ["npy", "npy"])
    got = fit_shards(NudgeN(), paths, s.train_q, s.train_rel, s.val_q, s.val_rel)
    _same_fit(got, NudgeN().fit(docs, s.train_q, s.train_rel, s.val_q, s.val_rel))


def test_bad_shards_get_clear_errors(ray_local, scifact, tmp_path):
    from nudge_rag.errors import InputError
    from nudge_rag.ray_fit import fit_shards

    s = scifact
    docs = s.doc_emb[:100].astype(np.float32).copy()
    with pytest.raises(InputError, match="list of shard files"):
        fit_shards(NudgeN(), str(tmp_path), s.train_q, s.train_rel)
    with pytest.raises(InputError, match="does not exist"):
        fit_shards(NudgeN(), [str(tmp_path / "nope.npy")], s.train_q, s.train_rel)
    docs[57] = np.nan
    paths = _write_shards(docs, tmp_path, [50], ["npy", "npy"])
    train_rel = [{0: 1.0}] * 3
    with pytest.raises(InputError, match="row 7 contains NaN.*global row 50"):
        fit_shards(NudgeN(selection="validation"), paths, s.train_q[:3], train_rel, s.val_q[:2],
                   [{1: 1.0}] * 2)
    with pytest.raises(InputError, match="train_rel"):
        fit_shards(NudgeN(), paths, s.train_q[:3], [{500: 1.0}] * 3, s.val_q[:2],
                   [{1: 1.0}] * 2)


def test_without_ray_the_error_names_the_extra(monkeypatch, scifact):
    import builtins

    from nudge_rag.errors import InputError
    from nudge_rag.ray_fit import fit_shards

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r"nudge-rag\[ray\]"):
        fit_shards(NudgeN(), ["a.npy"], scifact.train_q, scifact.train_rel)


def test_questions_embedded_in_ray_tasks_equal_in_process(ray_local, scifact_texts):
    """A LangChain embedding model (a deterministic hashed one: loading a real model in each
    Ray worker costs a minute on a busy 2-core machine) shipped to Ray tasks, four parts of
    uneven sizes over the two workers: the same vectors, in the same order, as embedding in
    this process."""
    from nudge_rag.embedding import embed_queries
    from nudge_rag.ray_fit import embed_questions
    from tests.fakes import CountingLangChainEmbeddings

    texts = [scifact_texts.queries[q] for q in sorted(scifact_texts.queries)[:100]]
    model = CountingLangChainEmbeddings(dim=32)
    got = embed_questions(texts, model, batch_size=16, part_size=30)
    np.testing.assert_array_equal(got, embed_queries(model, texts, 16))
    assert model.calls["query"] == 100  # embed_queries here; the tasks used copies
    # a factory is called in each task, with the device Ray gave it (none here)
    seen = embed_questions(texts[:4], lambda device: _Tagged(device), part_size=2)
    np.testing.assert_array_equal(seen, np.zeros((4, 1)))


class _Tagged:
    """A stand-in model that embeds every text as [0] when built for the CPU."""

    def __init__(self, device):
        self.value = 0.0 if device is None else 1.0

    def embed_query(self, text):
        return [self.value]
