"""Run the paper's comparison on BEIR folders: every method on the same split, one report.

    PYTHONPATH=. python benchmarks/run.py --data ../shared/data/scifact \
        --data ../shared/data/cranfield --out bench-results/ --plots docs/img

Writes ``<out>/results-<UTC time>.json`` (machine-readable) and ``.md`` (tables, checks),
and, with ``--plots``, γ curves and an NDCG@10 bar chart as PNG.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):   # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.adaptor import AdaptorConfig  # noqa: E402
from benchmarks.encode import DEFAULT_MODEL, encode_dataset, resolve_model_path  # noqa: E402
from benchmarks.evaluate import top_k as rank_top_k  # noqa: E402
from benchmarks.gamma_curve import validation_curve  # noqa: E402
from benchmarks.methods import (  # noqa: E402
    METHODS,
    BenchConfig,
    BenchData,
    missing_requirement,
)
from benchmarks.ptft import PtftConfig  # noqa: E402
from benchmarks.report import checks, dataset_table  # noqa: E402
from benchmarks.splits import make_split, score_ranking, summary_table  # noqa: E402
from nudge_rag.datasets import data_root, load_beir, load_cached_embeddings  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", metavar="DIR",
                   help="BEIR folder (repeatable); default: scifact and cranfield of the "
                        "shared data")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of: {', '.join(METHODS)}")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="embedding model: its cache name under <data>/embeddings/, or a "
                        "sentence-transformers folder to encode with (default %(default)s)")
    p.add_argument("--encode", action="store_true",
                   help="encode live (cached on disk) even when the folder ships embeddings")
    p.add_argument("--cache", default=None, help="live-encode cache root "
                   "(default $NUDGE_RAG_CACHE or ~/.cache/nudge-rag/embeddings)")
    p.add_argument("--max-docs", type=int, default=None,
                   help="keep only the first N records (a quick slice; questions whose "
                        "positives all fall outside are dropped)")
    p.add_argument("--seed", type=int, default=0, help="split seed (paper: 0)")
    p.add_argument("--splits", default="paper",
                   help="comma-separated splits to run: paper (the NUDGE paper's 70/10/20) "
                        "and/or group (group-aware 70/10/20); default %(default)s")
    p.add_argument("--seeds", default=None,
                   help="comma-separated split seeds (default: --seed); with several splits "
                        "or seeds a summary table over them follows")
    p.add_argument("--ptft-steps", type=int, default=60, help="PTFT step cap (paper: 20,000)")
    p.add_argument("--ptft-max-train-s", type=float, default=None,
                   help="PTFT training-time cap in seconds per dataset")
    p.add_argument("--ptft-eval-every", type=int, default=None,
                   help="PTFT validation interval (default: half the step cap)")
    p.add_argument("--ptft-pool-k", type=int, default=3,
                   help="base-model neighbours per validation question in the PTFT pool")
    p.add_argument("--ptft-train-seq-len", type=int, default=128,
                   help="token limit for records during PTFT training (0: the model's own)")
    p.add_argument("--adaptor-max-steps", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="bench-results", help="folder for JSON and markdown")
    p.add_argument("--plots", default=None, help="folder for PNG plots (none if absent)")
    p.add_argument("--tag", default=None, help="name for the result files (default: time)")
    p.add_argument("--from-json", default=None, metavar="FILE",
                   help="run nothing: print the tables of a saved run (and --plots)")
    p.add_argument("--refresh-curves", action="store_true",
                   help="with --from-json: recompute the γ curves from the data (they are "
                        "deterministic given the saved γs) and save the JSON again")
    return p.parse_args(argv)


def machine_info(threads: int | None) -> dict:
    model_name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": model_name, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "gpu": "none"}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    from importlib import metadata

    for dist in ("sentence-transformers", "nudge-ft", "transformers"):
        try:   # versions from metadata: importing sentence-transformers alone takes seconds
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return info


def load_bench_data(path: str, args, log, kind: str = "paper",
                    seed: int | None = None) -> BenchData:
    root = Path(path)
    data = load_beir(root)
    cached = root / "embeddings" / args.model
    if cached.is_dir() and not args.encode:
        doc_ids, doc_emb, query_ids, query_emb = load_cached_embeddings(root, args.model)
        source = f"cached {cached}"
    else:
        doc_ids, doc_emb, query_ids, query_emb, folder = encode_dataset(
            data, args.model, args.cache, log=log)
        source = f"live-encoded, cache {folder}"
    if args.max_docs:
        doc_ids, doc_emb = doc_ids[:args.max_docs], doc_emb[:args.max_docs]
    split = make_split(root, kind, args.seed if seed is None else seed, doc_emb, doc_ids,
                       query_emb, query_ids)
    return BenchData(root.name, data, split, args.model, resolve_model_path(args.model), source)


def gamma_curves(bench: BenchData, rows: dict) -> dict:
    """Validation NDCG@10 on a γ grid for each NUDGE variant that ran, with chosen γs."""
    s = bench.split
    curves = {}
    for variant in ("M", "N"):
        chosen = {}
        for name, label in ((f"nudge-{variant.lower()}", "NudgeN" if variant == "N" else
                             "NudgeM"),
                            (f"nudge-{variant.lower()}-compat", "compat")):
            gamma = rows.get(name, {}).get("info", {}).get("gamma")
            if gamma is not None:
                chosen[label] = gamma
        if not chosen:
            continue
        top = max(chosen.values())
        span = max(0.6, 1.5 * top) if variant == "N" else max(0.6, 2.0 * top)
        grid = np.linspace(0.0, min(span, 4.0) if variant == "N" else span, 121)
        # the metric is piecewise constant in γ: evaluate the chosen γs exactly, not between
        # grid points
        grid = np.unique(np.concatenate([grid, list(chosen.values())]))
        values = validation_curve(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel, grid,
                                  variant)
        curves[variant] = {"gamma": grid.tolist(), "val_ndcg@10": values.tolist(),
                           "chosen": chosen}
    return curves


def run_dataset(bench: BenchData, methods: list[str], cfg: BenchConfig, log) -> dict:
    s = bench.split
    log(f"== {bench.name}: {len(s.doc_ids)} records, questions train/val/test = "
        f"{len(s.train_rel)}/{len(s.val_rel)}/{len(s.test_rel)} ({bench.source})")
    rows = {}
    for name in methods:
        method = METHODS[name]
        missing = missing_requirement(method)
        if missing:
            rows[name] = {"skipped": f"skipped: {missing} not importable"}
            log(f"  {name}: {rows[name]['skipped']}")
            continue
        out = method.run(bench, cfg)
        ranked = out.ranked if out.ranked is not None else rank_top_k(
            np.asarray(out.test_q, dtype=np.float32), np.asarray(out.doc_emb, np.float32), 10)
        scores = score_ranking(ranked, s)
        rows[name] = {**scores, "fit_s": out.fit_s, "info": out.info}
        log(f"  {name:15s} NDCG@10 {scores['ndcg@10']:.4f}  R@1 {scores['recall@1']:.4f}  "
            f"R@10 {scores['recall@10']:.4f}  fit {out.fit_s:.3f} s  {out.info or ''}")
    return rows


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = print
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        if args.refresh_curves:
            for entry in result["datasets"].values():
                bench = load_bench_data(entry["path"], args, log)
                entry["gamma_curves"] = gamma_curves(bench, entry["methods"])
            Path(args.from_json).write_text(json.dumps(result, indent=1, default=float))
        log(render_markdown(result))
        if args.plots:
            write_plots(result, Path(args.plots))
        return result
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {list(METHODS)}")
    paths = args.data
    if not paths:
        root = data_root()
        if root is None:
            raise SystemExit("no --data given and no shared data folder found")
        paths = [str(root / "scifact"), str(root / "cranfield")]
    cfg = BenchConfig(
        adaptor=AdaptorConfig(max_steps=args.adaptor_max_steps, seed=args.seed),
        ptft=PtftConfig(max_steps=args.ptft_steps, max_train_s=args.ptft_max_train_s,
                        eval_every=args.ptft_eval_every, pool_k=args.ptft_pool_k,
                        train_max_seq_len=args.ptft_train_seq_len or None, seed=args.seed),
        log=log)
    tag = args.tag or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = {name: m.label for name, m in METHODS.items()}
    result = {"command": " ".join(["benchmarks/run.py", *(argv if argv is not None
                                                            else sys.argv[1:])]),
              "started_utc": tag, "machine": machine_info(args.threads),
              "load_average_start": list(os.getloadavg()),
              "settings": {k: v for k, v in vars(args).items()}, "labels": labels,
              "datasets": {}}
    start = time.perf_counter()
    json_path = out_dir / f"results-{tag}.json"
    runs = split_runs(args)
    for path in paths:
        for kind, seed in runs:
            bench = load_bench_data(path, args, log, kind, seed)
            rows = run_dataset(bench, methods, cfg, log)
            s = bench.split
            key = bench.name if len(runs) == 1 else f"{bench.name} {kind} {seed}"
            entry = {"path": str(path), "source": bench.source, "model": bench.model,
                     "split": kind, "seed": seed, "dataset": bench.name,
                     "n_records": len(s.doc_ids),
                     "n_questions": {"train": len(s.train_rel), "val": len(s.val_rel),
                                     "test": len(s.test_rel)},
                     "methods": rows,
                     "gamma_curves": gamma_curves(bench, rows) if len(runs) == 1 else {},
                     "checks": [[text, ok] for text, ok in checks(key, rows)]}
            result["datasets"][key] = entry
            result["elapsed_s"] = time.perf_counter() - start
            json_path.write_text(json.dumps(result, indent=1, default=float))  # as we go
    result["load_average_end"] = list(os.getloadavg())
    json_path.write_text(json.dumps(result, indent=1, default=float))
    markdown = render_markdown(result)
    (out_dir / f"results-{tag}.md").write_text(markdown, encoding="utf-8")
    if args.plots:
        write_plots(result, Path(args.plots))
    log(markdown)
    log(f"wrote {json_path} in {result['elapsed_s']:.0f} s")
    return result


def split_runs(args) -> list[tuple[str, int]]:
    """The (split, seed) pairs a run covers."""
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    return [(kind.strip(), seed) for kind in args.splits.split(",") if kind.strip()
            for seed in seeds]


def render_summaries(result: dict) -> list[str]:
    """Per dataset run on several splits: the table over them."""
    by_dataset: dict = {}
    for entry in result["datasets"].values():
        key = (entry.get("split", "paper"), entry.get("seed", 0))
        by_dataset.setdefault(entry.get("dataset", ""), {})[key] = entry["methods"]
    parts = []
    for name, entries in by_dataset.items():
        if len(entries) > 1:
            parts += [f"### {name}: test NDCG@10 over {len(entries)} splits\n",
                      summary_table(entries, result["labels"]) + "\n"]
    return parts


def render_markdown(result: dict) -> str:
    parts = render_summaries(result)
    for name, entry in result["datasets"].items():
        q = entry["n_questions"]
        parts.append(f"### {name} ({entry['n_records']:,} records; {q['train']}/{q['val']}/"
                     f"{q['test']} train/val/test questions)\n")
        parts.append(dataset_table(entry["methods"], result["labels"]) + "\n")
        ptft = entry["methods"].get("ptft", {}).get("info")
        if ptft:
            parts.append(f"PTFT cap: {ptft['steps']} steps of batch {ptft['batch_size']} run "
                         f"(step cap {ptft['step_cap']}, time cap {ptft['time_cap_s']} s, "
                         f"stopped by {ptft['stopped_by']}); best checkpoint at step "
                         f"{ptft['best_step']} by validation hit@1 on a pool of "
                         f"{ptft['val_pool_size']} records; training truncates records to "
                         f"{ptft['train_max_seq_len']} tokens; "
                         + ("validation kept the base model, so the base embeddings are "
                            "reused (no re-encode).\n" if ptft["best_step"] == 0 else
                            f"re-encoding the corpus took {ptft['reencode_s']:.0f} s "
                            "(not in fit s).\n"))
        for text, ok in entry["checks"]:
            mark = "PASS" if ok else ("FAIL" if ok is False else "n/a")
            parts.append(f"- {mark}: {text}")
        parts.append("")
    return "\n".join(parts)


def write_plots(result: dict, plot_dir: Path) -> list[Path]:
    from benchmarks.plots import plot_gamma_curves, plot_ndcg_bars

    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    scores = {}
    for name, entry in result["datasets"].items():
        if entry["gamma_curves"]:
            paths.append(plot_gamma_curves(name, entry["gamma_curves"], plot_dir))
        scores[name] = {m: r for m, r in entry["methods"].items() if "ndcg@10" in r}
    paths.append(plot_ndcg_bars(scores, result["labels"], plot_dir))
    return paths


if __name__ == "__main__":
    main()
