"""Scale benchmark on Milvus: milvus-lite run as its own server process (as a Milvus server or
cluster is), an HNSW index (M=16, efConstruction=64, searched with ef=100).

Two engines: milvus-lite 3 (what ``pip install "pymilvus[milvus-lite]"`` gives today, a Python
engine over per-segment FAISS indexes), or with ``--cpp DIR`` the compiled Milvus server that
milvus-lite 2.5 ships (``pip install --target DIR --no-deps milvus-lite==2.5.1``), run
directly; it builds only FLAT and IVF_FLAT indexes, so there the index is IVF_FLAT with
Milvus's sizing rule nlist ≈ 4·√n (rounded to a power of two: 1,024 at 100k, 4,096 at 1M),
searched with nprobe=32.

For each corpus size: insert the synthetic corpus (``benchmarks/synthetic.py``) into a
collection, then fit NUDGE-N in a fresh process that reaches it only through the Milvus client
(reads by id, one HNSW search per validation question). Every size is fitted on the very same
questions: they ask about records of the smallest corpus, which each larger one begins with.
Reported: insert time, fit time (and within it the time spent in searches and in reads by
id), the fitting process's peak memory (VmHWM: the client alone,
the engine runs in the server process) and the server process's peak memory.

    PYTHONPATH=. python benchmarks/milvus.py 100000 1000000 [--train 5000 --val 1000]
        [--keep DIR] [--repeat 3] [--cpp DIR]

``--keep DIR`` keeps the milvus-lite data folder, so a later run fits again without
inserting and indexing again (a kept collection that is short, or indexed otherwise than
this run asks, is filled again).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import synthetic
from benchmarks.memory import peak_mb, timed

INDEX = {"index_type": "HNSW", "metric_type": "COSINE",
         "params": {"M": 16, "efConstruction": 64}}
SEARCH = {"params": {"ef": 100}}
CPP_SEARCH = {"params": {"nprobe": 32}}


def cpp_index(n: int) -> dict:
    """milvus-lite 2.5's server builds FLAT and IVF_FLAT indexes only: IVF_FLAT with about
    4·√n lists (Milvus's rule of thumb), a power of two."""
    nlist = 2 ** int(round(np.log2(4 * np.sqrt(n))))
    return {"index_type": "IVF_FLAT", "metric_type": "COSINE", "params": {"nlist": nlist}}


def _collection(n: int) -> str:
    return f"docs_{n}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpp_command(cpp: str, root: str, port: int) -> tuple[list[str], dict]:
    """milvus-lite 2.5's compiled server (its ``lib/milvus``), serving ``root/bench.db`` on
    ``port``: the command and environment its own launcher would use."""
    lib = os.path.join(cpp, "milvus_lite", "lib")
    if not os.path.isfile(os.path.join(lib, "milvus")):
        raise SystemExit(f"--cpp {cpp}: no milvus_lite/lib/milvus there; install it with "
                         f"pip install --target {cpp} --no-deps milvus-lite==2.5.1")
    env = {**os.environ, "LD_LIBRARY_PATH": lib}
    return [os.path.join(lib, "milvus"), os.path.join(root, "bench.db"),
            f"127.0.0.1:{port}", "ERROR"], env


def start_server(root: str, cpp: str | None = None):
    """milvus-lite's own server command on a free local port; returns (process, uri)."""
    from pymilvus import MilvusClient

    port = _free_port()
    if cpp:
        cmd, env = _cpp_command(cpp, root, port)
        env["GLOG_log_dir"] = root  # its log files, beside its data rather than in /tmp
    else:
        cmd = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", root, "--host",
               "127.0.0.1", "--port", str(port)]
        env = None
    proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            MilvusClient(uri=uri, timeout=2).list_collections()
            return proc, uri
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("milvus-lite server did not start")


def load(uri: str, n: int, d: int, index: dict, wait: bool) -> dict:
    """Creates and fills the size's collection unless a kept folder already has it, whole
    and with ``index``; with
    ``wait``, returns once every row is covered by the index (milvus-lite 3 builds each
    segment's index in the background, after a flush and after a load; a fit before that
    scans the uncovered segments)."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    name = _collection(n)
    if client.has_collection(name):  # a kept folder: the server opens it released
        client.load_collection(name)
        held = client.query(name, filter="", output_fields=["count(*)"],
                            consistency_level="Strong")[0]["count(*)"]
        if held == n and _same_index(client.describe_index(name, "embedding"), index):
            return {"load_s": None, "index_wait_s": _wait_indexed(uri, n) if wait else None}
        client.drop_collection(name)  # an interrupted insert, or another index: fill it again
    docs = synthetic.corpus(n, d)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=d)
    params = client.prepare_index_params()
    params.add_index("embedding", **index)
    t0 = time.perf_counter()
    client.create_collection(name, schema=schema, index_params=params)
    for start in range(0, n, 5000):
        block = docs[start:start + 5000]
        client.insert(name, [{"id": f"r{start + i}", "embedding": v}
                             for i, v in enumerate(block)])
    client.flush(name)
    return {"load_s": time.perf_counter() - t0,
            "index_wait_s": _wait_indexed(uri, n) if wait else None}


def _same_index(got: dict, index: dict) -> bool:
    """Whether the index a server describes is ``index``, as far as it tells: the compiled
    server reports the parameters (a folder kept before the sizing rule has nlist=1024 at
    every size), milvus-lite 3 only the type and the metric."""
    want = {"index_type": index["index_type"], "metric_type": index["metric_type"],
            **index.get("params", {})}
    return all(str(got.get(key, value)) == str(value) for key, value in want.items())


def _wait_indexed(uri: str, n: int, limit_s: float = 4 * 3600) -> float:
    """Seconds until the index covers every row."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        got = _indexed(uri, n)
        if got["total_rows"] and got["indexed_rows"] >= got["total_rows"]:
            break
        time.sleep(10)
    return time.perf_counter() - t0


