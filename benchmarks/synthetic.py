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


def dense_labels(seed: int = 0, n_topics: int = 90, per_topic: int = 40, d: int = 384,
                 n_train: int = 2300, n_val: int = 320, n_test: int = 320, rel_min: int = 20,
                 rel_max: int = 60, hidden: float = 1.5):
    """A densely labelled problem: each question has 20-60 graded relevant records, so
    nearly every record is named by some training question and moves.

    ``n_topics × per_topic`` records sit in topic clusters (a unit centre plus noise), so a
    question's near neighbours are many and alike. Relevance follows each record's *true*
    content, its embedding plus a hidden offset the embedding model missed: a question's
    relevant records are its ``R ~ U[rel_min, rel_max]`` best by true similarity, grade 2 for
    the first third, 1 for the rest. Training questions reveal the offsets (records move
    toward the questions that name them), and moving too far blurs what the embedding did
    capture, so validation NDCG@10 rises then falls with γ: γ matters.

    Returns ``(docs, train_q, train_rel, val_q, val_rel, test_q, test_rel)``, float32 arrays
    and lists of ``{row: grade}``."""
    rng = np.random.default_rng(seed)
    n = n_topics * per_topic
    centres = rng.standard_normal((n_topics, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    docs = np.repeat(centres, per_topic, axis=0) + 0.9 * rng.standard_normal((n, d)) / np.sqrt(d)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    truth = docs + hidden * rng.standard_normal((n, d)) / np.sqrt(d)

    def ask(m):
        q = centres[rng.integers(n_topics, size=m)] + rng.standard_normal((m, d)) / np.sqrt(d)
        size = rng.integers(rel_min, rel_max + 1, size=m)
        ranked = np.argsort(-(q @ truth.T), axis=1)[:, :rel_max]
        rel = [{int(r): 2.0 if j < s // 3 else 1.0 for j, r in enumerate(row[:s])}
               for row, s in zip(ranked, size)]
        return q.astype(np.float32), rel

    parts = [ask(m) for m in (n_train, n_val, n_test)]
    return (docs.astype(np.float32), *parts[0], *parts[1], *parts[2])
