"""Scale benchmark of the array engine on Ray: a synthetic corpus in shard files on disk, larger
than the fitting process may hold, fitted with 1 and 2 Ray workers.

``make`` writes ``--shards`` ``.npy`` files of ``--rows`` records × ``--dim`` (standard normal,
L2-normalised, float32; each shard from its own seed) and the questions (5,000 training and
1,000 validation by default, about records of the first shard, as in
``benchmarks/synthetic.py``). ``fit`` starts a local Ray with 1 worker, fits, stops it, then
the same with 2 workers, ``--repeat`` times interleaved; the driver runs in its own process
under an address-space limit (RLIMIT_AS) below the corpus size, and connects to the Ray
started outside that limit. After each fit it reads the peak memory (VmHWM) of the driver
and of every Ray worker process, and the CPU time each worker spent in the fit: on a machine
shared with others, wall time says little, and the busiest worker's CPU time is what the fit
takes on cores of its own. ``check`` fits the first ``--check-shards`` shards both on
Ray and in one process (they must fit in memory) and compares the two.

    PYTHONPATH=. python benchmarks/ray_shards.py make DIR [--shards 30 --rows 100000]
    PYTHONPATH=. python benchmarks/ray_shards.py fit DIR [--repeat 2 --limit-gb 3.5]
        [--protocol defaults]
    PYTHONPATH=. python benchmarks/ray_shards.py check DIR [--check-shards 4]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from benchmarks import synthetic
from benchmarks.baseline_engine import paper_protocol
from benchmarks.memory import peak_mb, timed


def make(folder: str, shards: int, rows: int, dim: int, n_train: int, n_val: int) -> None:
    os.makedirs(folder, exist_ok=True)
    for s in range(shards):
        rng = np.random.default_rng([7, s])
        block = rng.standard_normal((rows, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        np.save(os.path.join(folder, f"shard-{s:04d}.npy"), block)
        if s == 0:
            tq, tr, vq, vr = synthetic.questions(block, n_train, n_val)
            np.savez(os.path.join(folder, "questions.npz"), tq=tq, tr=np.array(tr), vq=vq,
                     vr=np.array(vr))
    print(json.dumps({"shards": shards, "rows": shards * rows, "dim": dim,
                      "bytes": shards * rows * dim * 4}))


def _paths(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "shard-*.npy")))


def _questions(folder: str):
    with np.load(os.path.join(folder, "questions.npz")) as q:
        return q["tq"], [[int(r[0])] for r in q["tr"]], q["vq"], [[int(r[0])] for r in q["vr"]]


def _ray_workers() -> dict[int, float]:
    """Peak memory (MB) of every Ray worker process (their titles start with ``ray::``)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::") and not title.startswith(b"ray::Dashboard"):
            out[int(pid)] = peak_mb(pid)
    return out


def driver(folder: str, protocol: str = "paper") -> dict:
    """The fit, in the limited process: connects to the running Ray. ``protocol``: the
    paper's (validation questions choose γ) or the estimator's defaults (cross-validation,
    refit, memory)."""
    import ray

    from nudge_rag import NudgeN
    from nudge_rag.ray_fit import fit_shards

    ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    # start every worker and import the engine there before timing (a cold worker costs
    # seconds on a busy machine, and the 1-worker run would otherwise pay it once, the
    # 2-worker run twice)
    threads = sorted(set(ray.get([ray.remote(_warm).remote() for _ in range(8)])))
    from nudge_rag import ray_fit

    spent = {"scan_s": 0.0, "take_s": 0.0, "gamma_search_s": 0.0}
    for owner, name, key in ((ray_fit._Corpus, "competition", "scan_s"),
                             (ray_fit._Corpus, "take", "take_s"),
                             (NudgeN, "fit_prepared", "gamma_search_s")):
        setattr(owner, name, timed(getattr(owner, name), spent, key))
    tq, tr, vq, vr = _questions(folder)
    cpu_before = {pid: _cpu_s(pid) for pid in _ray_workers()}
    t0 = time.perf_counter()
    est = fit_shards(paper_protocol(NudgeN) if protocol == "paper" else NudgeN(),
                     _paths(folder), tq, tr, vq, vr)
    fit_s = time.perf_counter() - t0
    peaks = _ray_workers()  # read before this driver exits: Ray then ends its workers
    busy = sorted((_cpu_s(pid) - cpu_before.get(pid, 0.0) for pid in peaks), reverse=True)
    return {"fit_s": fit_s, "gamma": est.gamma_, "moved": int(len(est.rows_)),
            "driver_peak_mb": peak_mb(), "ndcg10_after": est.report_["after"]["ndcg@10"],
            "worker_peak_mb": max(peaks.values()) if peaks else None,
            "n_worker_processes": len(peaks), "worker_cpu_s": [round(b, 1) for b in busy],
            "worker_blas_threads": threads,
            **spent, "driver_cpu_s": _cpu_s("self")}


