"""Scale benchmark on Milvus: milvus-lite run as its own server process (as a Milvus server or
cluster is), an HNSW index (M=16, efConstruction=64, searched with ef=100).

For each corpus size: insert the synthetic corpus (``benchmarks/synthetic.py``) into a
collection, then fit NUDGE-N in a fresh process that reaches it only through the Milvus client
(reads by id, one HNSW search per validation question). Every size is fitted on the very same
questions: they ask about records of the smallest corpus, which each larger one begins with.
Reported: insert time, fit time (and within it the time spent in searches and in reads by
id), the fitting process's peak memory (VmHWM: the client alone,
the engine runs in the server process) and the server process's peak memory.

    PYTHONPATH=. python benchmarks/milvus.py 100000 1000000 [--train 5000 --val 1000]
        [--keep DIR] [--repeat 3]

``--keep DIR`` keeps the milvus-lite data folder, so a later run fits again without
inserting and indexing again.
"""

from __future__ import annotations

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


def _collection(n: int) -> str:
    return f"docs_{n}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: str):
    """milvus-lite's own server command on a free local port; returns (process, uri)."""
    from pymilvus import MilvusClient

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", root,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            MilvusClient(uri=uri, timeout=2).list_collections()
            return proc, uri
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("milvus-lite server did not start")


def load(uri: str, n: int, d: int) -> dict:
    """Creates and fills the size's collection unless a kept folder already has it."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    name = _collection(n)
    if client.has_collection(name):  # a kept folder: the server opens it released
        client.load_collection(name)
        return {"load_s": None}
    docs = synthetic.corpus(n, d)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=d)
    index = client.prepare_index_params()
    index.add_index("embedding", **INDEX)
    t0 = time.perf_counter()
    client.create_collection(name, schema=schema, index_params=index)
    for start in range(0, n, 5000):
        block = docs[start:start + 5000]
        client.insert(name, [{"id": f"r{start + i}", "embedding": v}
                             for i, v in enumerate(block)])
    client.flush(name)
    return {"load_s": time.perf_counter() - t0}


def _indexed(uri: str, n: int) -> dict:
    """How much of the collection its HNSW index covers: milvus-lite builds one index per
    segment (up to 100,000 rows), in the background; rows not yet covered are scanned."""
    from pymilvus import MilvusClient

    got = MilvusClient(uri=uri).describe_index(_collection(n), "embedding")
    return {"indexed_rows": got.get("indexed_rows"), "total_rows": got.get("total_rows")}


def child(uri: str, n: int, questions_path: str) -> dict:
    """Runs in its own process: only the questions and the Milvus client live here."""
    from pymilvus import MilvusClient

    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores.milvus import MilvusAdapter

    with np.load(questions_path) as qs:
        tq, tr, vq, vr = qs["tq"], qs["tr"], qs["vq"], qs["vr"]
    adapter = MilvusAdapter(MilvusClient(uri=uri), _collection(n), search_params=SEARCH)
    spent = {"search_s": 0.0, "read_s": 0.0, "count_s": 0.0}
    for method, key in (("search", "search_s"), ("fetch", "read_s"), ("count", "count_s")):
        setattr(adapter, method, timed(getattr(adapter, method), spent, key))
    train = [(q, {f"r{r[0]}": 1.0}) for q, r in zip(tq, tr)]
    val = [(q, {f"r{r[0]}": 1.0}) for q, r in zip(vq, vr)]
    rss_before = peak_mb()
    t0 = time.perf_counter()
    delta = EmbeddingFinetuner(adapter, show_progress=False).fit(train, val)
    fit_s = time.perf_counter() - t0
    report = delta.fit_report
    return {"n": n, "fit_s": fit_s, **spent, "moved": len(delta), "peak_rss_mb": peak_mb(),
            "rss_before_fit_mb": rss_before, "gamma": delta.gamma,
            "ndcg10_before": report["before"]["ndcg@10"],
            "ndcg10_after": report["after"]["ndcg@10"]}


def run(args) -> None:
    root = args.keep or tempfile.mkdtemp(prefix="nudge-milvus-bench-")
    server, uri = start_server(root)
    try:
        for n in args.sizes:
            row = load(uri, n, args.dim)
            qpath = os.path.join(root, f"questions_{n}.npz")
            ask = synthetic.corpus(min(args.sizes), args.dim)
            tq, tr, vq, vr = synthetic.questions(ask, args.train, args.val)
            np.savez(qpath, tq=tq, tr=np.array(tr), vq=vq, vr=np.array(vr))
            fits = []
            for _ in range(args.repeat):
                done = subprocess.run([sys.executable, __file__, "--child", uri, str(n), qpath],
                                      capture_output=True, text=True, check=True)
                fits.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row.update(fits[0])
            row["fit_s"] = float(np.median([f["fit_s"] for f in fits]))
            row["fit_s_all"] = [round(f["fit_s"], 2) for f in fits]
            row["peak_rss_mb"] = max(f["peak_rss_mb"] for f in fits)
            row["server_peak_rss_mb"] = peak_mb(server.pid)
            row.update(_indexed(uri, n))
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

    args = size_arguments("keep the milvus-lite folder here and reuse it").parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2])))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
