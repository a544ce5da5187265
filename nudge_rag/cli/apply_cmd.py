"""``nudge-rag apply`` and ``nudge-rag revert``."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from ..errors import InputError
from .fit_cmd import check_model, load_delta
from .indexes import add_index_options, load_index, save_index
from .outputs import check_index_out


def register(sub) -> None:
    a = sub.add_parser("apply", help="write the nudged vectors into an index",
                       description="Write a delta's nudged vectors: into a new index with "
                                   "-o OUT (the input is untouched), or in place with --inplace "
                                   "(the old index is kept as a backup; 'revert' undoes it). "
                                   "The new index is written beside the target and renamed into "
                                   "place, so a failure leaves the input as it was.")
    a.add_argument("index", help="persisted index")
    a.add_argument("delta", help="delta directory written by 'fit'")
    where = a.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output",
                       help="write the nudged index here (new, or an index of the same kind "
                            "with --overwrite)")
    where.add_argument("--inplace", action="store_true", help="rewrite the index itself")
    a.add_argument("--backup", default=None,
                   help="with --inplace: where to keep the original (default INDEX.bak)")
    a.add_argument("--no-backup", action="store_true",
                   help="with --inplace: keep no backup (revert still works from the delta)")
    a.add_argument("--overwrite", action="store_true",
                   help="with -o: replace the index already there")
    a.add_argument("--allow-model-mismatch", action="store_true",
                   help="apply even though the delta names another embedding model")
    add_index_options(a)
    a.set_defaults(run=run_apply)

    r = sub.add_parser("revert", help="undo an in-place apply",
                       description="Restore the original vectors of the delta's records in an "
                                   "index that 'apply --inplace' changed. Records changed since "
                                   "then are left alone.")
    r.add_argument("index", help="persisted index changed by 'apply --inplace'")
    r.add_argument("delta", help="the delta that was applied")
    add_index_options(r)
    r.set_defaults(run=run_revert)


def _quiet(fn, *args, **kwargs):
    """Call ``fn``, printing its warnings as ``warning:`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return out


def _silent(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _within(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (links resolved)."""
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == root or root in real.parents


def _check_not_link(index) -> None:
    """An in-place write replaces the index folder or file whole; over a symbolic link it
    would replace the link, not the index."""
    if os.path.islink(index):
        raise InputError(f"{index} is a symbolic link to {os.path.realpath(index)}; pass the "
                         "index itself, so that the change lands there")


def _check_apart(args) -> None:
    """``-o`` writes a new index and leaves the input untouched, so it may not name the
    input or a path inside it."""
    if args.output is not None and _within(args.output, args.index):
        where = "is the input index" if _within(args.index, args.output) else \
            "lies inside the input index"
        raise InputError(f"-o {args.output} {where} {args.index}; -o writes a new index and "
                         "leaves the input untouched: choose a path outside it, or use "
                         "--inplace to change the index itself (with a backup)")


def _backup_path(args, loaded) -> Path | None:
    """Where ``apply --inplace`` keeps the original index, checked before anything is
    written."""
    if args.no_backup:
        return None
    backup = Path(args.backup) if args.backup else \
        loaded.path.with_name(loaded.path.name + ".bak")
    if os.path.lexists(backup):
        raise InputError(f"backup {backup} already exists; move it away, pass --backup PATH "
                         "or --no-backup")
    if _within(backup, loaded.path):
        raise InputError(f"--backup {backup} lies inside the index {loaded.path}, which apply "
                         "replaces as a whole: the backup would go with it; pass a --backup "
                         "path outside it")
    if not backup.parent.is_dir():
        raise InputError(f"--backup {backup}: the folder {backup.parent} does not exist; "
                         "create it or pass another --backup path")
    return backup


def _nothing_to_do(delta, loaded, action: str) -> str:
    """Why ``action`` changes no record, as what is true of the index: records that hold
    neither of the delta's vectors were left alone, and are not said to hold them."""
    if action == "apply" and not delta.moved.any():
        return "the delta moves no record"
    from ..stores import adapt

    pos, _ = _silent(delta.live, adapt(loaded.obj), action)
    held = f"{loaded.path} already holds the {'nudged' if action == 'apply' else 'original'} " \
        "vectors"
    skipped = len(delta) - len(pos)
    if not skipped:
        return held
    why = (f"{skipped} of the delta's {len(delta)} records hold neither their original nor "
           "their nudged vector (re-embedded, deleted, or changed by another delta) and were "
           "left alone")
    return f"{why}; {held} of the other {len(pos)}" if len(pos) else why


def run_apply(args) -> int:
    _check_apart(args)
    if args.inplace:
        _check_not_link(args.index)
    delta = load_delta(args.delta)
    loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
    if not args.allow_model_mismatch:
        check_model(delta, loaded)
    if args.output is not None:
        out = Path(args.output)
        check_index_out(out, loaded.kind, args.overwrite)
        new = _quiet(delta.apply, loaded.obj, inplace=False,
                     allow_model_mismatch=args.allow_model_mismatch)
        save_index(new, loaded.kind, out)
        print(f"wrote the nudged index ({int(delta.moved.sum())} records moved) to {out}")
        _memory_note(delta)
        return 0
    if args.overwrite:
        raise InputError("--overwrite goes with -o; --inplace always rewrites the index")
    backup = _backup_path(args, loaded)
    todo = _quiet(delta.pending, loaded.obj, "apply")
    if not todo:
        print(f"0 records changed: {_nothing_to_do(delta, loaded, 'apply')}")
        return 0
    _silent(delta.apply, loaded.obj, inplace=True,
            allow_model_mismatch=args.allow_model_mismatch)
    save_index(loaded.obj, loaded.kind, loaded.path, backup=backup)
    kept = f"; original kept at {backup}" if backup else ""
    print(f"applied {len(todo)} moved records to {loaded.path} in place{kept}")
    _memory_note(delta)
    return 0


def _memory_note(delta) -> None:
    """Say that what was written lacks the delta's query memory."""
    if delta.n_memory:
        print(f"note: the delta's query memory ({delta.n_memory} question vectors) is not "
              "written: the index serves the nudged records only, without the memory's "
              "share of the gain; serve it through delta.as_retriever(...) to keep it")


def run_revert(args) -> int:
    _check_not_link(args.index)
    delta = load_delta(args.delta)
    loaded = load_index(args.index, args.kind, args.model, args.allow_pickle)
    todo = _quiet(delta.pending, loaded.obj, "revert")
    if not todo:
        print(f"0 records changed: {_nothing_to_do(delta, loaded, 'revert')}")
        return 0
    _silent(delta.revert, loaded.obj)
    save_index(loaded.obj, loaded.kind, loaded.path)
    print(f"restored the original vectors of {len(todo)} records in {loaded.path}")
    return 0
