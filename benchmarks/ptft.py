"""PTFT baseline: full fine-tuning of the embedding model on (question, positive) pairs.

sentence-transformers' MultipleNegativesRankingLoss (in-batch negatives, scale 20, cosine),
AdamW lr 2e-5, batch 32 with no repeated question or record inside a batch, validation hit@1
at regular steps with the best checkpoint kept. The paper trains up to 20,000 steps on a GPU;
on a CPU the run is capped by ``max_steps`` and ``max_train_s``, and the result says which cap
stopped it. Documents may be truncated harder during training (``train_max_seq_len``) than
at evaluation, which re-encodes with the model's own limit.

Validation re-encodes a *pool* rather than the whole corpus (too slow on a CPU to do more than
once): every validation positive plus each validation question's ``pool_k`` nearest records
under the base model. Step 0 is scored from the base embeddings the run already holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .encode import encode_texts, load_model
from .evaluate import hit_at_1, top_k


@dataclass
class PtftConfig:
    lr: float = 2e-5
    batch_size: int = 32
    max_steps: int = 60
    max_train_s: float | None = None
    eval_every: int | None = None     # default: max_steps // 2 (two checkpoints compared)
    pool_k: int = 3
    train_max_seq_len: int | None = 128
    seed: int = 0


@dataclass
class PtftResult:
    model: object                    # the SentenceTransformer with the best weights loaded
    steps: int
    best_step: int
    best_val_hit1: float
    stopped_by: str
    train_s: float
    history: list = field(default_factory=list)   # (step, pool validation hit@1)
    pool_size: int = 0


def _batches_without_repeats(q_idx, rows, batch_size, rng):
    """Yield index batches forever; a batch never holds one question or one record twice,
    since in-batch negatives would then include positives."""
    while True:
        pending = list(rng.permutation(len(q_idx)))
        while pending:
            batch, seen_q, seen_r, rest = [], set(), set(), []
            for i in pending:
                if len(batch) < batch_size and q_idx[i] not in seen_q and rows[i] not in seen_r:
                    batch.append(i)
                    seen_q.add(q_idx[i])
                    seen_r.add(rows[i])
                else:
                    rest.append(i)
            pending = rest
            yield np.asarray(batch)


def validation_pool(doc_emb, val_q, val_rel, pool_k: int) -> np.ndarray:
    """Rows re-encoded for validation: positives plus base-model near neighbours."""
    near = top_k(val_q, doc_emb, pool_k).ravel() if pool_k > 0 else np.empty(0, np.int64)
    positives = [int(r) for labels in val_rel for r in labels]
    return np.unique(np.concatenate([near, np.asarray(positives, dtype=np.int64)]))


def fit_ptft(model_path: str, doc_texts: list[str], doc_emb: np.ndarray,
             train_texts: list[str], train_rel: list, val_texts: list[str], val_q: np.ndarray,
             val_rel: list, config: PtftConfig | None = None, log=print) -> PtftResult:
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    cfg = config or PtftConfig()
    eval_every = cfg.eval_every or max(1, cfg.max_steps // 2)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    model = load_model(model_path)
    eval_seq_len = model.max_seq_length
    pool = validation_pool(doc_emb, val_q, val_rel, cfg.pool_k)
    pool_of_row = {int(r): i for i, r in enumerate(pool)}
    pool_rel = [{pool_of_row[int(r)]: g for r, g in (labels.items() if isinstance(labels, dict)
                                                     else ((r, 1.0) for r in labels))}
                for labels in val_rel]

    def pool_hit1() -> float:
        model.eval()
        model.max_seq_length = eval_seq_len
        with torch.no_grad():
            docs = encode_texts(model, [doc_texts[r] for r in pool], batch_size=32)
            questions = encode_texts(model, val_texts, batch_size=64)
        return hit_at_1(questions, docs, pool_rel)

    base_docs = doc_emb[pool] / np.linalg.norm(doc_emb[pool], axis=1, keepdims=True)
    best_hit1 = hit_at_1(val_q, base_docs, pool_rel)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_step, history = 0, [(0, best_hit1)]

    q_idx = np.asarray([i for i, labels in enumerate(train_rel) for _ in labels], dtype=np.int64)
    rows = np.asarray([int(r) for labels in train_rel for r in labels], dtype=np.int64)
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batches = _batches_without_repeats(q_idx, rows, cfg.batch_size, rng)

    start = time.perf_counter()
    step, stopped_by = 0, "max_steps"
    while step < cfg.max_steps:
        if cfg.max_train_s is not None and time.perf_counter() - start > cfg.max_train_s:
            stopped_by = "max_train_s"
            break
        model.train()
        if cfg.train_max_seq_len:
            model.max_seq_length = min(cfg.train_max_seq_len, eval_seq_len)
        batch = next(batches)
        questions = model.preprocess([train_texts[i] for i in q_idx[batch]])
        records = model.preprocess([doc_texts[r] for r in rows[batch]])
        loss = loss_fn([questions, records], None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        last = step == cfg.max_steps or (cfg.max_train_s is not None
                                         and time.perf_counter() - start > cfg.max_train_s)
        if step % eval_every == 0 or last:
            score = pool_hit1()
            history.append((step, score))
            log(f"    ptft step {step}: loss {loss.item():.3f}, pool val hit@1 {score:.3f} "
                f"({time.perf_counter() - start:.0f} s)")
            if score > best_hit1:
                best_hit1, best_step = score, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_s = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    model.max_seq_length = eval_seq_len
    return PtftResult(model, step, best_step, best_hit1, stopped_by, train_s, history, len(pool))
