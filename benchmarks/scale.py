"""Fit time and peak memory of NudgeN / NudgeM against nudge-ft on a synthetic corpus.

Each (n, method) runs in a fresh child process so that its peak RSS is its own; the parent
prints one table with ratios against nudge-ft measured in the same run.

    python benchmarks/scale.py                      # n = 100k, 300k, 1M
    python benchmarks/scale.py --sizes 100000 --json bench-results/scale.json
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

# nudge-ft's peak RSS per record, measured at n = 300k on this machine (GB per 1M records)
FT_GB_PER_MILLION = {"nudge-ft NUDGE-N": 27.7, "nudge-ft NUDGE-M": 17.3}
METHODS = ("nudge-rag NudgeN", "nudge-rag NudgeM", "nudge-ft NUDGE-N", "nudge-ft NUDGE-M")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(n: int, method: str, seed: int) -> dict:
    import numpy as np
    import synthetic

    docs = synthetic.corpus(n, seed=seed)
    tq, tr, vq, vr = synthetic.questions(docs, seed=seed + 1)
    ready_mb = _peak_mb()
    if method.startswith("nudge-rag"):
        from nudge_rag import NudgeM, NudgeN

        est = NudgeN() if method.endswith("NudgeN") else NudgeM()
        start = time.perf_counter()
        est.fit(docs, tq, tr, vq, vr)
        seconds = time.perf_counter() - start
        extra = {"gamma": est.gamma_, "val_before": est.report_["before"]["ndcg@10"],
                 "val_after": est.report_["after"]["ndcg@10"]}
    else:
        import nudge

        cls = nudge.NUDGEN if method.endswith("NUDGE-N") else nudge.NUDGEM
        train = {"q_embs": tq, "q_ans_indx": tr}
        val = {"q_embs": vq, "q_ans_indx": vr}
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
            out = cls(device="cpu").finetune_embeddings(docs, train, val)
        seconds = time.perf_counter() - start
        extra = {"moved_rows": int(np.any(out != docs, axis=1).sum())}
    return {"n": n, "method": method, "seconds": seconds, "peak_rss_mb": _peak_mb(),
            "rss_before_fit_mb": ready_mb, "corpus_mb": docs.nbytes / 2**20, **extra}


def available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def run_child(n: int, method: str, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), method, "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"n": n, "method": method, "error": (proc.stderr or "killed").strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| n | method | fit s | peak RSS GB | corpus GB | speed-up vs nudge-ft | note |",
             "|---|---|---|---|---|---|---|"]
    by_key = {(r["n"], r["method"]): r for r in rows}
    for r in rows:
        ref_name = "nudge-ft NUDGE-N" if r["method"].endswith(("NudgeN", "NUDGE-N")) \
            else "nudge-ft NUDGE-M"
        ref = by_key.get((r["n"], ref_name), {})
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['n']:,} | {r['method']} | – | – | – | – | "
                         f"{r.get('skipped') or 'failed: ' + r['error'].splitlines()[-1]} |")
            continue
        ratio = (f"{ref['seconds'] / r['seconds']:.1f}×" if "seconds" in ref
                 and r["method"].startswith("nudge-rag") else "")
        note = (f"γ={r['gamma']:.3f}, val NDCG@10 {r['val_before']:.3f}→{r['val_after']:.3f}"
                if "gamma" in r else "")
        lines.append(f"| {r['n']:,} | {r['method']} | {r['seconds']:.2f} | "
                     f"{r['peak_rss_mb'] / 1024:.2f} | {r['corpus_mb'] / 1024:.2f} | {ratio} | "
                     f"{note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the rows here as JSON")
    ap.add_argument("--child", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.seed)))
        return 0
    rows = []
    for n in args.sizes:
        for method in args.methods:
            need = FT_GB_PER_MILLION.get(method, 0) * n / 1e6
            if need and need > 0.9 * available_gb():
                rows.append({"n": n, "method": method, "skipped":
                             f"not run: needs about {need:.0f} GB, {available_gb():.0f} free"})
                continue
            rows.append(run_child(n, method, args.seed))
            print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": os.uname().nodename, "rows": rows},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
