"""``nudge-rag demo``: from nothing to a visibly better retriever, offline, in one command.

It chunks a real corpus (the Python documentation topics that ship with CPython in
``pydoc_data``, or ``--docs DIR``), embeds it with the bundled offline all-MiniLM-L6-v2 into a
LlamaIndex index, makes synthetic questions with the offline generator, splits them
(group-aware), fits NUDGE-N, and prints before/after metrics on the held-out questions with
one example. Everything it made is saved under ``--out`` for the other commands.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError

DOC_SUFFIXES = (".txt", ".md", ".markdown", ".rst")


def register(sub) -> None:
    d = sub.add_parser("demo", help="one-command demo: build, fit and compare, offline",
                       description="Build a LlamaIndex index over a real corpus with the "
                                   "offline model, generate questions, fit NUDGE-N and print "
                                   "before/after metrics on held-out questions. No network, no "
                                   "API key.")
    d.add_argument("--docs", default=None,
                   help="folder of .txt/.md/.rst files to use instead of the Python docs topics")
    d.add_argument("--out", default="nudge-demo",
                   help="folder for the index, questions and delta (default ./nudge-demo)")
    d.add_argument("--overwrite", action="store_true",
                   help="replace the output of an earlier demo at --out")
    d.add_argument("--max-chunks", type=int, default=240,
                   help="use at most this many chunks, spread over the corpus (default 240)")
    d.add_argument("--chunk-size", type=int, default=256,
                   help="chunk size in tokens (default 256, the model's input limit)")
    d.add_argument("--per-chunk", type=int, default=4,
                   help="synthetic questions per chunk (default 4)")
    d.add_argument("--seed", type=int, default=0, help="seed of the question split (default 0)")
    d.add_argument("--model", default=None,
                   help="sentence-transformers model name or path (default: bundled offline "
                        "all-MiniLM-L6-v2)")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    d.set_defaults(run=run_demo)


# -- corpus ---------------------------------------------------------------------------------------
def python_docs() -> list[tuple[str, str]]:
    """The documentation topics that ship with CPython (``pydoc_data.topics``)."""
    from pydoc_data.topics import topics

    return sorted((name, text) for name, text in topics.items() if text.strip())


def folder_docs(folder) -> list[tuple[str, str]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--docs {folder} is not a folder")
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in DOC_SUFFIXES:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if text.strip():
                out.append((str(path.relative_to(folder)), text))
    if not out:
        raise InputError(f"--docs {folder} holds no text or markdown files "
                         f"({', '.join(DOC_SUFFIXES)})")
    return out


def chunk(docs, chunk_size: int, max_chunks: int):
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    documents = [Document(text=text, id_=name, metadata={"source": name})
                 for name, text in docs]
    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=min(20, chunk_size // 8))
    nodes = splitter.get_nodes_from_documents(documents)
    # stable ids (source + position) so that questions, splits and results repeat exactly
    seen: dict[str, int] = {}
    for node in nodes:
        source = node.metadata.get("source", "doc")
        seen[source] = seen.get(source, -1) + 1
        node.id_ = f"{source}#{seen[source]}"
    if len(nodes) > max_chunks:
        keep = np.unique(np.linspace(0, len(nodes) - 1, max_chunks).round().astype(int))
        nodes = [nodes[i] for i in keep]
    return nodes


# -- steps ----------------------------------------------------------------------------------------
def _bar(total: int, desc: str, show: bool):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="text", leave=False, file=sys.stderr)


def embed(texts: list[str], model, desc: str, show: bool, batch: int = 32) -> np.ndarray:
    from ..local import encode

    bar = _bar(len(texts), desc, show)
    rows = []
    for i in range(0, len(texts), batch):
        rows.append(encode(texts[i:i + batch], model, batch))
        if bar is not None:
            bar.update(len(texts[i:i + batch]))
    if bar is not None:
        bar.close()
    return np.vstack(rows)


def first_relevant_rank(q: np.ndarray, matrix: np.ndarray, relevant_rows: list[int]) -> int:
    scores = matrix @ q
    best = max(scores[r] for r in relevant_rows)
    return int((scores > best).sum()) + 1


def pick_example(test, test_emb, ids, matrix, delta):
    """The held-out question whose best relevant chunk climbs the most (to rank 1 if any)."""
    row = {i: r for r, i in enumerate(ids)}
    nudged = matrix.copy()
    for i, vec in zip(delta.ids, delta.vectors):
        nudged[row[i]] = vec / np.linalg.norm(vec)
    best = None
    for k, q in enumerate(test):
        rel = [row[i] for i in q.relevant if i in row]
        if not rel:
            continue
        before = first_relevant_rank(test_emb[k], matrix, rel)
        after = first_relevant_rank(test_emb[k], nudged, rel)
        readable = q.metadata.get("style") == "sentence"
        key = (after == 1, readable, before - after, -k)
        if best is None or key > best[0]:
            best = (key, k, before, after)
    return best


def _line(node_with_score, relevant: set, width: int = 64) -> str:
    node = node_with_score.node
    mark = "*" if node.node_id in relevant else " "
    text = " ".join(node.get_content().split())
    if len(text) > width:
        text = text[:width - 1] + "…"
    source = node.metadata.get("source", "")
    return f"  {mark} {node_with_score.score:.3f}  [{source}] {text}"


def run_demo(args) -> int:
    from ..finetuner import EmbeddingFinetuner
    from ..local import llama_index_embedding
    from ..questions import offline_questions
    from .fit_cmd import metrics_table
    from .indexes import save_index
    from .outputs import check_demo_out

    for name in ("max_chunks", "chunk_size", "per_chunk"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    show = not args.no_progress
    out = Path(args.out)
    check_demo_out(out, args.overwrite)  # refuse a folder of someone else's before any work
    started = time.perf_counter()

    corpus = folder_docs(args.docs) if args.docs else python_docs()
    where = args.docs if args.docs else "the Python documentation topics (pydoc_data)"
    nodes = chunk(corpus, args.chunk_size, args.max_chunks)
    print(f"[1/6] corpus: {len(corpus)} documents from {where} -> {len(nodes)} chunks")

    from llama_index.core import VectorStoreIndex

    vectors = embed([n.get_content() for n in nodes], args.model, "embedding chunks", show)
    for node, vec in zip(nodes, vectors):
        node.embedding = vec.tolist()
    index = VectorStoreIndex(nodes, embed_model=llama_index_embedding(args.model))
    print(f"      indexed with {args.model or 'all-MiniLM-L6-v2 (offline)'}, "
          f"{vectors.shape[1]}-d vectors")

    qs = offline_questions(nodes, args.per_chunk)
    if len(qs) < 10:
        raise InputError(f"only {len(qs)} questions could be made from this corpus; give more "
                         "text (--docs) or raise --per-chunk")
    train, val, test = qs.split(train=0.6, val=0.2, test=0.2, seed=args.seed)
    print(f"[2/6] questions: {len(qs)} synthetic questions from the offline generator")
    print(f"[3/6] split (group-aware, seed {args.seed}): {len(train)} train, {len(val)} "
          f"validation, {len(test)} test")
    emb = embed(list(qs.texts), args.model, "embedding questions", show)
    by_id = {qid: r for r, qid in enumerate(qs.ids)}

    def with_emb(part):
        return part.with_embeddings(emb[[by_id[i] for i in part.ids]])

    ft = EmbeddingFinetuner(index, method="nudge-n", show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delta = ft.fit(with_emb(train), with_emb(val))
        result = ft.evaluate(with_emb(test), delta)
    moved = int(delta.moved.sum())
    print(f"[4/6] NUDGE-N: gamma={delta.gamma:.4g} chosen on validation, {moved} of "
          f"{len(nodes)} chunks moved")
    print("[5/6] held-out test questions, before -> after:")
    print(metrics_table(result))

    ids = list(index.vector_store.data.embedding_dict)
    matrix = np.asarray([index.vector_store.data.embedding_dict[i] for i in ids])
    test_emb = emb[[by_id[i] for i in test.ids]]
    found = pick_example(test, test_emb, ids, matrix, delta)
    if found is not None:
        _, k, before_rank, after_rank = found
        q = test[k]
        relevant = set(q.relevant)
        print(f"\nexample test question: \"{q.text}\"")
        print(f"  (answered by chunk {sorted(relevant)[0]}: rank {before_rank} before, "
              f"{after_rank} after; * marks it)")
        print("before:")
        for hit in index.as_retriever(similarity_top_k=3).retrieve(q.text):
            print(_line(hit, relevant))
        print("after (nudged retriever):")
        for hit in delta.as_retriever(index, similarity_top_k=3).retrieve(q.text):
            print(_line(hit, relevant))

    out.mkdir(parents=True, exist_ok=True)
    save_index(index, "llama-index", out / "index")
    train.to_jsonl(out / "train.jsonl")
    val.to_jsonl(out / "val.jsonl")
    test.to_jsonl(out / "test.jsonl")
    delta.save(out / "delta", overwrite=True)
    print(f"\n[6/6] saved the index, questions and delta under {out}/ "
          f"({time.perf_counter() - started:.0f} s)")
    print("next:")
    print(f"  nudge-rag inspect {out}/delta")
    print(f"  nudge-rag eval {out}/index {out}/delta {out}/test.jsonl")
    print(f"  nudge-rag apply {out}/index {out}/delta -o {out}/index-nudged")
    return 0
