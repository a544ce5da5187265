"""``nudge-rag questions generate`` and ``nudge-rag questions import-logs``."""

from __future__ import annotations

import importlib
import sys

from ..errors import InputError
from .indexes import add_index_options, load_index

#: questions per chunk, for this command and the demo: four offline questions per chunk teach
#: NUDGE more than two (docs/benchmarks.md, "Synthetic questions": +0.017 NDCG@10 on SciFact,
#: +0.014 on Cranfield); with an LLM it is still one call per chunk.
PER_CHUNK = 4


def register(sub) -> None:
    p = sub.add_parser("questions", help="make a questions file (JSONL) for fitting",
                       description="Make a questions file: synthetic questions from an index, "
                                   "or questions imported from query logs.")
    qsub = p.add_subparsers(dest="questions_command", metavar="ACTION")
    qsub.required = True
    _register_generate(qsub)
    _register_import_logs(qsub)


def _register_generate(qsub) -> None:
    g = qsub.add_parser("generate", help="synthetic questions from the chunks of an index",
                        description="Write synthetic questions, each pointing at the chunk it "
                                    "was made from. The offline generator needs no LLM and no "
                                    "network; --llm MODULE:NAME uses an LLM instead.")
    g.add_argument("index", help="persisted index (LlamaIndex dir, InMemoryVectorStore dump "
                                 "or FAISS folder)")
    g.add_argument("-o", "--output", required=True, help="questions file to write (JSONL)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the questions file already at --output")
    g.add_argument("--per-chunk", type=int, default=PER_CHUNK,
                   help=f"questions per chunk (default {PER_CHUNK}, as the demo)")
    g.add_argument("--llm", default="offline",
                   help="'offline' (default) or MODULE:NAME naming a LlamaIndex LLM, a "
                        "LangChain chat model, a callable prompt->str, or a class to "
                        "instantiate")
    g.add_argument("--cache", default=None, help="JSONL cache of LLM answers (LLM only)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_index_options(g)
    g.set_defaults(run=run_generate)


def _register_import_logs(qsub) -> None:
    lg = qsub.add_parser("import-logs", help="questions from a query log (JSONL/CSV/TSV)",
                         description="Turn a query log into graded questions: clicked records "
                                     "are relevant, thumbs-up raises the grade, thumbs-down "
                                     "removes a record.")
    lg.add_argument("log", help="log file: .jsonl, .csv or .tsv")
    lg.add_argument("-o", "--output", required=True, help="questions file to write (JSONL)")
    lg.add_argument("--overwrite", action="store_true",
                    help="replace the questions file already at --output")
    for role, default in (("query", "query"), ("shown", "shown_ids"),
                          ("clicked", "clicked_ids"), ("feedback", "feedback"),
                          ("timestamp", "timestamp")):
        lg.add_argument(f"--{role}-field", default=default,
                        help=f"field holding the {role} (default {default!r}; dotted paths "
                             "reach into nested JSON)")
    lg.add_argument("--format", choices=("jsonl", "csv", "tsv"), default=None,
                    help="log format (default: from the file extension)")
    lg.add_argument("--list-sep", default=None,
                    help="separator of id lists in text fields (default: any of | ; ,)")
    lg.add_argument("--index", default=None,
                    help="persisted index: drop ids it does not hold and map document ids to "
                         "its records")
    add_index_options(lg)
    lg.set_defaults(run=run_import_logs)


def _load_llm(spec: str):
    if ":" not in spec:
        raise InputError(f"--llm {spec!r}: use 'offline' or MODULE:NAME (e.g. mymodels:llm)")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--llm {spec!r}: cannot import {module_name!r} ({exc})") from None
    try:
        llm = getattr(module, attr)
    except AttributeError:
        raise InputError(f"--llm {spec!r}: {module_name} has no {attr!r}") from None
    if isinstance(llm, type):  # a class: build it with no arguments
        llm = llm()
    return llm


def run_generate(args) -> int:
    from ..questions import generate_questions
    from ..questions.io import check_questions_output

    if args.per_chunk < 1:
        raise InputError(f"--per-chunk {args.per_chunk} must be at least 1")
    check_questions_output(args.output, args.overwrite, "--overwrite")  # before any work
    loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
    chunks = loaded.chunks()
    if not chunks:
        raise InputError(f"{args.index} holds no chunks with text")
    if args.llm == "offline":
        qs = generate_questions(chunks, None, args.per_chunk)
    else:
        qs = generate_questions(chunks, _load_llm(args.llm), args.per_chunk, cache=args.cache,
                                progress=not args.no_progress)
    qs.to_jsonl(args.output, overwrite=args.overwrite)
    print(f"wrote {len(qs)} questions about {len(chunks)} chunks to {args.output}")
    return 0


def run_import_logs(args) -> int:
    from ..questions import import_logs
    from ..questions.io import check_questions_output

    fields = {"query": args.query_field, "shown": args.shown_field,
              "clicked": args.clicked_field, "feedback": args.feedback_field,
              "timestamp": args.timestamp_field}
    check_questions_output(args.output, args.overwrite, "--overwrite")  # before any work
    known, id_map = None, None
    if args.index is not None:
        loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
        known = [i for i, _ in loaded.chunks()]
        id_map = loaded.ref_docs() or None
    qs, report = import_logs(args.log, fields=fields, format=args.format, known_ids=known,
                             id_map=id_map, list_sep=args.list_sep)
    if len(qs) == 0:
        raise InputError(f"{args.log}: no question with a clicked or liked record "
                         f"({report.summary()})")
    qs.to_jsonl(args.output, overwrite=args.overwrite)
    print(report.summary(), file=sys.stderr)
    print(f"wrote {len(qs)} questions to {args.output}")
    return 0
