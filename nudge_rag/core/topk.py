"""Blocked exact top-k search over a record array.

The corpus is read block by block, so memory holds one block of (questions × block) scores at
a time and never a normalised copy of the corpus.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# scores held at once: questions × block rows (float32/64), about 64 MB at float32
_SCORE_BUDGET = 16_000_000


def _block_rows(n_queries: int, n_rows: int) -> int:
    return int(min(max(_SCORE_BUDGET // max(n_queries, 1), 1024), max(n_rows, 1)))


def _select(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (unordered) of each row of ``scores``: ``(values, column indices)``."""
    kk = min(k, scores.shape[1])
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    return np.take_along_axis(scores, part, axis=1), part


def _merge_candidates(best_s, best_r, qi, cols, vals, k):
    """Fold sparse candidates (question ``qi``, row ``cols``, score ``vals``) into the running
    top-k. Later blocks yield few candidates, so this costs far less than a partition."""
    nq = best_s.shape[0]
    flat_q = np.r_[np.repeat(np.arange(nq), best_s.shape[1]), qi]
    flat_s = np.r_[best_s.ravel(), vals]
    flat_r = np.r_[best_r.ravel(), cols]
    order = np.lexsort((-flat_s, flat_q))
    flat_q, flat_s, flat_r = flat_q[order], flat_s[order], flat_r[order]
    starts = np.searchsorted(flat_q, np.arange(nq))
    take = starts[:, None] + np.arange(k)[None, :]
    return flat_s[take], flat_r[take]


