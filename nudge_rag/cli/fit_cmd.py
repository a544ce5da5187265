"""``nudge-rag fit``, ``nudge-rag eval`` and ``nudge-rag inspect``."""

from __future__ import annotations

import json
import sys
import warnings

from ..core.method import Method
from ..errors import InputError, MismatchError
from .indexes import add_index_options, load_index
from .outputs import check_delta_out

METRICS_HELP = "ndcg@10 (default), recall@k, mrr@k or hit@k"


def register(sub) -> None:
    _register_fit(sub)
    _register_eval_and_inspect(sub)


def _register_fit(sub) -> None:
    f = sub.add_parser("fit", help="fit NUDGE: index + questions -> delta directory",
                       description="Fit NUDGE on a persisted index and a questions file. By "
                                   "default the step size γ and the memory weight α are chosen "
                                   "on 5 folds of the questions (duplicates kept in one fold) "
                                   "plus any --val questions, the final fit uses every "
                                   "question, and the delta keeps the questions' vectors as "
                                   "query memory. The result is a delta directory that "
                                   "eval/apply/inspect read. The index is not changed.")
    f.add_argument("index", help="persisted index")
    f.add_argument("questions", help="questions file (JSONL, as 'questions generate' writes)")
    f.add_argument("-o", "--output", required=True,
                   help="delta directory to write (new, empty, or an earlier delta with "
                        "--overwrite)")
    f.add_argument("--overwrite", action="store_true",
                   help="replace the delta already at --output")
    f.add_argument("--method", type=Method.parse, choices=list(Method), default=Method.N,
                   help="nudge-n (default; unit-norm, safe for cosine stores) or nudge-m "
                        "(inner-product stores only)")
    f.add_argument("--metric", default="ndcg@10", help=f"validation metric for γ: {METRICS_HELP}")
    f.add_argument("--selection", choices=("cv", "validation"), default="cv",
                   help="cv (default): validation questions plus --folds folds of the "
                        "training questions choose γ and α; validation: validation questions "
                        "alone (the paper's protocol; without --val, --val-fraction of the "
                        "questions is held out)")
    f.add_argument("--folds", type=int, default=5,
                   help="folds of the training questions with --selection cv (default 5)")
    f.add_argument("--no-refit", action="store_true",
                   help="fit the final delta on the training questions alone (the paper's "
                        "protocol) instead of training + validation")
    f.add_argument("--no-memory", action="store_true",
                   help="keep no query memory: the delta then holds no question vectors "
                        "(they can reveal what users asked), and apply writes all it does")
    f.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the questions held out to choose γ with --selection "
                        "validation and no --val (default 0.1)")
    f.add_argument("--val", default=None,
                   help="validation questions file (with --selection validation: instead of "
                        "holding out --val-fraction)")
    f.add_argument("--gamma", type=float, default=None, help="fix γ instead of choosing it")
    f.add_argument("--alpha", type=float, default=None,
                   help="fix the memory weight α instead of choosing it")
    f.add_argument("--seed", type=int, default=0,
                   help="seed of the folds and the validation split (default 0)")
    f.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_index_options(f)
    f.set_defaults(run=run_fit)


def _register_eval_and_inspect(sub) -> None:
    e = sub.add_parser("eval", help="metrics of a delta on test questions, without and with it",
                       description="Score test questions on the index with the delta's records "
                                   "at their original vectors (original) and at their nudged "
                                   "vectors (nudged); every other record is scored as the index "
                                   "holds it. The result is the same whether or not the delta "
                                   "was applied in place. Nothing is written.")
    e.add_argument("index", help="persisted index (as it was when the delta was fitted)")
    e.add_argument("delta", help="delta directory written by 'fit'")
    e.add_argument("questions", help="test questions file (JSONL), not used in the fit")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--metrics", default=None,
                   help="comma-separated metrics (default ndcg@10,recall@1,recall@10,mrr@10)")
    e.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_index_options(e)
    e.set_defaults(run=run_eval)

    i = sub.add_parser("inspect", help="show a delta's report",
                       description="Show what a delta holds: method, γ, records moved, the "
                                   "model it was fitted with, validation metrics.")
    i.add_argument("delta", help="delta directory")
    i.add_argument("--json", action="store_true", help="print the facts as JSON")
    i.set_defaults(run=run_inspect)


def read_questions(path, loaded=None):
    """A questions file; with ``loaded`` (an index), refuse ids the index does not hold."""
    from ..questions import QuestionSet

    qs = QuestionSet.from_jsonl(path)
    if loaded is not None:
        qs.validate({i for i, _ in loaded.chunks()}, str(path), str(loaded.path))
    return qs


def load_delta(path):
    from ..delta import NudgeDelta

    return NudgeDelta.load(path)


