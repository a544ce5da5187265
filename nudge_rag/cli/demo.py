"""``nudge-rag demo``: from nothing to a visibly better retriever, offline, in one command.

It chunks a real corpus (the Python documentation topics that ship with CPython in
``pydoc_data``, or ``--docs DIR``), embeds it with the bundled offline all-MiniLM-L6-v2 into a
LlamaIndex index, makes synthetic questions with the offline generator, splits them
(group-aware), fits NUDGE-N, and prints before/after metrics on the held-out questions with
one example. Everything it made is saved under ``--out`` for the other commands.

The built-in corpus is sampled to ``PYDOC_CHUNKS`` chunks so that the demo takes a couple of
minutes; a ``--docs`` folder is indexed whole unless ``--max-chunks`` caps it. A cap is
always printed before the embedding starts.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .outputs import check_demo_out
from .questions_cmd import PER_CHUNK

DOC_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
PYDOC_CHUNKS = 240  # the built-in corpus's sample: a demo of about two minutes on 2 cores
#: wall seconds per chunk on a quiet 2-core CPU, its 4 questions included: a 4,279-chunk folder
#: took 1,033 s of CPU time (docs/benchmarks.md, "The demo on a large folder"), on 2 threads
SECONDS_PER_CHUNK = 0.13
LARGE = 1000  # chunks from which the first line also says how long the embedding will take


def register(sub) -> None:
    d = sub.add_parser("demo", help="one-command demo: build, fit and compare, offline",
                       description="Build a LlamaIndex index over a real corpus with the "
                                   "offline model, generate questions, fit NUDGE-N and print "
                                   "before/after metrics on held-out questions. No network, no "
                                   "API key.")
    d.add_argument("--docs", default=None,
                   help="folder of .txt/.md/.rst files to use instead of the Python docs "
                        "topics; indexed whole unless --max-chunks is given")
    d.add_argument("--out", default="nudge-demo",
                   help="folder for the index, questions and delta (default ./nudge-demo)")
    d.add_argument("--overwrite", action="store_true",
                   help="replace the output of an earlier demo at --out")
    d.add_argument("--max-chunks", type=int, default=None,
                   help="use at most this many chunks, spread over the corpus (default: "
                        f"all of a --docs folder, {PYDOC_CHUNKS} of the Python docs topics)")
    d.add_argument("--chunk-size", type=int, default=256,
                   help="chunk size in tokens (default 256, the model's input limit)")
    d.add_argument("--per-chunk", type=int, default=PER_CHUNK,
                   help=f"synthetic questions per chunk (default {PER_CHUNK})")
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


def chunk(docs, chunk_size: int, show: bool = False):
    """Every chunk of ``docs``, with stable ids (source + position) so that questions, splits
    and results repeat exactly."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    documents = [Document(text=text, id_=name, metadata={"source": name})
                 for name, text in docs]
    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=min(20, chunk_size // 8))
    nodes = splitter.get_nodes_from_documents(documents, show_progress=show)
    seen: dict[str, int] = {}
    for node in nodes:
        source = node.metadata.get("source", "doc")
        seen[source] = seen.get(source, -1) + 1
        node.id_ = f"{source}#{seen[source]}"
    return nodes


def spread(nodes, max_chunks: int | None):
    """At most ``max_chunks`` of ``nodes``, evenly spaced over the corpus."""
    if max_chunks is None or len(nodes) <= max_chunks:
        return nodes
    keep = np.unique(np.linspace(0, len(nodes) - 1, max_chunks).round().astype(int))
    return [nodes[i] for i in keep]


# -- steps ----------------------------------------------------------------------------------------
@dataclass
class Built:
    """What the demo made, for the report and for saving."""

    index: object
    questions: object
    parts: tuple  # (train, val, test)
    question_emb: np.ndarray
    delta: object = None


def load_corpus(args, show: bool):
    """Chunk the corpus, apply the cap and say what was kept, before any embedding starts."""
    corpus = folder_docs(args.docs) if args.docs else python_docs()
    where = args.docs if args.docs else "the Python documentation topics (pydoc_data)"
    everything = chunk(corpus, args.chunk_size, show)
    cap = args.max_chunks if args.max_chunks is not None else \
        (None if args.docs else PYDOC_CHUNKS)
    nodes = spread(everything, cap)
    if len(nodes) < len(everything):
        print(f"[1/6] corpus: {len(corpus)} documents from {where} -> indexed {len(nodes):,} "
              f"of {len(everything):,} chunks (--max-chunks N for more)")
    else:
        print(f"[1/6] corpus: {len(corpus)} documents from {where} -> {len(nodes):,} chunks, "
              f"all indexed{_how_long(len(nodes))}")
    return nodes


def _how_long(n_chunks: int) -> str:
    if n_chunks < LARGE:
        return ""
    minutes = max(1, round(n_chunks * SECONDS_PER_CHUNK / 60))
    return (f"; about {minutes} min on a 2-core CPU (--max-chunks N to try part of it "
            "first)")


def build_index(nodes, model, show: bool):
    from llama_index.core import VectorStoreIndex

    from ..local import encode_many, llama_index_embedding

    vectors = encode_many([n.get_content() for n in nodes], model, desc="embedding chunks",
                          show=show)
    for node, vec in zip(nodes, vectors):
        node.embedding = vec.tolist()
    index = VectorStoreIndex(nodes, embed_model=llama_index_embedding(model))
    print(f"      indexed with {model or 'all-MiniLM-L6-v2 (offline)'}, "
          f"{vectors.shape[1]}-d vectors")
    return index


def make_questions(index, nodes, args, show: bool) -> Built:
    from ..local import encode_many
    from ..questions import offline_questions

    qs = offline_questions(nodes, args.per_chunk)
    if len(qs) < 10:
        raise InputError(f"only {len(qs)} questions could be made from this corpus; give more "
                         "text (--docs) or raise --per-chunk")
    parts = qs.split(train=0.6, val=0.2, test=0.2, seed=args.seed)
    print(f"[2/6] questions: {len(qs)} synthetic questions from the offline generator")
    print(f"[3/6] split (group-aware, seed {args.seed}): {len(parts[0])} train, "
          f"{len(parts[1])} validation, {len(parts[2])} test")
    emb = encode_many(list(qs.texts), args.model, desc="embedding questions",
                      show=show)
    return Built(index, qs, parts, emb)


def _embedded(built: Built, part):
    row = {qid: r for r, qid in enumerate(built.questions.ids)}
    return part.with_embeddings(built.question_emb[[row[i] for i in part.ids]])


def fit_and_score(built: Built, n_chunks: int) -> None:
    from ..finetuner import EmbeddingFinetuner
    from .fit_cmd import metrics_table

    train, val, test = (_embedded(built, p) for p in built.parts)
    ft = EmbeddingFinetuner(built.index, method="nudge-n", show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built.delta = ft.fit(train, val)
        result = ft.evaluate(test, built.delta)
    print(f"[4/6] NUDGE-N: gamma={built.delta.gamma:.4g} chosen on validation, "
          f"{int(built.delta.moved.sum())} of {n_chunks} chunks moved")
    print("[5/6] held-out test questions, before -> after:")
    print(metrics_table(result))


# -- the example ----------------------------------------------------------------------------------
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


def show_example(built: Built) -> None:
    """One test question, its top three chunks before and after, the answer marked."""
    index, delta, test = built.index, built.delta, built.parts[2]
    vectors = index.vector_store.data.embedding_dict
    ids = list(vectors)
    matrix = np.asarray([vectors[i] for i in ids])
    found = pick_example(test, _embedded(built, test).embeddings, ids, matrix, delta)
    if found is None:
        return
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


# -- saving ---------------------------------------------------------------------------------------
def save(built: Built, out: Path, started: float) -> None:
    from .indexes import save_index

    out.mkdir(parents=True, exist_ok=True)
    save_index(built.index, "llama-index", out / "index")
    built.questions.to_jsonl(out / "questions.jsonl")
    for name, part in zip(("train", "val", "test"), built.parts):
        part.to_jsonl(out / f"{name}.jsonl")
    built.delta.save(out / "delta", overwrite=True)  # check_demo_out allowed it
    print(f"\n[6/6] saved the index, questions and delta under {out}/ "
          f"({time.perf_counter() - started:.0f} s)")
    print("next:")
    print(f"  nudge-rag inspect {out}/delta")
    print(f"  nudge-rag eval {out}/index {out}/delta {out}/test.jsonl")
    print(f"  nudge-rag apply {out}/index {out}/delta -o {out}/index-nudged")


def run_demo(args) -> int:
    for name in ("max_chunks", "chunk_size", "per_chunk"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    show = not args.no_progress
    check_demo_out(Path(args.out), args.overwrite)  # refuse someone else's folder, before work
    started = time.perf_counter()
    nodes = load_corpus(args, show)
    index = build_index(nodes, args.model, show)
    built = make_questions(index, nodes, args, show)
    fit_and_score(built, len(nodes))
    show_example(built)
    save(built, Path(args.out), started)
    return 0
