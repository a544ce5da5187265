"""Training questions for NUDGE: sets, readers/writers, splits, logs and synthetic questions."""

from .io import read_beir, read_jsonl, read_llama_dataset, write_jsonl, write_llama_dataset
from .normalize import duplicate_groups, normalize_text
from .question_set import Question, QuestionSet
from .split import LeakageReport, check_leakage

__all__ = [
    "LeakageReport",
    "Question",
    "QuestionSet",
    "check_leakage",
    "duplicate_groups",
    "normalize_text",
    "read_beir",
    "read_jsonl",
    "read_llama_dataset",
    "write_jsonl",
    "write_llama_dataset",
]
