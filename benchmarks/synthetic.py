"""The synthetic retrieval problem of the scale benchmarks.

``n`` records in ``d`` dimensions, standard normal then L2-normalised; each question is one
record plus Gaussian noise with σ = 3/√d per coordinate, and has that record as its one answer.
Generated block by block in float32 so that building a 1M-record corpus never holds more than
the corpus itself.
"""

from __future__ import annotations

import numpy as np

BLOCK = 65_536


def corpus(n: int, d: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, BLOCK):
        block = rng.standard_normal((min(BLOCK, n - start), d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out


def questions(docs: np.ndarray, n_train: int = 5000, n_val: int = 1000, seed: int = 1):
    """``(train_q, train_rel, val_q, val_rel)``; answers are distinct records, and validation
    questions ask about records that training questions also name (as real logs do)."""
    rng = np.random.default_rng(seed)
    n, d = docs.shape
    train_rows = rng.choice(n, size=n_train, replace=False)
    val_rows = rng.choice(train_rows, size=n_val, replace=False)
    sigma = 3.0 / np.sqrt(d)

    def ask(rows):
        return (docs[rows] + sigma * rng.standard_normal((len(rows), d))).astype(np.float32)

    return (ask(train_rows), [[int(r)] for r in train_rows],
            ask(val_rows), [[int(r)] for r in val_rows])
