"""``nudge-rag demo``: from nothing to a visibly better retriever, offline, in one command.

It chunks a real corpus (the Python documentation topics that ship with CPython in
``pydoc_data``, or ``--docs DIR``), embeds it with the bundled offline all-MiniLM-L6-v2 into a
LlamaIndex index, makes synthetic questions with the offline generator, splits them
(group-aware), fits NUDGE-N, and prints before/after metrics on the held-out questions with
one example. Everything it made is saved under ``--out`` for the other commands.

The built-in corpus is sampled to ``PYDOC_CHUNKS`` chunks so that the demo takes a couple of
minutes; a ``--docs`` folder is indexed whole up to ``DOCS_CHUNKS`` chunks (about ten minutes
on a 2-core CPU), and a larger one is capped there unless ``--max-chunks`` says otherwise.
Any cap, and what it skips, is printed before the embedding starts.
"""

from __future__ import annotations

import argparse
import os
import sys
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
#: CPU seconds per chunk of the whole demo on one thread, its 4 questions included (0.123
#: measured, plus 11 s for loading and chunking: docs/benchmarks.md, "The demo on a large
#: folder"). Two free cores take at most this much wall time, so the estimates below are upper
#: bounds on an idle 2-core machine; a busy one takes longer.
SECONDS_PER_CHUNK = 0.125
DOCS_CHUNKS = 4800  # a --docs folder's default cap: 4,800 x 0.125 s = 10 minutes
LARGE = 1000  # chunks from which the first line also says how long the demo will take

def register(sub) -> None:
    d = sub.add_parser("demo", help="one-command demo: build, fit and compare, offline",
                       description="Build a LlamaIndex index over a real corpus with the "
                                   "offline model, generate questions, fit NUDGE-N and print "
                                   "before/after metrics on held-out questions. No network, no "
                                   "API key.")
    d.add_argument("--docs", default=None,
                   help="folder of .txt/.md/.rst files to use instead of the Python docs "
                        f"topics; indexed whole up to {DOCS_CHUNKS:,} chunks (about 10 min "
                        "on 2 cores), --max-chunks all for more")
    d.add_argument("--out", default="nudge-demo",
                   help="folder for the index, questions and delta (default ./nudge-demo)")
    d.add_argument("--overwrite", action="store_true",
                   help="replace the output of an earlier demo at --out")
    d.add_argument("--max-chunks", type=max_chunks, default=None, metavar="N|all",
                   help="use at most N chunks, spread over the corpus, or 'all' (default: "
                        f"{DOCS_CHUNKS:,} of a --docs folder, {PYDOC_CHUNKS} of the Python "
                        "docs topics)")
    d.add_argument("--chunk-size", type=int, default=256,
                   help="chunk size in the model's tokens (default 256, all-MiniLM-L6-v2's "
                        "input limit; larger sizes are cut to the model's limit)")
    d.add_argument("--per-chunk", type=int, default=PER_CHUNK,
                   help=f"synthetic questions per chunk (default {PER_CHUNK})")
    d.add_argument("--seed", type=int, default=0, help="seed of the question split (default 0)")
    d.add_argument("--model", default=None,
                   help="sentence-transformers model name or path (default: bundled offline "
                        "all-MiniLM-L6-v2)")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    d.set_defaults(run=run_demo)


def max_chunks(value: str):
    """``--max-chunks``: a positive count, or ``all``."""
    if value.strip().lower() == "all":
        return "all"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a count of at least 1 nor 'all'")
    return count


# -- corpus ---------------------------------------------------------------------------------------
def python_docs() -> list[tuple[str, str]]:
    """The documentation topics that ship with CPython (``pydoc_data.topics``)."""
    from pydoc_data.topics import topics

    return sorted((name, text) for name, text in topics.items() if text.strip())


def folder_docs(folder) -> list[tuple[str, str]]:
    """``(relative path, text)`` of every text or markdown file under ``folder``. What is
    left out is named on stderr, never dropped without a word: files that are not UTF-8, and
    linked folders (not followed: a link may lead anywhere, or back into a loop)."""
    folder = Path(folder)
    if folder.is_file():
        raise InputError(f"--docs {folder} is a file; the demo reads a folder of them: "
                         f"--docs {folder.parent}")
    if not folder.is_dir():
        gone = "" if folder.exists() else " (it does not exist)"
        raise InputError(f"--docs {folder} is not a folder{gone}")
    out, undecodable = [], []
    names, links = text_files(folder)
    for name in names:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            undecodable.append(name)
            continue
        if text.strip():
            out.append((name, text))
    skipped = "; ".join(filter(None, (
        _listed(undecodable, "file", "not UTF-8", "save as UTF-8 to include"),
        _listed(links, "linked folder", "not followed", "pass the folder it points to as "
                "--docs to use it"))))
    if not out:
        raise InputError(f"--docs {folder} holds no readable text or markdown files "
                         f"({', '.join(DOC_SUFFIXES)}){'; ' + skipped if skipped else ''}")
    if skipped:
        print(f"nudge-rag demo: {skipped}", file=sys.stderr)
    return out


