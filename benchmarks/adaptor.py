"""The paper's Adaptor baseline: one d×d linear map applied to questions.

Identity initialisation, no bias, in-batch contrastive loss on ``20 · cos(W q, e)``, AdamW at
lr 1e-3, batches of up to 4,096 (question, positive) pairs, at most 10,000 steps, early stop
on validation hit@1 (best map kept). Records are left as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .evaluate import hit_at_1


@dataclass
class AdaptorConfig:
    lr: float = 1e-3
    batch_size: int = 4096
    max_steps: int = 10_000
    eval_every: int = 10
    patience_evals: int = 20   # stop after this many evaluations without a better hit@1
    scale: float = 20.0
    seed: int = 0


@dataclass
class AdaptorResult:
    matrix: np.ndarray          # W, applied as q' = q @ W.T
    steps: int
    best_step: int
    best_val_hit1: float
    history: list = field(default_factory=list)   # (step, val hit@1)
    fit_s: float = 0.0


def _training_pairs(rel: list) -> tuple[np.ndarray, np.ndarray]:
    """(question index, record row) for every positive of every training question."""
    q_idx = [i for i, labels in enumerate(rel) for _ in labels]
    rows = [int(r) for labels in rel for r in labels]
    return np.asarray(q_idx, dtype=np.int64), np.asarray(rows, dtype=np.int64)


def _false_negative_mask(batch_q, batch_rows, positive_keys, n_docs):
    """True where an in-batch 'negative' is in fact a positive of the row's question (two
    questions citing one record, or one question with several positives)."""
    keys = batch_q[:, None] * n_docs + batch_rows[None, :]
    mask = np.isin(keys, positive_keys)
    np.fill_diagonal(mask, False)
    return mask


def fit_adaptor(doc_emb, train_q, train_rel, val_q, val_rel,
                config: AdaptorConfig | None = None) -> AdaptorResult:
    import torch

    cfg = config or AdaptorConfig()
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    docs = doc_emb / np.linalg.norm(doc_emb, axis=1, keepdims=True)
    q_idx, rows = _training_pairs(train_rel)
    n_docs = docs.shape[0]
    positive_keys = np.unique(q_idx * n_docs + rows)

    dim = train_q.shape[1]
    weight = torch.nn.Parameter(torch.eye(dim, dtype=torch.float32))
    optimizer = torch.optim.AdamW([weight], lr=cfg.lr)
    questions = torch.from_numpy(np.ascontiguousarray(train_q, dtype=np.float32))
    records = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))

    def val_hit1(matrix: np.ndarray) -> float:
        return hit_at_1(val_q @ matrix.T, docs, val_rel)

    best = (val_hit1(np.eye(dim, dtype=np.float32)), 0, np.eye(dim, dtype=np.float32))
    history = [(0, best[0])]
    evals_without_gain = 0
    step = 0
    full_batch = len(q_idx) <= cfg.batch_size
    cached_mask = None
    while step < cfg.max_steps:
        # one epoch = a random permutation of pairs cut into batches
        order = np.arange(len(q_idx)) if full_batch else rng.permutation(len(q_idx))
        for begin in range(0, len(order), cfg.batch_size):
            batch = order[begin:begin + cfg.batch_size]
            if full_batch and cached_mask is not None:
                mask = cached_mask
            else:
                mask = torch.from_numpy(_false_negative_mask(q_idx[batch], rows[batch],
                                                             positive_keys, n_docs))
                cached_mask = mask if full_batch else None
            mapped = torch.nn.functional.normalize(questions[q_idx[batch]] @ weight.T, dim=1)
            logits = cfg.scale * mapped @ records[rows[batch]].T
            logits = logits.masked_fill(mask, float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % cfg.eval_every == 0:
                matrix = weight.detach().numpy().copy()
                score = val_hit1(matrix)
                history.append((step, score))
                if score > best[0]:
                    best = (score, step, matrix)
                    evals_without_gain = 0
                else:
                    evals_without_gain += 1
            if step >= cfg.max_steps or evals_without_gain >= cfg.patience_evals:
                break
        if evals_without_gain >= cfg.patience_evals:
            break
    return AdaptorResult(best[2], step, best[1], best[0], history, time.perf_counter() - start)
