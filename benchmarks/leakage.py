"""How much do near-duplicate questions inflate NUDGE's gains on a dataset?

    python benchmarks/leakage.py --data /work/shared/data/scifact

1. Under the NUDGE paper's split (``nudge_rag.datasets.paper_split``), count the validation and
   test questions that duplicate a training question (``QuestionSet.check_leakage``).
2. Compare NUDGE-N (default settings, γ on validation) on the paper split with the same fit on
   group-aware splits (``QuestionSet.split``, seeds 0-2), which keep duplicates on one side.
Real questions and cached all-MiniLM-L6-v2 embeddings only; runs in seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nudge_rag import NudgeN  # noqa: E402
from nudge_rag.core.metrics import evaluate_topk  # noqa: E402
from nudge_rag.core.topk import topk_scan  # noqa: E402
from nudge_rag.datasets import load_cached_embeddings, paper_split  # noqa: E402
from nudge_rag.questions import QuestionSet  # noqa: E402


def ndcg10(doc_emb, test: QuestionSet, doc_ids) -> float:
    _, rows = topk_scan(doc_emb, test.embeddings, 10)
    return evaluate_topk(rows, test.relevance_rows(doc_ids), ("ndcg@10",),
                         n_rows=len(doc_emb))["ndcg@10"]


def fit_and_score(doc_ids, doc_emb, train, val, test) -> tuple[float, float, float]:
    # the paper's protocol, whose leakage this measures (transform: no query memory)
    est = NudgeN(selection="validation", refit=False, memory=False).fit(
        doc_emb, train.embeddings, train.relevance_rows(doc_ids), val.embeddings,
        val.relevance_rows(doc_ids))
    return ndcg10(doc_emb, test, doc_ids), ndcg10(est.transform(doc_emb), test, doc_ids), \
        est.gamma_


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="BEIR folder with cached embeddings")
    args = parser.parse_args(argv)
    doc_ids, doc_emb, query_ids, query_emb = load_cached_embeddings(args.data)
    row_of = {q: i for i, q in enumerate(query_ids)}
    qs = QuestionSet.from_beir(args.data, known_ids=doc_ids)
    qs = qs.with_embeddings(query_emb[[row_of[q] for q in qs.ids]])
    index_of = {q: i for i, q in enumerate(qs.ids)}
    paper = [qs.subset([index_of[q] for q in part]) for part in paper_split(qs.ids)]
    report = paper[0].check_leakage(paper[1], paper[2])
    print(f"{Path(args.data).name}, paper split: {report.summary()}")
    print("| split | test questions | test NDCG@10 none → NUDGE-N | γ |")
    print("| --- | --- | --- | --- |")
    before, after, gamma = fit_and_score(doc_ids, doc_emb, *paper)
    print(f"| paper protocol | {len(paper[2])} | {before:.4f} → {after:.4f} | {gamma:.3f} |")
    for seed in range(3):
        parts = qs.split(train=0.7, val=0.1, test=0.2, seed=seed)
        before, after, gamma = fit_and_score(doc_ids, doc_emb, *parts)
        print(f"| group-aware, seed {seed} | {len(parts[2])} | {before:.4f} → {after:.4f} | "
              f"{gamma:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