def _cpu_pressure() -> float:
    """The kernel's CPU pressure ("some", last 10 s, in %): how much of the time runnable
    tasks waited for a core; near 0 on a quiet machine."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return float(fh.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return float("nan")


def _cpu_s(pid) -> float:
    """CPU seconds (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _warm() -> int:
    """Imports the engine in a worker; returns the worker's BLAS threads (Ray sets
    OMP_NUM_THREADS=1 in its workers: one thread each, so two workers never fight over the
    two cores)."""
    import nudge_rag.shards  # noqa: F401

    time.sleep(0.5)
    try:
        import threadpoolctl
    except ImportError:  # the variable BLAS reads
        return int(os.environ.get("OMP_NUM_THREADS", "0"))
    return max(i["num_threads"] for i in threadpoolctl.threadpool_info())


def _ray_cmd(*args) -> None:
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fit_with(folder: str, workers: int, limit_gb: float, protocol: str) -> dict:
    """Start a Ray of ``workers`` CPUs, fit in a limited driver process, read the peaks."""
    _ray_cmd("start", "--head", f"--num-cpus={workers}", "--object-store-memory=400000000",
             "--include-dashboard=false", "--disable-usage-stats")
    limit = int(limit_gb * 2**30)

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    load_before, pressure_before = os.getloadavg()[0], _cpu_pressure()
    try:
        done = subprocess.run([sys.executable, __file__, "driver", folder, "--protocol",
                               protocol], preexec_fn=limited,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        row = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        _ray_cmd("stop", "--force")
    row.update({"workers": workers, "limit_as_gb": limit_gb, "protocol": protocol,
                "load_avg_1m_before": load_before, "load_avg_1m": os.getloadavg()[0],
                "cpu_pressure_some_avg10_before": pressure_before,
                "cpu_pressure_some_avg10": _cpu_pressure()})
    return row


def fit(folder: str, repeat: int, limit_gb: float, protocol: str) -> None:
    paths = _paths(folder)
    shard_mb = os.path.getsize(paths[0]) / 2**20
    corpus_gb = sum(os.path.getsize(p) for p in paths) / 2**30
    print(json.dumps({"shards": len(paths), "shard_mb": round(shard_mb, 1),
                      "corpus_gb": round(corpus_gb, 2), "limit_as_gb": limit_gb}), flush=True)
    times, busiest = {1: [], 2: []}, {1: [], 2: []}
    for _ in range(repeat):
        for workers in (1, 2):
            row = fit_with(folder, workers, limit_gb, protocol)
            times[workers].append(row["fit_s"])
            busiest[workers].append(max(row["worker_cpu_s"] or [float("nan")]))
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
    print(json.dumps({"median_fit_s_1": float(np.median(times[1])),
                      "median_fit_s_2": float(np.median(times[2])),
                      "ratio_2_over_1": float(np.median(times[2]) / np.median(times[1])),
                      # the busiest worker's CPU time: the wall time on cores of its own
                      "busiest_worker_cpu_ratio_2_over_1":
                          float(np.median(busiest[2]) / np.median(busiest[1]))}))


def check(folder: str, n_shards: int) -> None:
    """Ray (2 workers, started here) against the in-process fit on the first shards."""
    import ray

    from nudge_rag import NudgeN
    from nudge_rag.ray_fit import fit_shards

    paths = _paths(folder)[:n_shards]
    tq, tr, vq, vr = _questions(folder)
    docs = np.concatenate([np.load(p) for p in paths])
    want = paper_protocol(NudgeN).fit(docs, tq, tr, vq, vr)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    got = fit_shards(paper_protocol(NudgeN), paths, tq, tr, vq, vr)
    ray.shutdown()
    same = (got.gamma_ == want.gamma_ and np.array_equal(got.rows_, want.rows_)
            and np.array_equal(got.vectors_, want.vectors_) and got.report_ == want.report_)
    print(json.dumps({"records": len(docs), "shards": n_shards, "gamma": got.gamma_,
                      "identical": bool(same)}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["make", "fit", "check", "driver"])
    ap.add_argument("folder")
    ap.add_argument("--shards", type=int, default=30)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--limit-gb", type=float, default=3.5)
    ap.add_argument("--check-shards", type=int, default=4)
    ap.add_argument("--protocol", choices=["paper", "defaults"], default="paper",
                    help="fit with the paper's protocol (validation questions choose γ) or "
                    "NudgeN's defaults (cross-validation over the training questions too)")
    args = ap.parse_args(argv)
    if args.command == "make":
        make(args.folder, args.shards, args.rows, args.dim, args.train, args.val)
    elif args.command == "fit":
        fit(args.folder, args.repeat, args.limit_gb, args.protocol)
    elif args.command == "check":
        check(args.folder, args.check_shards)
    else:
        print(json.dumps(driver(args.folder, args.protocol)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