def text_files(folder: Path) -> tuple[list[str], list[str]]:
    """Paths (relative to ``folder``) of its text and markdown files, in sorted order, and of
    the linked folders inside it, which are not followed. Hidden files and folders (``.venv``,
    ``.git``: tools', not the user's documents) are left out."""
    names, links = [], []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        links += [str(rel / d) for d in dirs if os.path.islink(Path(root, d))]
        names += [str(rel / f) for f in files if not f.startswith(".")
                  and Path(f).suffix.lower() in DOC_SUFFIXES and os.path.isfile(Path(root, f))]
    return sorted(names, key=lambda name: Path(name).parts), sorted(links)


def _listed(names: list[str], what: str, why: str, fix: str) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    count = f"1 {what}" if len(names) == 1 else f"{len(names)} {what}s"
    return f"skipped {count}, {why}: {shown} ({fix})"


def chunk(docs, chunk_size: int, show: bool = False, model: str | None = None):
    """Every chunk of ``docs``, with stable ids (source + position) so that questions, splits
    and results repeat exactly. Sizes count the embedding model's own tokens, its two special
    tokens included, so that the model reads every chunk whole."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    from ..local import sentence_transformer

    st = sentence_transformer(model)
    limit = st.max_seq_length
    if chunk_size > limit:
        print(f"nudge-rag demo: --chunk-size {chunk_size} is more than the model reads; "
              f"chunks of {limit} tokens instead", file=sys.stderr)
    size = min(chunk_size, limit) - 2  # [CLS] and [SEP] take two of the model's places
    documents = [Document(text=text, id_=name, metadata={"source": name})
                 for name, text in docs]
    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=min(20, size // 8),
                                tokenizer=st.tokenizer.tokenize)
    try:
        nodes = splitter.get_nodes_from_documents(documents, show_progress=show)
    except ValueError as exc:  # LlamaIndex counts each chunk's metadata (its file name) in
        if "Metadata length" not in str(exc):  # its size, and refuses when nothing is left
            raise
        names = max(len(st.tokenizer.tokenize(f"source: {name}")) for name, _ in docs)
        raise InputError(f"--chunk-size {chunk_size} is too small: the file name that LlamaIndex "
                         f"keeps with each chunk takes up to {names} tokens of it; use at least "
                         f"{names + 52}") from None
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


def chunk_cap(args) -> int | None:
    """How many chunks to index: ``--max-chunks`` (``all``: no cap), else the corpus's
    default."""
    if args.max_chunks == "all":
        return None
    if args.max_chunks is not None:
        return args.max_chunks
    return DOCS_CHUNKS if args.docs else PYDOC_CHUNKS


def load_corpus(args, show: bool):
    """Chunk the corpus, apply the cap and say what was kept, before any embedding starts."""
    corpus = folder_docs(args.docs) if args.docs else python_docs()
    where = args.docs if args.docs else "the Python documentation topics (pydoc_data)"
    everything = chunk(corpus, args.chunk_size, show, args.model)
    nodes = spread(everything, chunk_cap(args))
    head = f"[1/6] corpus: {len(corpus)} documents from {where} -> "
    kept, total = len(nodes), len(everything)
    if kept == total:
        tail = f"; {_how_long(kept)} (--max-chunks N to try part of it first)" \
            if kept >= LARGE else ""
        print(f"{head}{kept:,} chunks, all indexed{tail}")
    elif args.docs and args.max_chunks is None:  # the default cap of a large folder
        print(f"{head}indexed {kept:,} of {total:,} chunks, {_how_long(kept)}")
        print(f"      {total - kept:,} chunks skipped: a --docs folder is capped at "
              f"{DOCS_CHUNKS:,} chunks by default; --max-chunks all indexes every chunk "
              f"({_how_long(total)})")
    else:
        print(f"{head}indexed {kept:,} of {total:,} chunks (--max-chunks N for more)")
    return nodes


def _how_long(n_chunks: int) -> str:
    minutes = max(1, round(n_chunks * SECONDS_PER_CHUNK / 60))
    return f"about {minutes} min on a 2-core CPU"


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
    report = built.delta.fit_report
    how = f"validation + {report.get('folds')} folds" if report.get("estimate") == \
        "cross-validated" else "validation"
    memory = f", alpha={built.delta.alpha:.3g} with {built.delta.n_memory} remembered " \
        "questions" if built.delta.n_memory else ""
    print(f"[4/6] NUDGE-N: gamma={built.delta.gamma:.4g}{memory} chosen on {how}, "
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
    """Write everything into a temporary sibling of ``out`` and swap it in whole: a demo
    interrupted while saving leaves no half-written folder that a rerun would refuse."""
    from .._fs import staged
    from .indexes import save_index

    with staged(out) as tmp:
        tmp.mkdir()
        save_index(built.index, "llama-index", tmp / "index")
        built.questions.to_jsonl(tmp / "questions.jsonl")
        for name, part in zip(("train", "val", "test"), built.parts):
            part.to_jsonl(tmp / f"{name}.jsonl")
        built.delta.save(tmp / "delta", overwrite=True)  # check_demo_out allowed it
    print(f"\n[6/6] saved the index, questions and delta under {out}/ "
          f"({time.perf_counter() - started:.0f} s)")
    print("next:")
    print(f"  nudge-rag inspect {out}/delta")
    print(f"  nudge-rag eval {out}/index {out}/delta {out}/test.jsonl")
    print(f"  nudge-rag apply {out}/index {out}/delta -o {out}/index-nudged")


def run_demo(args) -> int:
    for name in ("max_chunks", "chunk_size", "per_chunk"):
        value = getattr(args, name)
        if isinstance(value, int) and value < 1:
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
