"""Training questions for NUDGE: sets, readers/writers, splits, logs and synthetic questions."""

from .io import write_beir, write_jsonl, write_llama_dataset
from .logs import LogReport, import_logs, node_id_map
from .normalize import duplicate_groups, normalize_text
from .offline import offline_questions
from .parsing import parse_questions
from .question import Question
from .question_set import QuestionSet, read_beir, read_jsonl, read_llama_dataset
from .split import LeakageReport, check_leakage, group_fold_labels, group_folds, group_split
from .synthetic import (
    DEFAULT_PROMPT,
    GenerationError,
    GenerationReport,
    agenerate_questions,
    generate_questions,
)

__all__ = [
    "DEFAULT_PROMPT",
    "GenerationError",
    "GenerationReport",
    "LeakageReport",
    "LogReport",
    "Question",
    "QuestionSet",
    "agenerate_questions",
    "check_leakage",
    "duplicate_groups",
    "generate_questions",
    "group_fold_labels",
    "group_folds",
    "group_split",
    "import_logs",
    "node_id_map",
    "offline_questions",
    "parse_questions",
    "normalize_text",
    "read_beir",
    "read_jsonl",
    "read_llama_dataset",
    "write_beir",
    "write_jsonl",
    "write_llama_dataset",
]
