"""Question files: JSONL, BEIR folders and LlamaIndex's ``EmbeddingQAFinetuneDataset`` JSON
(without importing llama-index-finetuning).

Readers return lists of :class:`Question` (``QuestionSet.from_jsonl`` and friends wrap
them in a set); writers take any iterable of questions. This module sits below
``question_set``, so it never imports it.

JSONL holds one question per line::

    {"id": "q1", "question": "...", "relevant": {"doc-3": 2, "doc-9": 1}, "metadata": {...}}

``relevant`` may also be a list of ids (each grade 1). ``text`` or ``query`` are read in place
of ``question``; ``embedding`` (a list of numbers) is optional; other top-level keys are kept in
the metadata. Lines without an id get ``line<N>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path

import numpy as np

from .._fs import check_output, staged
from .._readers import jsonl, read_json
from ..datasets import read_qrels
from ..errors import InputError
from .chunks import as_chunks
from .question import Question, check_known_ids, coerce_relevance

_TEXT_KEYS = ("question", "text", "query")
_RESERVED = {"id", "_id", "relevant", "embedding", "metadata", *_TEXT_KEYS}


def _check_known(relevant: dict, known: set | None, where: str) -> None:
    if known is not None:
        check_known_ids([relevant], known, where)


def _known(known_ids) -> set[str] | None:
    return None if known_ids is None else set(map(str, known_ids))


def question_from_row(row, where: str, known: set | None = None,
                      source: str = "human") -> Question:
    """A Question from one JSONL-style row (id may be missing: the caller numbers it)."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "relevant" not in row:
        raise InputError(f"{where}: field 'relevant' is missing; give {{id: grade}} or a list "
                         "of ids")
    relevant = coerce_relevance(row["relevant"], where)
    _check_known(relevant, known, where)
    text = next((row[k] for k in _TEXT_KEYS if k in row), None)
    if text is not None and not isinstance(text, str):
        raise InputError(f"{where}: field 'question' must be a string, got "
                         f"{type(text).__name__}")
    embedding = row.get("embedding")
    if embedding is not None:
        try:
            embedding = np.asarray(embedding, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(f"{where}: field 'embedding' must be a list of numbers") from None
        if embedding.ndim != 1:
            raise InputError(f"{where}: field 'embedding' must be a flat list of numbers")
    if (text is None or not text.strip()) and embedding is None:
        raise InputError(f"{where}: field 'question' is missing or empty and there is no "
                         "'embedding'; give at least one")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"{where}: field 'metadata' must be an object")
    metadata = {**{k: v for k, v in row.items() if k not in _RESERVED}, **metadata}
    metadata.setdefault("source", source)
    qid = row.get("id", row.get("_id"))
    return Question(str(qid) if qid is not None else "", text, relevant, embedding, metadata)


def jsonl_rows(path):
    """``(line number, "path:line", parsed JSON)`` for every non-blank line of a JSONL file;
    a line that is not UTF-8 or not JSON is an :class:`InputError` naming it."""
    yield from jsonl(path)


def jsonl_questions(path, known_ids=None, source: str = "human") -> list[Question]:
    """The questions of a JSONL file. Errors name ``path:line`` and the field at fault."""
    known = _known(known_ids)
    questions = []
    seen: dict[str, int] = {}
    for lineno, where, row in jsonl_rows(path):
        q = question_from_row(row, where, known, source)
        if not q.id:
            q = Question(f"line{lineno}", q.text, q.relevant, q.embedding, q.metadata)
        if q.id in seen:
            raise InputError(f"{where}: id {q.id!r} was already used on line {seen[q.id]}; "
                             "ids must be unique")
        seen[q.id] = lineno
        questions.append(q)
    if not questions:
        raise InputError(f"{path} holds no questions; an empty question set cannot train")
    return questions


def _jsonable(value, where: str):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v, where) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise InputError(f"{where}: metadata value of type {type(value).__name__} cannot be "
                     "written as JSON; convert it to a string, number, list or dict")


