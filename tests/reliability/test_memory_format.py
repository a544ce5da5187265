"""Issue 13: the query memory in a saved delta. It survives a save and load bit for bit, a
delta saved without it (older versions) still loads, and a damaged memory is refused as
damaged vectors are: NaN or inf in its question vectors, links that name a key or record the
delta does not hold, shapes the header forges."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from nudge_rag import NudgeDelta
from nudge_rag.errors import InputError

from .helpers import make_delta, same_delta
from .tampering import edit_meta, read_arrays, write_arrays


def with_memory(n_keys: int = 7, seed: int = 0) -> NudgeDelta:
    """``make_delta`` with a memory: ``n_keys`` unit question vectors, each naming one or two
    of its records."""
    delta = make_delta(seed)
    rng = np.random.default_rng(seed + 1)
    keys = rng.standard_normal((n_keys, delta.dim))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    links = [(k, int(r)) for k in range(n_keys)
             for r in rng.choice(len(delta.ids), int(rng.integers(1, 3)), replace=False)]
    return dataclasses.replace(delta, alpha=0.9, memory_keys=keys.astype(np.float32),
                               memory_links=np.array(links, dtype=np.int64))


def test_memory_survives_save_and_load(tmp_path):
    delta = with_memory()
    loaded = NudgeDelta.load(delta.save(tmp_path / "d"))
    assert same_delta(delta, loaded)
    assert loaded.alpha == 0.9 and loaded.n_memory == 7
    np.testing.assert_array_equal(loaded.memory_keys, delta.memory_keys)
    np.testing.assert_array_equal(loaded.memory_links, delta.memory_links)
    q = np.random.default_rng(5).standard_normal((4, delta.dim))
    np.testing.assert_array_equal(loaded.query_memory().best(q), delta.query_memory().best(q))
    assert "7 question vectors" in loaded.report() and "apply()" in loaded.report()


def test_a_delta_saved_before_memory_existed_loads_without_one(tmp_path):
    path = make_delta().save(tmp_path / "old")
    arrays = read_arrays(path)
    write_arrays(path, {k: arrays[k] for k in ("vectors", "original", "sums", "counts")})
    edit_meta(path, lambda m: {k: v for k, v in m.items() if k not in ("alpha", "memory")})
    loaded = NudgeDelta.load(path)
    assert loaded.n_memory == 0 and loaded.alpha == 0.0 and loaded.query_memory() is None
    assert "none kept" in loaded.report()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_refuses_non_finite_memory_vectors(tmp_path, bad):
    path = with_memory().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays["memory_keys"][2, 3] = bad
    write_arrays(path, arrays)  # the checksum matches: only the values are wrong
    with pytest.raises(InputError, match="memory_keys.*key 2") as exc:
        NudgeDelta.load(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("column, value", [(0, 7), (1, 12), (0, -1)])
def test_load_refuses_links_to_nothing(tmp_path, column, value):
    path = with_memory().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays["memory_links"][0, column] = value
    write_arrays(path, arrays)
    with pytest.raises(InputError, match="memory_links"):
        NudgeDelta.load(path)


def test_load_refuses_memory_arrays_that_disagree_with_the_facts(tmp_path):
    path = with_memory().save(tmp_path / "d")
    edit_meta(path, lambda m: {**m, "memory": {"keys": 8, "links": 3}})
    with pytest.raises(InputError, match="memory_keys.*shape"):
        NudgeDelta.load(path)
    for bad in ({"keys": -1, "links": 0}, [7, 3], {"keys": True, "links": 3}):
        edit_meta(path, lambda m, bad=bad: {**m, "memory": bad})
        with pytest.raises(InputError, match="'memory'"):
            NudgeDelta.load(path)
    edit_meta(path, lambda m: {**m, "memory": {"keys": 7, "links": 0}, "alpha": float("nan")})
    with pytest.raises(InputError, match="alpha"):
        NudgeDelta.load(path)
    assert json.loads((Path(path) / "delta.json").read_text())["format"] == "nudge-rag-delta"


def test_a_memory_changed_in_memory_is_refused_before_saving(tmp_path):
    delta = with_memory()
    delta.memory_keys[0, 0] = np.nan
    with pytest.raises(InputError, match="memory_keys"):
        delta.save(tmp_path / "d")
    assert not (tmp_path / "d").exists()