def check_model(delta, loaded) -> None:
    """Refuse a delta fitted with another embedding model than the index's."""
    from ..embedding import model_mismatch
    from ..stores import adapt

    adapter = adapt(loaded.obj)
    dim = adapter.dimension()
    if dim is not None and dim != delta.dim:
        raise MismatchError(f"the delta holds {delta.dim}-d vectors but {loaded.path} holds "
                            f"{dim}-d vectors; it was fitted on another index or model")
    why = model_mismatch(delta.model, adapter.embed_model(), dim)
    if why is not None:
        raise MismatchError(f"the delta was fitted with another embedding model than "
                            f"{loaded.path} uses: {why}; pass --model with the model that "
                            "built the index")


def run_fit(args) -> int:
    from ..finetuner import EmbeddingFinetuner

    if args.val is None and args.selection == "validation" and args.gamma is None \
            and not 0 < args.val_fraction < 1:
        raise InputError(f"--val-fraction {args.val_fraction} must be between 0 and 1")
    check_delta_out(args.output, args.overwrite)  # before the fit, not after it
    loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
    qs = read_questions(args.questions, loaded)
    # without --val, the finetuner holds out --val-fraction (with --selection validation) with
    # its own group-aware split, so the command and the API choose on the same questions
    val = None if args.val is None else read_questions(args.val, loaded)
    ft = EmbeddingFinetuner(loaded.obj, method=args.method, metric=args.metric,
                            gamma=args.gamma, seed=args.seed, show_progress=not args.no_progress,
                            val_fraction=args.val_fraction, selection=args.selection,
                            folds=args.folds, refit=not args.no_refit,
                            memory=not args.no_memory, alpha=args.alpha)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        delta = ft.fit(qs, val)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    delta.save(args.output, overwrite=args.overwrite)
    print(delta.report())
    print(f"delta written to {args.output}")
    return 0


def metrics_table(result: dict, labels=("before", "after")) -> str:
    before, after = result["before"], result["after"]
    alpha = f", alpha={result['alpha']:.4g} (query memory)" if result.get("alpha") else ""
    lines = [f"{result['n_questions']} test questions, gamma={result['gamma']:.4g}{alpha}",
             f"{'metric':<12} {labels[0]:>8} {labels[1]:>8} {'change':>8}"]
    for name in before:
        b, a = before[name], after[name]
        lines.append(f"{name:<12} {b:>8.4f} {a:>8.4f} {a - b:>+8.4f}")
    for part, why in (("warm", "some relevant record named by a fit question"),
                      ("cold", "none named: NUDGE cannot help them")):
        got = result.get(part)
        if got and got["n_questions"] and "ndcg@10" in got["after"]:
            b, a = got["before"]["ndcg@10"], got["after"]["ndcg@10"]
            lines.append(f"{part}: {got['n_questions']} questions ({why}), ndcg@10 "
                         f"{b:.4f} -> {a:.4f} ({a - b:+.4f})")
    return "\n".join(lines)


def run_eval(args) -> int:
    from ..core.metrics import REPORT_METRICS
    from ..finetuner import EmbeddingFinetuner

    delta = load_delta(args.delta)
    loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
    check_model(delta, loaded)
    qs = read_questions(args.questions, loaded)
    metrics = REPORT_METRICS if args.metrics is None else \
        tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if not metrics:
        raise InputError(f"--metrics {args.metrics!r} names no metric; give e.g. "
                         "ndcg@10,recall@10")
    ft = EmbeddingFinetuner(loaded.obj, show_progress=not args.no_progress and not args.json)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ft.evaluate(qs, delta, metrics=metrics)
        applied = len(delta.pending(loaded.obj, "revert"))
    if args.json:
        print(json.dumps(result, indent=1, default=float))
        return 0
    if applied:
        print(f"note: {loaded.path} already holds the nudged vectors of {applied} records "
              "(applied in place); 'original' scores them at the delta's original vectors")
    print(metrics_table(result, labels=("original", "nudged")))
    return 0


def run_inspect(args) -> int:
    delta = load_delta(args.delta)
    if args.json:
        facts = {"method": delta.method, "gamma": delta.gamma, "alpha": delta.alpha,
                 "memory_questions": delta.n_memory, "metric": delta.metric,
                 "moved": int(delta.moved.sum()), "records": len(delta), "dim": delta.dim,
                 "similarity": delta.similarity, "model": delta.model,
                 "questions": delta.questions, "report": delta.fit_report}
        print(json.dumps(facts, indent=1, default=float))
        return 0
    print(delta.report())
    model = delta.model or {}
    probe = ", with its probe embedding" if model.get("probe") else ""
    print(f"model: {model.get('name')} ({delta.dim}-d{probe}); "
          f"questions fingerprint {delta.questions}")
    return 0