def _atomic_write(path, write, read=None, overwrite: bool = False) -> None:
    """Write through a flushed temporary file swapped in at once, so a crash never leaves half
    a file, and a full disk is an error naming ``path``. The file is made by ``open``, so its
    permissions follow the umask. With ``read`` (a reader of the format being written), what
    is at ``path`` follows :func:`check_questions_output`; without, the caller checked."""
    if read is not None:
        check_questions_output(path, overwrite, read=read)
    with staged(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        write(fh)


def check_questions_output(path, overwrite: bool, flag: str = "overwrite=True",
                           read=None) -> None:
    """The output rule of ``_fs.check_output`` for question files: a file that cannot be read
    as questions (by ``read``, JSONL by default) is refused, a questions file is replaced
    only with ``overwrite``."""
    read = read or jsonl_questions
    check_output(path, "a questions file", lambda p: _not_questions(p, read), overwrite, flag)


def _not_questions(path: Path, read) -> str | None:
    if path.is_dir():
        return "is a folder, not a questions file"
    try:
        read(path)
    except (InputError, OSError):
        return "is not a questions file"
    return None


def write_jsonl(qs: Iterable[Question], path, overwrite: bool = False) -> None:
    rows = []
    for q in qs:
        row = {"id": q.id, "question": q.text, "relevant": q.relevant}
        if q.embedding is not None:
            row["embedding"] = q.embedding.tolist()
        row["metadata"] = _jsonable(q.metadata, f"question {q.id!r}")
        rows.append(json.dumps(row, ensure_ascii=False))
    _atomic_write(path, lambda fh: fh.write("\n".join(rows) + "\n"), jsonl_questions,
                  overwrite)


# -- BEIR ------------------------------------------------------------------------------------------
def _qrels_files(qrel_dir: Path, splits) -> list[Path]:
    """The qrels files to read: ``splits`` by name, or every file (only ``all.tsv`` when the
    folder has one)."""
    available = sorted(p.stem for p in qrel_dir.glob("*.tsv"))
    if splits is None:
        names = ["all"] if "all" in available else available
    else:
        names = [splits] if isinstance(splits, str) else list(splits)
    if not names:
        raise InputError(f"{qrel_dir} has no .tsv files; BEIR relevance lives in qrels/*.tsv")
    for name in names:
        if not (qrel_dir / f"{name}.tsv").is_file():
            raise InputError(f"splits: {qrel_dir / f'{name}.tsv'} does not exist; available: "
                             f"{available}")
    return [qrel_dir / f"{name}.tsv" for name in names]


def _pooled_qrels(files: list[Path]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """``({query id: {doc id: grade}}, {query id: the split it came from})`` over ``files``."""
    relevance: dict[str, dict[str, float]] = {}
    split_of: dict[str, str] = {}
    for path in files:
        for qid, rel in read_qrels(path).items():
            relevance.setdefault(qid, {}).update(rel)
            split_of[qid] = path.stem
    return relevance, split_of


def beir_questions(folder, splits=None, known_ids=None) -> list[Question]:
    """Questions of a BEIR folder: ``queries.jsonl`` joined with ``qrels/<split>.tsv``.

    ``splits`` names qrels files (``["train"]``); by default all are pooled (only ``all.tsv``
    when there is one). Queries without a positive judgement are left out, because NUDGE cannot
    learn from them. ``metadata["split"]`` records the qrels file each question came from.
    """
    root = Path(folder)
    queries_path = root / "queries.jsonl"
    if not queries_path.is_file():
        raise InputError(f"folder={str(root)!r} has no queries.jsonl; pass a BEIR-layout folder")
    files = _qrels_files(root / "qrels", splits)
    relevance, split_of = _pooled_qrels(files)
    known = _known(known_ids)
    questions = []
    for _, where, row in jsonl_rows(queries_path):
        if not isinstance(row, dict) or "_id" not in row:
            raise InputError(f"{where}: field '_id' is missing")
        qid = str(row["_id"])
        if qid not in relevance:
            continue
        _check_known(relevance[qid], known, f"{where} (query {qid!r})")
        metadata = {"source": "human", "split": split_of[qid]}
        if isinstance(row.get("metadata"), dict):
            metadata.update(row["metadata"])
        questions.append(Question(qid, row.get("text"), relevance[qid], None, metadata))
    missing = sorted(set(relevance) - {q.id for q in questions})
    if missing:
        raise InputError(f"qrels name query ids {missing[:5]} that {queries_path} does not "
                         "hold; fix the qrels or the queries file")
    if not questions:
        raise InputError(f"{root}: no query has a positive judgement in "
                         f"{[p.stem for p in files]}")
    return questions


def write_beir(qs: Iterable[Question], folder, split: str = "train",
               overwrite: bool = False) -> None:
    """Write ``queries.jsonl`` and ``qrels/<split>.tsv`` into ``folder`` (BEIR layout; the
    corpus is not written). Refuses to replace existing files unless ``overwrite=True``."""
    root = Path(folder)
    queries_path, qrels_path = root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    for path in (queries_path, qrels_path):
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists; pass overwrite=True to replace it")
    lines, qrels = [], ["query-id\tcorpus-id\tscore"]
    for q in qs:
        if q.text is None:
            raise InputError(f"question {q.id!r} has no text; BEIR queries.jsonl needs one")
        for field_value in (q.id, *q.relevant):
            if "\t" in field_value or "\n" in field_value:
                raise InputError(f"question {q.id!r}: id {field_value!r} holds a tab or "
                                 "newline, which qrels TSV cannot store")
        row = {"_id": q.id, "text": q.text,
               "metadata": _jsonable(q.metadata, f"question {q.id!r}")}
        lines.append(json.dumps(row, ensure_ascii=False))
        # BEIR scores are integers; keep fractional grades exact rather than rounding them
        qrels.extend(f"{q.id}\t{rid}\t{int(g) if float(g).is_integer() else g}"
                     for rid, g in q.relevant.items())
    qrels_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(queries_path, lambda fh: fh.write("\n".join(lines) + "\n"))
    _atomic_write(qrels_path, lambda fh: fh.write("\n".join(qrels) + "\n"))


# -- LlamaIndex EmbeddingQAFinetuneDataset -------------------------------------------------------
def _llama_dataset_json(path_or_dict) -> tuple[Mapping, str]:
    """The dataset's JSON object and a name for it in errors, its shape checked."""
    if isinstance(path_or_dict, Mapping):
        data, where = path_or_dict, "dataset"
    else:
        where = str(path_or_dict)
        data = read_json(path_or_dict, "is it an EmbeddingQAFinetuneDataset file?")
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a JSON object with queries, corpus, relevant_docs")
    for key in ("queries", "relevant_docs"):
        if not isinstance(data.get(key), Mapping):
            raise InputError(f"{where}: field {key!r} is missing or not an object; an "
                             "EmbeddingQAFinetuneDataset has queries, corpus and relevant_docs")
    if not isinstance(data.get("corpus") or {}, Mapping):
        raise InputError(f"{where}: field 'corpus' must be an object {{node id: text}}")
    return data, where


def llama_dataset_questions(path_or_dict, known_ids=None, source: str = "synthetic"):
    """Read the JSON that ``EmbeddingQAFinetuneDataset.save_json`` writes (``queries``,
    ``corpus``, ``relevant_docs``). Returns ``(questions, corpus)``; every grade is 1."""
    data, where = _llama_dataset_json(path_or_dict)
    corpus = data.get("corpus") or {}
    known = _known(known_ids)
    if known is None and corpus:
        known = set(map(str, corpus))
    questions = []
    for qid, text in data["queries"].items():
        field_where = f"{where}: relevant_docs[{qid!r}]"
        if qid not in data["relevant_docs"]:
            raise InputError(f"{field_where} is missing; every query needs relevant docs")
        docs = data["relevant_docs"][qid]
        relevant = coerce_relevance([docs] if isinstance(docs, str) else docs, field_where)
        _check_known(relevant, known, field_where)
        if not isinstance(text, str):
            raise InputError(f"{where}: queries[{qid!r}] must be a string")
        questions.append(Question(str(qid), text, relevant, None, {"source": source}))
    if not questions:
        raise InputError(f"{where}: field 'queries' is empty")
    return questions, {str(k): v for k, v in corpus.items()}


def write_llama_dataset(qs: Iterable[Question], path=None, corpus=None,
                        overwrite: bool = False) -> dict:
    """The ``EmbeddingQAFinetuneDataset`` dict (written to ``path`` when given). ``corpus`` is
    ``{id: text}``, nodes or documents; the format has no grades, so ids are listed best first.
    """
    queries, relevant_docs = {}, {}
    for q in qs:
        if q.text is None:
            raise InputError(f"question {q.id!r} has no text; EmbeddingQAFinetuneDataset stores "
                             "texts only")
        queries[q.id] = q.text
        relevant_docs[q.id] = sorted(q.relevant, key=lambda rid: -q.relevant[rid])
    data = {"queries": queries, "corpus": dict(as_chunks(corpus)) if corpus else {},
            "relevant_docs": relevant_docs, "mode": "text"}
    if path is not None:
        _atomic_write(path, lambda fh: json.dump(data, fh, ensure_ascii=False, indent=2),
                      llama_dataset_questions, overwrite)
    return data
