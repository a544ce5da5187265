"""``nudge-rag datasets get NAME`` and ``nudge-rag datasets list``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("datasets", help="download public BEIR datasets into the local cache",
                       description="Download a public BEIR dataset once (md5-checked), cache "
                                   "it and encode it with the local model, ready for "
                                   "nudge_rag.datasets.load_split.")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    dsub.required = True
    g = dsub.add_parser("get", help="download, check, cache and encode a dataset",
                        description="Download a BEIR dataset (needs the network once), check "
                                    "its md5, unpack it into the cache and encode its corpus "
                                    "and queries with the local model. A dataset already in "
                                    "the cache is not downloaded again.")
    g.add_argument("name", help="dataset name (see `nudge-rag datasets list`)")
    g.add_argument("--cache", default=None,
                   help="cache folder (default $NUDGE_RAG_CACHE, else $XDG_CACHE_HOME/nudge-rag "
                        "or ~/.cache/nudge-rag)")
    g.add_argument("--no-encode", action="store_true",
                   help="only download and unpack; do not encode with the local model")
    g.add_argument("--model", default=None,
                   help="sentence-transformers model name or path to encode with (default: "
                        "the bundled offline all-MiniLM-L6-v2)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g.set_defaults(run=run_get)
    ls = dsub.add_parser("list", help="the datasets `get` knows, and which are cached")
    ls.add_argument("--cache", default=None, help="cache folder (as for `get`)")
    ls.set_defaults(run=run_list)


def run_get(args) -> int:
    from ..datasets import fetch

    folder = fetch(args.name, cache=args.cache, encode=not args.no_encode, model=args.model,
                   progress=not args.no_progress)
    print(f"{args.name}: {folder}")
    print(f'next: python -c "from nudge_rag.datasets import fetch, load_split; '
          f"s = load_split(fetch('{args.name}')); print(len(s.doc_ids), 'documents')\"")
    return 0


def run_list(args) -> int:
    from ..datasets import SOURCES, dataset_dir
    from ..datasets.download import is_complete

    for name, source in sorted(SOURCES.items()):
        where = dataset_dir(name, args.cache)
        state = f"cached at {where}" if is_complete(where) else "not cached"
        print(f"{name:<18} {source.corpus:>6} documents  {state}")
    return 0
