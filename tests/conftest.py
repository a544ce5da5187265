import numpy as np
import pytest

from nudge_rag.datasets import DATA_ENV, data_root


def dataset_dir(name: str):
    root = data_root()
    if root is None or not (root / name / "corpus.jsonl").is_file():
        pytest.skip(f"real dataset {name!r} not found: set ${DATA_ENV} or place BEIR data at "
                    "../shared/data")
    return root / name


@pytest.fixture(scope="session")
def scifact_split():
    from nudge_rag.datasets import load_split

    return load_split(dataset_dir("scifact"))


@pytest.fixture(scope="session")
def cranfield_split():
    from nudge_rag.datasets import load_split

    return load_split(dataset_dir("cranfield"))


def clustered_problem(seed=0, n=400, d=16, n_train=120, n_val=40, noise=0.25, shift=0.3,
                      multi=False):
    """A small retrieval problem shaped like real ones. Questions about a record share a
    record-specific offset from it (the gap between how documents are written and how people
    ask), plus noise of their own; each names one (or, with ``multi``, up to three) records.
    Un-nudged retrieval is imperfect, and learning the offsets from training questions helps
    validation questions, as on real data."""
    rng = np.random.default_rng(seed)
    docs = rng.standard_normal((n, d))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    offsets = shift * rng.standard_normal((n, d))

    def questions(m):
        rel, qs = [], []
        for _ in range(m):
            k = int(rng.integers(1, 4)) if multi else 1
            rows = rng.choice(n, size=k, replace=False)
            q = (docs[rows] + offsets[rows]).sum(0) + noise * rng.standard_normal(d)
            qs.append(q)
            rel.append({int(r): float(rng.integers(1, 3)) if multi else 1.0 for r in rows})
        return np.array(qs), rel

    tq, tr = questions(n_train)
    # validation questions reuse training answers so that nudging can help
    vq, vr = [], []
    for _ in range(n_val):
        j = int(rng.integers(n_train))
        rows = list(tr[j])
        vq.append((docs[rows] + offsets[rows]).sum(0) + noise * rng.standard_normal(d))
        vr.append(dict(tr[j]))
    return docs, tq, tr, np.array(vq), vr
