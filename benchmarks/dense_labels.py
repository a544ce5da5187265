"""Fit time where most records move: nudge-rag against nudge-ft 0.1.2, in one process.

Three problems, from dense to sparse labels:
- ``dense``: the synthetic problem of ``synthetic.dense_labels`` (3,600 records in topic
  clusters, 2,300 training / 320 validation / 320 test questions, 20-60 graded relevant
  records each, so every record moves);
- ``cranfield``: Cranfield with its cached all-MiniLM-L6-v2 vectors, the paper's 70/10/20
  split (about 8 relevant records per question);
- ``scifact``: SciFact likewise (about 1 relevant record per question: the sparse shape).

Every round fits each method with each engine once, engines in turn, and the table gives the
best round of each (the machine is shared; the best round is the one least disturbed); the
ratio to the old engine is also given on the medians, which noise moves less. The
engines: nudge-rag as it is; nudge-ft 0.1.2 (``NUDGEN``/``NUDGEM().finetune_embeddings``, CPU);
and with ``--baseline-ref`` the nudge-rag engine of that commit, loaded beside today's by
``baseline_engine`` (default: the last commit before this engine). Fit time covers ``fit``
plus ``transform`` for nudge-rag (nudge-ft returns the whole matrix). Test NDCG@10 is scored on
the nudged records by inner product; nudge-rag and the old engine must agree.

A second table measures the exact NUDGE-M sweep: how many line crossings the problem has in
all, how many events the sweep kept, and the peak memory (tracemalloc) of one NudgeM fit.

    python benchmarks/dense_labels.py
    python benchmarks/dense_labels.py --rounds 5 --json bench-results/dense-labels.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import baseline_engine  # noqa: E402
import synthetic  # noqa: E402

from nudge_rag.core.metrics import evaluate_topk  # noqa: E402
from nudge_rag.core.topk import topk_scan  # noqa: E402

ENGINES = ("nudge-rag", "nudge-ft", "before")


@dataclass
class Problem:
    name: str
    docs: np.ndarray
    train_q: np.ndarray
    train_rel: list
    val_q: np.ndarray
    val_rel: list
    test_q: np.ndarray
    test_rel: list

    @property
    def fit_args(self):
        return self.docs, self.train_q, self.train_rel, self.val_q, self.val_rel

    def rel_per_question(self) -> float:
        return float(np.mean([len(r) for r in self.train_rel + self.val_rel + self.test_rel]))


def load(name: str, data: Path) -> Problem:
    if name == "dense":
        return Problem(name, *synthetic.dense_labels())
    from nudge_rag.datasets import load_split

    s = load_split(data / name)
    return Problem(name, s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel, s.test_q,
                   s.test_rel)


def fit(engine: str, method: str, prob: Problem, old=None) -> tuple[float, float, np.ndarray]:
    """``(seconds, gamma, nudged records)``; γ is NaN for nudge-ft (it does not report it)."""
    if engine == "nudge-ft":
        import nudge

        cls = nudge.NUDGEN if method == "N" else nudge.NUDGEM
        train = {"q_embs": prob.train_q, "q_ans_indx": [sorted(r) for r in prob.train_rel]}
        val = {"q_embs": prob.val_q, "q_ans_indx": [sorted(r) for r in prob.val_rel]}
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
            out = cls(device="cpu").finetune_embeddings(prob.docs, train, val)
        return time.perf_counter() - start, float("nan"), out
    if engine == "nudge-rag":
        from nudge_rag import NudgeM, NudgeN
    else:
        NudgeN, NudgeM = old.NudgeN, old.NudgeM
    est = baseline_engine.paper_protocol(NudgeN if method == "N" else NudgeM)
    start = time.perf_counter()
    out = est.fit(*prob.fit_args).transform(prob.docs)
    return time.perf_counter() - start, float(est.gamma_), out


def test_ndcg(prob: Problem, docs: np.ndarray) -> float:
    _, rows = topk_scan(docs, prob.test_q, 10)
    return evaluate_topk(rows, prob.test_rel, ("ndcg@10",), n_rows=len(docs))["ndcg@10"]


def time_problem(prob: Problem, engines, rounds: int, old) -> list[dict]:
    rows = {(m, e): {"problem": prob.name, "method": m, "engine": e, "seconds": []}
            for m in ("N", "M") for e in engines}
    for r in range(rounds):
        for m in ("N", "M"):
            turn = engines[r % len(engines):] + engines[:r % len(engines)]
            for e in turn:
                seconds, gamma, out = fit(e, m, prob, old)
                row = rows[(m, e)]
                row["seconds"].append(seconds)
                row["gamma"] = gamma
                if r == 0:
                    row["test_ndcg@10"] = test_ndcg(prob, out)
    for row in rows.values():
        row["best_s"] = min(row["seconds"])
        row["median_s"] = float(np.median(row["seconds"]))
        row["rel_per_question"] = prob.rel_per_question()
    return list(rows.values())


def sweep_facts(prob: Problem, old) -> dict:
    """Crossings in all, events kept, and peak traced memory of one NudgeM fit (and of the
    old engine's, when loaded)."""
    from nudge_rag import NudgeM
    from nudge_rag.core import crossings, selection

    seen = {}
    real = selection.crossing_events  # the estimators sweep through selection.sweep_pool

    def spy(lines, *args):
        seen["lines"], seen["result"] = lines, real(lines, *args)
        return seen["result"]

    selection.crossing_events = spy
    try:
        peak = _peak_mb(lambda: baseline_engine.paper_protocol(NudgeM).fit(*prob.fit_args))
    finally:
        selection.crossing_events = real
    facts = {"problem": prob.name, "pairs": int(len(seen["lines"].pair_query)),
             "moved": int(seen["lines"].q_e.shape[1]),
             "crossings": crossings.count_crossings(seen["lines"]),
             "events_kept": int(len(seen["result"].gamma)),
             "complete": bool(seen["result"].complete), "peak_mb": peak}
    if old is not None:
        facts["peak_mb_before"] = _peak_mb(
            lambda: baseline_engine.paper_protocol(old.NudgeM).fit(*prob.fit_args))
    return facts


def search_facts(prob: Problem, old) -> dict:
    """Milliseconds per NUDGE-N evaluation of one γ (the grid search's unit of work; median
    over the search) and seconds of the NUDGE-M search (building the validation problem,
    products included, plus the sweep), today and, when loaded, in the old engine."""
    from nudge_rag import NudgeM, NudgeN
    from nudge_rag.core import gamma_search, selection

    # (tag, validation problem class, its method that scores one γ, owner and name of the
    # sweep, the estimators); today's estimators score problems pooled (issue 13)
    engines = [("", gamma_search.ValidationProblem, "per_question", selection, "sweep_pool",
                NudgeN, NudgeM)]
    if old is not None:
        old_problem = sys.modules[old.__package__ + ".gamma_search"].ValidationProblem
        old_selection = sys.modules.get(old.__package__ + ".selection")
        if hasattr(old_selection, "sweep_pool"):  # an engine since issue 13
            how = ("per_question", old_selection, "sweep_pool")
        else:  # engines before the dense-label paths swept in a method of the problem
            how = ("metric", old_problem if hasattr(old_problem, "sweep_linear") else old,
                   "sweep_linear")
        engines.append(("_before", old_problem, *how, old.NudgeN, old.NudgeM))
    facts = {}
    for tag, problem_cls, evaluation, sweep_owner, sweep, n_cls, m_cls in engines:
        with _timed(problem_cls, evaluation) as n:
            baseline_engine.paper_protocol(n_cls).fit(*prob.fit_args)
        with _timed(problem_cls, "__init__") as build, _timed(sweep_owner, sweep) as m:
            baseline_engine.paper_protocol(m_cls).fit(*prob.fit_args)
        facts[f"n_eval_ms{tag}"] = 1e3 * float(np.median(n["seconds"]))
        facts[f"m_sweep_s{tag}"] = sum(build["seconds"]) + sum(m["seconds"])
    return facts


@contextlib.contextmanager
def _timed(owner, name: str):
    """Time every call of ``owner.name`` (a function or method) while in the block."""
    real = getattr(owner, name)
    tally = {"seconds": []}

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            tally["seconds"].append(time.perf_counter() - start)

    setattr(owner, name, wrapper)
    try:
        yield tally
    finally:
        setattr(owner, name, real)


def _peak_mb(work) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def time_table(rows: list[dict], engines) -> str:
    by = {(r["problem"], r["method"], r["engine"]): r for r in rows}
    head = ["problem", "rel/question", "method", *[f"{e} s" for e in engines],
            *(["÷ nudge-ft"] if "nudge-ft" in engines else []),
            *(["÷ before (best; median)", "same γ"] if "before" in engines else []),
            "test NDCG@10 (ours / nudge-ft)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (problem, method, engine), r in by.items():
        if engine != "nudge-rag":
            continue
        ours, ft = r, by.get((problem, method, "nudge-ft"))
        cells = [problem, f"{r['rel_per_question']:.1f}", "NUDGE-" + method,
                 *[f"{by[(problem, method, e)]['best_s']:.3f}" for e in engines]]
        if ft is not None:
            cells.append(f"{ours['best_s'] / ft['best_s']:.2f}×")
        if "before" in engines:
            old = by[(problem, method, "before")]
            cells += [f"{ours['best_s'] / old['best_s']:.2f}×; "
                      f"{ours['median_s'] / old['median_s']:.2f}×",
                      "yes" if old["gamma"] == ours["gamma"] and
                      abs(old["test_ndcg@10"] - ours["test_ndcg@10"]) <= 1e-12 else "NO"]
        cells.append(f"{ours['test_ndcg@10']:.4f} / "
                     + (f"{ft['test_ndcg@10']:.4f}" if ft is not None else "–"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(facts: list[dict]) -> str:
    nan = float("nan")
    lines = ["| problem | relevant pairs | moved records | NUDGE-N ms per γ (before) | "
             "NUDGE-M search s (before) | crossings in all | events kept | "
             "peak MB of a NudgeM fit (before) |", "|---|---|---|---|---|---|---|---|"]
    for f in facts:
        lines.append(
            f"| {f['problem']} | {f['pairs']:,} | {f['moved']:,} | {f['n_eval_ms']:.1f} "
            f"({f.get('n_eval_ms_before', nan):.1f}) | {f['m_sweep_s']:.3f} "
            f"({f.get('m_sweep_s_before', nan):.3f}) | {f['crossings']:,} "
            f"| {f['events_kept']:,}{'' if f['complete'] else ' (metric-changing)'} "
            f"| {f['peak_mb']:.0f} ({f.get('peak_mb_before', nan):.0f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["dense", "cranfield", "scifact"],
                    choices=["dense", "cranfield", "scifact"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--baseline-ref", default=baseline_engine.BEFORE_ISSUE_17,
                    help="git commit of the old engine to time beside (empty: none)")
    ap.add_argument("--no-nudge-ft", action="store_true",
                    help="leave nudge-ft out (many rounds of today's engine against the old one)")
    ap.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = ap.parse_args(argv)
    old = baseline_engine.load(args.baseline_ref) if args.baseline_ref else None
    engines = tuple(e for e in ENGINES if (e != "before" or old is not None)
                    and (e != "nudge-ft" or not args.no_nudge_ft))
    rows, facts = [], []
    for name in args.problems:
        prob = load(name, args.data)
        rows += time_problem(prob, engines, args.rounds, old)
        facts.append({**sweep_facts(prob, old), **search_facts(prob, old)})
        print(f"# {name} done", file=sys.stderr, flush=True)
    print(time_table(rows, engines))
    print()
    print(sweep_table(facts))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "sweep": facts}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
