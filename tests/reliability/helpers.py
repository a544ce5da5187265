"""Shared pieces of the reliability suite: deltas to write, byte snapshots, and the command
line with its one-line error check. A plain module, so that the kill loops' small child
processes can import it too."""

from __future__ import annotations

import numpy as np


def make_delta(seed: int = 0, n: int = 12, dim: int = 8, method: str = "nudge-n"):
    """A realistic delta without a fit: unit original vectors, nudged ones a step away."""
    from nudge_rag import NudgeDelta

    rng = np.random.default_rng(seed)
    original = rng.standard_normal((n, dim))
    original /= np.linalg.norm(original, axis=1, keepdims=True)
    sums = original + 0.5 * rng.standard_normal((n, dim))
    vectors = original + 0.2 * sums
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return NudgeDelta(ids=[f"rec-{seed}-{i}" for i in range(n)],
                      vectors=vectors.astype(np.float32), original=original, sums=sums,
                      counts=rng.integers(1, 4, n), method=method, gamma=0.1 + seed / 100,
                      metric="ndcg@10", similarity="cosine", dim=dim,
                      model={"name": "all-MiniLM-L6-v2", "dim": dim}, questions=f"fp{seed}",
                      fit_report={"n_train_questions": 30, "n_val_questions": 5})


def same_delta(a, b) -> bool:
    """Every array bit for bit (in the dtype the format stores) and every fact."""
    return (a.ids == b.ids and a.method == b.method and a.gamma == b.gamma
            and a.dim == b.dim and a.model == b.model and a.questions == b.questions
            and np.array_equal(a.vectors.astype(np.float32), b.vectors.astype(np.float32))
            and np.array_equal(a.original, b.original) and np.array_equal(a.sums, b.sums)
            and np.array_equal(a.counts, b.counts))


def snapshot(path):
    """``{relative path: bytes}`` of a folder, or the bytes of a file; ``None`` if absent."""
    from pathlib import Path

    path = Path(path)
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        return None
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def siblings(path) -> list[str]:
    """Names beside ``path`` that start like a writer's temporary copies of it."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def run(*argv) -> int:
    from nudge_rag.cli import main

    return main([str(a) for a in argv])