def topk_scan(docs: np.ndarray, queries: np.ndarray, k: int, row_scale=None, exclude=None,
              device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``docs`` for each query by ``q · docs[i] * row_scale[i]``.

    ``row_scale`` (e.g. inverse norms) turns inner product into cosine without a normalised
    copy; ``exclude`` is a boolean mask of rows that never qualify. Returns ``(scores, rows)``
    sorted by descending score, float64 and int64; missing slots hold ``-inf`` and ``-1``.
    """
    if device != "cpu":
        return _topk_scan_torch(docs, queries, k, row_scale, exclude, device)
    n = docs.shape[0]
    nq = queries.shape[0]
    dtype = np.result_type(docs.dtype, np.float32)
    q = np.ascontiguousarray(queries, dtype=dtype)
    best_s = np.full((nq, k), -np.inf)
    best_r = np.full((nq, k), -1, dtype=np.int64)
    step = _block_rows(nq, n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        scores = q @ np.asarray(docs[start:stop], dtype=dtype).T
        if row_scale is not None:
            scores *= row_scale[start:stop].astype(dtype)[None, :]
        skip = None if exclude is None else exclude[start:stop]
        if not np.isfinite(best_s[:, -1]).all():
            # the running top-k is not full yet: a partition of this block fills it
            if skip is not None:
                scores[:, skip] = -np.inf
            s, cols = _select(scores, k)
            qi = np.repeat(np.arange(nq), s.shape[1])
            best_s, best_r = _merge_candidates(best_s, best_r, qi, cols.ravel() + start,
                                               s.ravel().astype(np.float64), k)
            continue
        # only scores above each question's current k-th best can enter; excluded rows are
        # dropped from those few candidates rather than masked in the whole block
        qi, cols = np.nonzero(scores > best_s[:, -1].astype(dtype)[:, None])
        if skip is not None and len(qi):
            keep = ~skip[cols]
            qi, cols = qi[keep], cols[keep]
        if len(qi):
            best_s, best_r = _merge_candidates(best_s, best_r, qi, cols + start,
                                               scores[qi, cols].astype(np.float64), k)
    return _finish(best_s, best_r, k)


def _finish(best_s, best_r, k):
    order = np.argsort(-best_s, axis=1, kind="stable")
    best_s = np.take_along_axis(best_s, order, axis=1)
    best_r = np.take_along_axis(best_r, order, axis=1)
    best_r = np.where(np.isfinite(best_s), best_r, -1)
    if best_s.shape[1] < k:  # fewer candidate rows than k
        pad = k - best_s.shape[1]
        best_s = np.pad(best_s, ((0, 0), (0, pad)), constant_values=-np.inf)
        best_r = np.pad(best_r, ((0, 0), (0, pad)), constant_values=-1)
    return best_s, best_r


def torch_device(device: str):
    """Import torch lazily and check that ``device`` exists."""
    try:
        import torch
    except ImportError:
        raise InputError(f"device={device!r} needs torch; install it (pip install torch) or "
                         "use device='cpu'") from None
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r} is not a torch device ({exc}); use 'cpu' or "
                         "'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but torch sees no CUDA GPU; use device='cpu'")
    return torch, dev


def _topk_scan_torch(docs, queries, k, row_scale, exclude, device):
    torch, dev = torch_device(device)
    n, nq = docs.shape[0], queries.shape[0]
    dtype = torch.float64 if docs.dtype == np.float64 else torch.float32
    q = torch.as_tensor(np.asarray(queries), device=dev).to(dtype)
    best_s = torch.full((nq, 0), -float("inf"), device=dev, dtype=dtype)
    best_r = torch.full((nq, 0), -1, device=dev, dtype=torch.int64)
    step = _block_rows(nq, n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = torch.as_tensor(np.ascontiguousarray(docs[start:stop]), device=dev).to(dtype)
        scores = q @ block.T
        if row_scale is not None:
            scores *= torch.as_tensor(row_scale[start:stop], device=dev).to(dtype)
        if exclude is not None:
            mask = torch.as_tensor(exclude[start:stop], device=dev)
            scores[:, mask] = -float("inf")
        s, r = torch.topk(scores, min(k, stop - start), dim=1)
        s = torch.cat([best_s, s], dim=1)
        r = torch.cat([best_r, r + start], dim=1)
        best_s, idx = torch.topk(s, min(k, s.shape[1]), dim=1)
        best_r = torch.gather(r, 1, idx)
    return _finish(best_s.double().cpu().numpy(), best_r.cpu().numpy(), k)


# (query, moved record) scores held at once by :func:`nudged_top_k` (about 32 MB)
_MOVED_BLOCK = 4_000_000


def nudged_top_k(docs, norms, queries, k: int, rows, vectors, memory, alpha: float,
                 device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` of a nudged corpus: the records that do not move at their unit
    vectors (one blocked scan that skips the moved ``rows``), the moved ones at ``vectors``
    and, where ``alpha > 0``, at the better of that and ``alpha`` times their ``memory``
    score. Returns ``(rows, scores)``, best first, ties to the lower row; ``-1`` / ``-inf``
    pad a corpus smaller than ``k``."""
    exclude = np.zeros(len(docs), dtype=bool)
    exclude[rows] = True
    unit = bool(np.all(np.abs(norms - 1.0) < 1e-6))
    base_s, base_r = topk_scan(docs, queries, k, row_scale=None if unit else 1.0 / norms,
                               exclude=exclude, device=device)
    q = np.asarray(queries, dtype=np.float64)
    moved = np.asarray(vectors, dtype=np.float64)
    out_s, out_r = np.empty((len(q), k)), np.empty((len(q), k), dtype=np.int64)
    step = max(1, _MOVED_BLOCK // max(len(rows), 1))
    for lo in range(0, len(q), step):
        s = q[lo:lo + step] @ moved.T
        if alpha > 0 and len(memory):
            np.maximum(s, alpha * memory.best(q[lo:lo + step]), out=s)
        scores = np.concatenate([base_s[lo:lo + step], s], axis=1)
        cand = np.concatenate([base_r[lo:lo + step], np.broadcast_to(rows, s.shape)], axis=1)
        # padding rows (-1, -inf) sort last; equal scores go to the lower row
        order = np.lexsort((np.where(cand < 0, len(docs), cand), -scores), axis=1)[:, :k]
        out_s[lo:lo + step] = np.take_along_axis(scores, order, axis=1)
        out_r[lo:lo + step] = np.take_along_axis(cand, order, axis=1)
    return out_r, out_s