def _indexed(uri: str, n: int) -> dict:
    """How much of the collection its HNSW index covers: milvus-lite builds one index per
    segment (up to 100,000 rows), in the background; rows not yet covered are scanned."""
    from pymilvus import MilvusClient

    got = MilvusClient(uri=uri).describe_index(_collection(n), "embedding")
    return {"indexed_rows": got.get("indexed_rows"), "total_rows": got.get("total_rows")}


def child(uri: str, n: int, questions_path: str, search: dict,
          protocol: str = "defaults") -> dict:
    """Runs in its own process: only the questions and the Milvus client live here."""
    from pymilvus import MilvusClient

    from nudge_rag import NudgeN
    from nudge_rag.stores.milvus import MilvusAdapter

    with np.load(questions_path) as qs:
        tq, tr, vq, vr = qs["tq"], qs["tr"], qs["vq"], qs["vr"]
    class BareMilvus(MilvusAdapter):
        """The adapter over a bare client: a fit reads no payloads."""

        def payloads(self, ids):
            return [None] * len(ids)

    adapter = BareMilvus(MilvusClient(uri=uri), _collection(n), search_params=search)
    spent = {"search_s": 0.0, "read_s": 0.0, "ids_s": 0.0, "count_s": 0.0,
             "gamma_search_s": 0.0}
    for method, key in (("search", "search_s"), ("fetch", "read_s"), ("existing", "ids_s"),
                        ("count", "count_s")):
        setattr(adapter, method, timed(getattr(adapter, method), spent, key))
    NudgeN.fit_prepared = timed(NudgeN.fit_prepared, spent, "gamma_search_s")
    from benchmarks.databases import timed_store_fit

    return {"n": n, **timed_store_fit(adapter, tq, tr, vq, vr, peak_mb, protocol), **spent}


def run(args) -> None:
    root = args.keep or tempfile.mkdtemp(prefix="nudge-milvus-bench-")
    server, uri = start_server(root, args.cpp)
    search = CPP_SEARCH if args.cpp else SEARCH
    try:
        for n in args.sizes:
            row = load(uri, n, args.dim, cpp_index(n) if args.cpp else INDEX, wait=not args.cpp)
            qpath = os.path.join(root, f"questions_{n}.npz")
            ask = synthetic.corpus(min(args.sizes), args.dim)
            tq, tr, vq, vr = synthetic.questions(ask, args.train, args.val)
            np.savez(qpath, tq=tq, tr=np.array(tr), vq=vq, vr=np.array(vr))
            fits = []
            for _ in range(args.repeat):
                done = subprocess.run([sys.executable, __file__, "--child", uri, str(n), qpath,
                                       "--search", json.dumps(search), "--protocol",
                                       args.protocol],
                                      capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"the fit failed:\n{done.stderr[-3000:]}")
                fits.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row.update(fits[0])
            row["fit_s"] = float(np.median([f["fit_s"] for f in fits]))
            row["fit_s_all"] = [round(f["fit_s"], 2) for f in fits]
            row["peak_rss_mb"] = max(f["peak_rss_mb"] for f in fits)
            row["server_peak_rss_mb"] = peak_mb(server.pid)
            row.update(_indexed(uri, n))
            row["protocol"] = args.protocol
            row["engine"] = "milvus-lite 2.5 (compiled Milvus)" if args.cpp else \
                "milvus-lite 3 (Python)"
            row["load_avg_1m"] = os.getloadavg()[0]
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
    finally:
        server.terminate()
        server.wait(60)
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    from benchmarks.databases import size_arguments

    ap = size_arguments("keep the milvus-lite folder here and reuse it")
    ap.add_argument("--cpp", metavar="DIR", help="run the compiled Milvus server of the "
                    "milvus-lite 2.5 installed in DIR (pip install --target DIR --no-deps "
                    "milvus-lite==2.5.1) instead of milvus-lite 3")
    ap.add_argument("--search", help=argparse.SUPPRESS)  # the child's search parameters
    args = ap.parse_args(argv)
    if args.child:
        search = json.loads(args.search) if args.search else SEARCH
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2], search,
                               args.protocol)))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
