"""The ``nudge-rag`` command: one entry point, one small module per command group.

``main(argv)`` returns the exit status. Expected failures (a missing folder, a delta for
another model, an unwritable output, ...) print one line on stderr and return a non-zero
status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__

EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from . import apply_cmd, datasets_cmd, demo, fit_cmd, questions_cmd

    parser = argparse.ArgumentParser(
        prog="nudge-rag",
        description="NUDGE fine-tuning of the vectors a LlamaIndex or LangChain index already "
                    "holds: generate or import questions, fit, evaluate, apply, revert.")
    parser.add_argument("--version", action="version", version=f"nudge-rag {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    demo.register(sub)
    questions_cmd.register(sub)
    fit_cmd.register(sub)
    apply_cmd.register(sub)
    datasets_cmd.register(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or "--debug" in argv
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("nudge-rag: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into one line
        if debug:
            raise
        print(f"nudge-rag {args.command}: error: {describe(exc)}", file=sys.stderr)
        return EXIT_ERROR


def describe(exc: BaseException) -> str:
    """One line that says what went wrong, for any exception."""
    from ..errors import NudgeError

    if isinstance(exc, NudgeError):
        text = str(exc)
    elif isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or str(exc)
        text = f"cannot read or write{where}: {reason}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) + ("" if isinstance(exc, NudgeError) else
                                     " (run with --debug for the traceback)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
