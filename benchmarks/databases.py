"""Scale benchmark on a real database: pgvector (HNSW) on a local PostgreSQL (pgserver).

For each corpus size: load the synthetic corpus (``benchmarks/synthetic.py``) into a table with
an HNSW index, then fit NUDGE-N in a fresh process that reaches the table only through the
database (reads by id, one HNSW search per validation question). Every size is fitted on the
very same questions: they ask about records of the smallest corpus, which each larger one
begins with. Reported: load and index time, fit time and the fitting process's peak memory.

    PYTHONPATH=. python benchmarks/databases.py 100000 1000000 [--train 5000 --val 1000]
        [--keep DIR] [--repeat 3]

``--keep DIR`` keeps the database cluster in ``DIR`` (one table per size), so a later run fits
again without rebuilding the HNSW index; ``--repeat`` fits that many times per size and reports
the median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import synthetic
from benchmarks.memory import peak_mb


def _uri(server, driver="psycopg"):
    return server.get_uri().replace("postgresql://", f"postgresql+{driver}://", 1)


def _table(n: int) -> str:
    return f"docs_{n}"


def load(server, n: int, d: int, n_train: int, n_val: int, questions_path: str,
         ask_within: int) -> dict:
    """Creates the size's table and HNSW index unless a kept cluster already has them; always
    writes the questions. They ask about the first ``ask_within`` records, which every size
    shares (the corpus of a larger size begins with the smaller one), so every size is fitted
    on the very same questions."""
    import psycopg
    from pgvector.psycopg import register_vector

    docs = synthetic.corpus(n, d)
    tq, tr, vq, vr = synthetic.questions(docs[:ask_within], n_train, n_val)
    np.savez(questions_path, tq=tq, tr=np.array(tr), vq=vq, vr=np.array(vr))
    table = _table(n)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        ready = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                             (table,)).fetchone()[0] >= 2
        if ready:
            return {"load_s": None, "index_s": None}
        register_vector(conn)
        t0 = time.perf_counter()
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector({d}))")
        with conn.cursor().copy(f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") \
                as copy:
            copy.set_types(["text", "vector"])
            for i, v in enumerate(docs):
                copy.write_row((f"r{i}", v))
        t1 = time.perf_counter()
        del docs
        # The graph must fit in maintenance_work_mem or pgvector builds on disk, many times
        # slower; one parallel worker plus the leader uses both cores of a small machine.
        conn.execute("SET maintenance_work_mem = '8GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops) "
                     "WITH (m = 16, ef_construction = 64)")
        t2 = time.perf_counter()
    return {"load_s": t1 - t0, "index_s": t2 - t1}


def child(uri: str, n: int, questions_path: str, protocol: str = "defaults") -> dict:
    """Runs in its own process: only the questions and the database client live here."""
    from sqlalchemy import create_engine, event

    from nudge_rag.stores.pgvector import PgVectorAdapter

    with np.load(questions_path) as qs:
        tq, tr, vq, vr = qs["tq"], qs["tr"], qs["vq"], qs["vr"]
    engine = create_engine(uri)

    @event.listens_for(engine, "connect")
    def _ef(conn, _):
        with conn.cursor() as cur:
            cur.execute("SET hnsw.ef_search = 100")

    adapter = PgVectorAdapter(engine, _table(n), "id", "embedding", "cosine")
    return {"n": n, **timed_store_fit(adapter, tq, tr, vq, vr, peak_mb, protocol)}


def timed_store_fit(adapter, tq, tr, vq, vr, peak_mb, protocol: str = "defaults") -> dict:
    """Fit NUDGE through ``adapter`` on questions that each name record ``r<row>``, at the
    finetuner's defaults or with the ``"paper"``'s protocol: the fit's seconds, records
    moved, γ, validation NDCG@10 and ``peak_mb()`` before and after."""
    from benchmarks.baseline_engine import paper_protocol
    from nudge_rag import EmbeddingFinetuner

    train = [(q, {f"r{r[0]}": 1.0}) for q, r in zip(tq, tr)]
    val = [(q, {f"r{r[0]}": 1.0}) for q, r in zip(vq, vr)]
    rss_before = peak_mb()
    t0 = time.perf_counter()
    params = {"index_or_store": adapter, "show_progress": False}
    ft = paper_protocol(EmbeddingFinetuner, **params) if protocol == "paper" else \
        EmbeddingFinetuner(**params)
    delta = ft.fit(train, val)
    fit_s = time.perf_counter() - t0
    report = delta.fit_report
    return {"fit_s": fit_s, "moved": len(delta), "peak_rss_mb": peak_mb(),
            "rss_before_fit_mb": rss_before, "gamma": delta.gamma,
            "ndcg10_before": report["before"]["ndcg@10"],
            "ndcg10_after": report["after"]["ndcg@10"]}


def size_arguments(keep_help: str) -> argparse.ArgumentParser:
    """The command line every database scale benchmark takes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[100_000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--keep", metavar="DIR", help=keep_help)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--protocol", choices=["defaults", "paper"], default="defaults",
                    help="fit at the finetuner's defaults (cross-validation: a search per "
                    "training and validation question) or with the paper's protocol (a "
                    "search per validation question)")
    return ap


def main(argv=None) -> int:
    args = size_arguments("keep the database cluster here and reuse it").parse_args(argv)
    if args.child:
        out = child(args.child[0], int(args.child[1]), args.child[2], args.protocol)
        print(json.dumps(out))
        return 0
    import pgserver

    root = args.keep or tempfile.mkdtemp(prefix="nudge-pg-bench-")
    server = pgserver.get_server(root, cleanup_mode="stop")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        for n in args.sizes:
            qpath = f"{root}/questions_{n}.npz"
            row = load(server, n, args.dim, args.train, args.val, qpath, min(args.sizes))
            fits = []
            for _ in range(args.repeat):
                done = subprocess.run([sys.executable, __file__, "--child", _uri(server),
                                       str(n), qpath, "--protocol", args.protocol],
                                      capture_output=True, text=True, check=True)
                fits.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row.update(fits[0])
            row["fit_s"] = float(np.median([f["fit_s"] for f in fits]))
            row["fit_s_all"] = [round(f["fit_s"], 2) for f in fits]
            row["peak_rss_mb"] = max(f["peak_rss_mb"] for f in fits)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
    finally:
        server.cleanup()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
