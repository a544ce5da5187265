"""nudge-rag: NUDGE fine-tuning of the vectors a RAG index already holds.

``import nudge_rag`` loads numpy only; everything else is imported on first use.
"""

from __future__ import annotations

import importlib

from ._version import __version__ as __version__  # re-exported

# public name -> module that defines it; loaded on first attribute access
_LAZY = {
    "NudgeN": "nudge_rag.core.estimators",
    "NudgeM": "nudge_rag.core.estimators",
    "EmbeddingFinetuner": "nudge_rag.finetuner",
    "NudgeDelta": "nudge_rag.delta",
    "NudgeError": "nudge_rag.errors",
    "InputError": "nudge_rag.errors",
    "NotFittedError": "nudge_rag.errors",
    "StoreError": "nudge_rag.errors",
    "MismatchError": "nudge_rag.errors",
    "WriteError": "nudge_rag.errors",
    "Question": "nudge_rag.questions",
    "QuestionSet": "nudge_rag.questions",
    "generate_questions": "nudge_rag.questions",
    "offline_questions": "nudge_rag.questions",
    "import_logs": "nudge_rag.questions",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nudge_rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
