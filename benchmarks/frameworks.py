"""Fit time and query latency through LlamaIndex and LangChain, against the array engine.

Full SciFact with its cached all-MiniLM-L6-v2 embeddings: the stores are built from those
vectors and questions come pre-embedded, so question embedding is excluded and what is timed
is what nudge-rag adds. Every row is measured in this process; ratios are against the array
engine at the same settings (fit: the defaults, cross-validated choice, refit and query
memory) and against the store's plain retriever (query latency), vector in and then text in
(the retrievers as users call them, the offline model embedding each question). The nudged
retriever is timed twice: with the delta's query memory (the default) and without it (the
same delta, memory dropped), each against the plain retriever in the same rounds.

    python benchmarks/frameworks.py [--data ../shared/data/scifact] [--repeat 5]
                                    [--queries 100] [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dataclasses  # noqa: E402

from nudge_rag import EmbeddingFinetuner, NudgeN  # noqa: E402
from nudge_rag.datasets import data_root, load_beir, load_split  # noqa: E402


def per_query(fns, queries) -> tuple[list[float], list[float], list[list[float]]]:
    """Median seconds per query of each of ``fns``, called in turn on every query so that
    they meet the same machine conditions: wall-clock, and CPU time of this process (which
    other programs on a shared machine do not inflate); and each function's CPU time per
    query (for paired ratios: calls on one query run back to back, under one load)."""
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for q in queries:
        for w, c, fn in zip(wall, cpu, fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(q)
            c.append(time.process_time() - start_cpu)
            w.append(time.perf_counter() - start)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu], cpu


def paired(times: list[float], base: list[float]) -> float:
    """Median over queries of one path's time over the baseline's on the same query."""
    return statistics.median(t / max(b, 1e-9) for t, b in zip(times, base))


def build_stores(split, texts):
    from langchain_community.vectorstores import FAISS
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from nudge_rag.local import langchain_embeddings, llama_index_embedding

    nodes = [TextNode(id_=d, text=texts.doc_text(d), embedding=v.tolist())
             for d, v in zip(split.doc_ids, split.doc_emb)]
    index = VectorStoreIndex(nodes, embed_model=llama_index_embedding())
    lc_emb = langchain_embeddings()
    memory = InMemoryVectorStore(lc_emb)
    for d, v in zip(split.doc_ids, split.doc_emb):
        memory.store[d] = {"id": d, "vector": v.tolist(), "text": texts.doc_text(d),
                           "metadata": {}}
    faiss = FAISS.from_embeddings([(texts.doc_text(d), v.tolist())
                                   for d, v in zip(split.doc_ids, split.doc_emb)], lc_emb,
                                  ids=list(split.doc_ids))
    return {"LlamaIndex SimpleVectorStore": index, "LangChain InMemoryVectorStore": memory,
            "LangChain FAISS (flat L2)": faiss}


def questions(split, part):
    q, rel = getattr(split, f"{part}_q"), getattr(split, f"{part}_rel")
    return [(v, {split.doc_ids[r]: g for r, g in rr.items()}) for v, rr in zip(q, rel)]


def plain_query(name, store):
    if name.startswith("LlamaIndex"):
        from llama_index.core.schema import QueryBundle

        retriever = store.as_retriever(similarity_top_k=10)
        return lambda q: retriever.retrieve(QueryBundle("", embedding=q.tolist()))
    return lambda q: store.similarity_search_with_score_by_vector(q.tolist(), k=10)


def overlay_query(name, store, delta):
    if name.startswith("LlamaIndex"):
        from llama_index.core.schema import QueryBundle

        retriever = delta.as_retriever(store, similarity_top_k=10)
        return lambda q: retriever.retrieve(QueryBundle("", embedding=q.tolist()))
    retriever = delta.as_retriever(store, k=10)
    return lambda q: retriever.search_with_scores(q.tolist())


def plain_retriever(name, store):
    """The store's own retriever as users call it: text in, the index's model embeds it."""
    if name.startswith("LlamaIndex"):
        retriever = store.as_retriever(similarity_top_k=10)
        return retriever.retrieve
    return store.as_retriever(search_kwargs={"k": 10}).invoke


def overlay_retriever(name, store, delta):
    if name.startswith("LlamaIndex"):
        return delta.as_retriever(store, similarity_top_k=10).retrieve
    return delta.as_retriever(store, k=10).invoke


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = data_root()
    ap.add_argument("--data", type=Path, default=root / "scifact" if root else None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--queries", type=int, default=100, help="test questions timed per store")
    ap.add_argument("--skip-fits", action="store_true",
                    help="fit once per store (untimed) and time the retrievers only")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS/OpenMP threads (1 keeps spinning idle threads out of the "
                         "CPU-time columns on a busy machine)")
    args = ap.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)
        try:  # torch keeps threads of its own (the model embedding the questions)
            import torch

            torch.set_num_threads(args.blas_threads)
        except ImportError:
            pass
    if args.data is None:
        ap.error("no data: pass --data DIR (a BEIR folder with cached embeddings)")
    split = load_split(args.data)
    beir = load_beir(args.data)
    split_texts = beir.queries
    stores = build_stores(split, beir)
    train, val = questions(split, "train"), questions(split, "val")

    deltas = {name: EmbeddingFinetuner(store, show_progress=False).fit(train, val)
              for name, store in stores.items()} if args.skip_fits else \
        time_fits(split, stores, train, val, args.repeat)
    print()
    queries = list(split.test_q[:args.queries])
    latency_table("vector in", stores, deltas, plain_query, overlay_query, queries)
    print()
    texts_in = [split_texts[q] for q in split.query_ids["test"][:args.queries]]
    latency_table("text in: the index's all-MiniLM-L6-v2 embeds each question", stores,
                  deltas, plain_retriever, overlay_retriever, texts_in)
    return 0


def time_fits(split, stores, train, val, repeat: int) -> dict:
    """Print the fit table (every path once per round, rounds repeated, best per path: all
    meet the same machine and allocator state) and return each store's delta."""
    fits = {"array engine NudgeN": lambda: NudgeN().fit(split.doc_emb, split.train_q,
                                                        split.train_rel, split.val_q,
                                                        split.val_rel)}
    finetuners = {name: EmbeddingFinetuner(store, show_progress=False)
                  for name, store in stores.items()}
    for name, ft in finetuners.items():
        fits[name] = lambda ft=ft: ft.fit(train, val)
    fits["array engine NudgeN, paper protocol"] = lambda: NudgeN(
        selection="validation", refit=False, memory=False).fit(
        split.doc_emb, split.train_q, split.train_rel, split.val_q, split.val_rel)
    best = dict.fromkeys(fits, float("inf"))
    best_cpu = dict.fromkeys(fits, float("inf"))
    for round_ in range(repeat + 1):
        for name, fn in fits.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_:  # the first round warms up
                best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
                best[name] = min(best[name], time.perf_counter() - start)
    array_s, array_cpu = best["array engine NudgeN"], best_cpu["array engine NudgeN"]
    print(f"| path (defaults: cv, refit, memory) | fit s (best of {repeat} interleaved rounds) "
          "| × array engine | CPU s | × array engine (CPU) |")
    print("|---|---|---|---|---|")
    for name, t in best.items():
        print(f"| {name} | {t:.3f} | {t / array_s:.2f} | {best_cpu[name]:.3f} | "
              f"{best_cpu[name] / array_cpu:.2f} |")
    return {name: ft.delta_ for name, ft in finetuners.items()}


def latency_table(title, stores, deltas, plain_of, nudged_of, queries) -> None:
    """Median ms per query of the plain retriever, the nudged one with the query memory and
    without it, all three called in turn on every query."""
    print(f"| store | plain ms/query | nudged, memory | × plain | × plain (CPU) | × plain "
          f"(CPU, paired) | nudged, no memory | × plain | × plain (CPU) | × plain (CPU, "
          f"paired) |  ({title}; median over {len(queries)} test questions, top-10)")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, store in stores.items():
        delta = deltas[name]
        bare = dataclasses.replace(delta, alpha=0.0, memory_keys=None, memory_links=None)
        fns = (plain_of(name, store), nudged_of(name, store, delta),
               nudged_of(name, store, bare))
        for q in queries[:5]:  # warm every path
            for fn in fns:
                fn(q)
        (p, m, b), (pc, mc, bc), (cp, cm, cb) = per_query(fns, queries)
        print(f"| {name} | {1e3 * p:.2f} | {1e3 * m:.2f} | {m / p:.2f} | {mc / pc:.2f} | "
              f"{paired(cm, cp):.2f} | {1e3 * b:.2f} | {b / p:.2f} | {bc / pc:.2f} | "
              f"{paired(cb, cp):.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
