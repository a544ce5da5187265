"""Fit time and peak memory of NudgeN / NudgeM against nudge-ft on synthetic corpora.

Two shapes: ``sparse`` (``synthetic.corpus``/``questions``: n records, each question names one
record, so few records move) at the sizes given, and with ``--dense`` the densely labelled
problem of ``synthetic.dense_labels`` (3,600 records, 20-60 relevant records per question, so
every record moves). Each (shape, n, method) runs in a fresh child process so that its peak RSS
is its own; the parent prints one table with ratios against nudge-ft measured in the same run,
and, for the ``before`` rows (the engine of ``--baseline-ref``, see ``baseline_engine``), the
ratio of today's engine to it.

    python benchmarks/scale.py                      # n = 100k, 300k, 1M
    python benchmarks/scale.py --sizes 100000 --json bench-results/scale.json
    python benchmarks/scale.py --dense --methods "nudge-rag NudgeN" "before NudgeN"
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

# nudge-ft's peak RSS per record, measured at n = 300k on this machine (GB per 1M records)
FT_GB_PER_MILLION = {"nudge-ft NUDGE-N": 27.7, "nudge-ft NUDGE-M": 17.3}
METHODS = ("nudge-rag NudgeN", "nudge-rag NudgeM", "nudge-ft NUDGE-N", "nudge-ft NUDGE-M",
           "before NudgeN", "before NudgeM")
DENSE_N = 3600  # records of the dense shape


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def problem(shape: str, n: int, seed: int):
    """``(docs, train_q, train_rel, val_q, val_rel)`` of one shape."""
    import synthetic

    if shape == "dense":
        return synthetic.dense_labels(seed=seed)[:5]
    docs = synthetic.corpus(n, seed=seed)
    return (docs, *synthetic.questions(docs, seed=seed + 1))


def child(shape: str, n: int, method: str, seed: int, ref: str) -> dict:
    import numpy as np

    docs, tq, tr, vq, vr = problem(shape, n, seed)
    ready_mb = _peak_mb()
    if not method.startswith("nudge-ft"):
        import baseline_engine

        if method.startswith("before"):
            engine = baseline_engine.load(ref)
            NudgeM, NudgeN = engine.NudgeM, engine.NudgeN
        else:
            from nudge_rag import NudgeM, NudgeN

        est = baseline_engine.paper_protocol(NudgeN if method.endswith("NudgeN") else NudgeM)
        start = time.perf_counter()
        est.fit(docs, tq, tr, vq, vr)
        seconds = time.perf_counter() - start
        extra = {"gamma": est.gamma_, "val_before": est.report_["before"]["ndcg@10"],
                 "val_after": est.report_["after"]["ndcg@10"]}
    else:
        import nudge

        cls = nudge.NUDGEN if method.endswith("NUDGE-N") else nudge.NUDGEM
        train = {"q_embs": tq, "q_ans_indx": [sorted(r) for r in tr]}
        val = {"q_embs": vq, "q_ans_indx": [sorted(r) for r in vr]}
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
            out = cls(device="cpu").finetune_embeddings(docs, train, val)
        seconds = time.perf_counter() - start
        extra = {"moved_rows": int(np.any(out != docs, axis=1).sum())}
    rel = float(np.mean([len(r) for r in list(tr) + list(vr)]))
    return {"shape": shape, "n": len(docs), "method": method, "seconds": seconds,
            "peak_rss_mb": _peak_mb(), "rss_before_fit_mb": ready_mb,
            "corpus_mb": docs.nbytes / 2**20, "rel_per_question": rel, **extra}


def available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def run_child(shape: str, n: int, method: str, seed: int, ref: str) -> dict:
    cmd = [sys.executable, __file__, "--child", shape, str(n), method, "--seed", str(seed),
           "--baseline-ref", ref]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"shape": shape, "n": n, "method": method,
                "error": (proc.stderr or "killed").strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratios(r: dict, by_key: dict) -> tuple[str, str]:
    """Speed-up over nudge-ft, and time over the engine before (for nudge-rag rows)."""
    if not r["method"].startswith("nudge-rag"):
        return "", ""
    variant = r["method"].split()[-1]
    ft = by_key.get((r["shape"], r["n"], "nudge-ft NUDGE-" + variant[-1]), {})
    before = by_key.get((r["shape"], r["n"], "before " + variant), {})
    return (f"{ft['seconds'] / r['seconds']:.1f}×" if "seconds" in ft else "",
            f"{r['seconds'] / before['seconds']:.2f}×" if "seconds" in before else "")


def table(rows: list[dict]) -> str:
    lines = ["| shape | n | relevant / question | method | fit s | peak RSS GB | corpus GB | "
             "speed-up vs nudge-ft | time ÷ before | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {(r["shape"], r["n"], r["method"]): r for r in rows}
    for r in rows:
        head = f"| {r['shape']} | {r['n']:,} |"
        if "error" in r or "skipped" in r:
            lines.append(f"{head} – | {r['method']} | – | – | – | – | – | "
                         f"{r.get('skipped') or 'failed: ' + r['error'].splitlines()[-1]} |")
            continue
        speedup, vs_before = _ratios(r, by_key)
        note = (f"γ={r['gamma']:.3f}, val NDCG@10 {r['val_before']:.3f}→{r['val_after']:.3f}"
                if "gamma" in r else "")
        lines.append(f"{head} {r['rel_per_question']:.1f} | {r['method']} | {r['seconds']:.2f} | "
                     f"{r['peak_rss_mb'] / 1024:.2f} | {r['corpus_mb'] / 1024:.2f} | {speedup} | "
                     f"{vs_before} | {note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000],
                    help="record counts of the sparse shape (none: skip it)")
    ap.add_argument("--dense", action="store_true", help="add the densely labelled shape")
    ap.add_argument("--methods", nargs="+", default=list(METHODS[:4]), choices=METHODS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every child, methods in turn; the best round is kept")
    ap.add_argument("--baseline-ref", default="f73073a",
                    help="git commit of the engine the 'before' rows run (default: the last "
                         "one before the dense-label engine)")
    ap.add_argument("--json", type=Path, help="write the rows here as JSON")
    ap.add_argument("--child", nargs=3, metavar=("SHAPE", "N", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        shape, n, method = args.child
        print(json.dumps(child(shape, int(n), method, args.seed, args.baseline_ref)))
        return 0
    runs = [("sparse", n) for n in args.sizes] + ([("dense", DENSE_N)] if args.dense else [])
    rows = []
    for shape, n in runs:
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for method in args.methods:
                need = FT_GB_PER_MILLION.get(method, 0) * n / 1e6
                if need and need > 0.9 * available_gb():
                    best[method] = {"shape": shape, "n": n, "method": method, "skipped":
                                    f"not run: needs about {need:.0f} GB, "
                                    f"{available_gb():.0f} free"}
                    continue
                row = run_child(shape, n, method, args.seed, args.baseline_ref)
                print(f"# {row}", file=sys.stderr, flush=True)
                if row.get("seconds", np.inf) < best.get(method, {}).get("seconds", np.inf):
                    best[method] = row
                best.setdefault(method, row)
        rows += [best[m] for m in args.methods]
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": os.uname().nodename, "rows": rows},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
