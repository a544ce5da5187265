"""The splits the benchmarks run on, and what they report across them.

- *paper*: the NUDGE paper's 70/10/20 split (``nudge_rag.datasets.load_split``);
- *group*: the package's group-aware 70/10/20 split (``QuestionSet.split``), which keeps
  duplicate and near-duplicate questions in one part, so no test question has its twin in
  training.

Test questions are *warm* when some labelled question (training or validation) names one of
their relevant records and *cold* otherwise: NUDGE moves no record for a cold question, so it
cannot gain there (``nudge_rag.core.metrics.warm_questions``).
"""

from __future__ import annotations

import numpy as np

from nudge_rag.datasets import ArraySplit, load_split
from nudge_rag.questions import QuestionSet

from .evaluate import METRICS, Relevance, metrics_from_ranking

SPLITS = ("paper", "group")


def make_split(root, kind: str, seed: int, doc_emb, doc_ids, query_emb,
               query_ids) -> ArraySplit:
    """The ``kind`` split (see :data:`SPLITS`) of a BEIR folder with ``seed``."""
    if kind == "paper":
        return load_split(root, seed=seed, doc_emb=doc_emb, doc_ids=doc_ids,
                          query_emb=query_emb, query_ids=query_ids)
    if kind != "group":
        raise SystemExit(f"unknown split {kind!r}; choose from {SPLITS}")
    # questions none of whose relevant records are in ``doc_ids`` are left out
    qs = QuestionSet.from_beir(root)
    row = {q: i for i, q in enumerate(query_ids)}
    qs = qs.subset([i for i, (q, rel) in enumerate(zip(qs.ids, qs.relevance_rows(
        doc_ids, unknown="drop"))) if rel and q in row])
    qs = qs.with_embeddings(np.asarray(query_emb)[[row[q] for q in qs.ids]])
    parts = qs.split(train=0.7, val=0.1, test=0.2, seed=seed)
    arrays = [(p.embeddings, p.relevance_rows(doc_ids, unknown="drop")) for p in parts]
    (tq, tr), (vq, vr), (sq, sr) = arrays
    return ArraySplit(list(doc_ids), doc_emb, tq, tr, vq, vr, sq, sr,
                      {name: list(p.ids) for name, p in zip(("train", "val", "test"), parts)})


def warm_mask(split: ArraySplit) -> np.ndarray:
    """Per test question: whether a training or validation question names one of its
    relevant records."""
    named = {r for rel in (*split.train_rel, *split.val_rel) for r, g in _items(rel) if g > 0}
    return np.array([any(r in named for r, g in _items(rel) if g > 0)
                     for rel in split.test_rel], dtype=bool)


def _items(rel):
    return rel.items() if isinstance(rel, dict) else ((r, 1.0) for r in rel)


def score_ranking(ranked: np.ndarray, split: ArraySplit) -> dict:
    """Mean metrics of ranked test rows, and NDCG@10 of the warm and the cold questions
    apart (with their counts)."""
    per_question = metrics_from_ranking(ranked, Relevance(split.test_rel, len(split.doc_ids)),
                                        METRICS)
    out = {name: float(v.mean()) for name, v in per_question.items()}
    warm = warm_mask(split)
    for part, mask in (("warm", warm), ("cold", ~warm)):
        ndcg = per_question["ndcg@10"][mask]
        out[part] = {"n_questions": int(mask.sum()),
                     "ndcg@10": float(ndcg.mean()) if mask.any() else None}
    return out


def summary_table(entries: dict, labels: dict) -> str:
    """Test NDCG@10 of every method on every split of one dataset (``entries[(kind, seed)]``
    = the split's method rows), with each kind's mean, the warm / cold means and fit time."""
    keys = sorted(entries, key=lambda ks: (SPLITS.index(ks[0]), ks[1]))
    kinds = [k for k in SPLITS if any(key[0] == k for key in keys)]
    methods = list(dict.fromkeys(m for e in entries.values() for m in e
                                 if "ndcg@10" in e[m]))
    head = ["method", *(f"{k} {s}" for k, s in keys), *(f"{k} mean" for k in kinds),
            "warm", "cold", "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        rows = [entries[key].get(m, {}) for key in keys]
        ndcg = [r.get("ndcg@10") for r in rows]
        means = [np.mean([v for key, v in zip(keys, ndcg) if key[0] == k and v is not None])
                 for k in kinds]
        part = {p: np.mean([r[p]["ndcg@10"] for r in rows if r.get(p, {}).get("ndcg@10")
                            is not None]) for p in ("warm", "cold")}
        fit = np.mean([r["fit_s"] for r in rows if "fit_s" in r])
        cells = [labels.get(m, m), *(_f(v) for v in ndcg), *(_f(v) for v in means),
                 _f(part["warm"]), _f(part["cold"]), f"{fit:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    counts = [entries[key].get("none", {}) for key in keys]
    if all("warm" in c for c in counts):
        lines.append("")
        lines.append("Test questions warm / cold per split: " + ", ".join(
            f"{k} {s}: {c['warm']['n_questions']} / {c['cold']['n_questions']}"
            for (k, s), c in zip(keys, counts)) + ". Warm and cold columns: means over the "
            "splits.")
    return "\n".join(lines)


def _f(v) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.4f}"
