"""Read BEIR-layout retrieval datasets and apply the NUDGE paper's split protocol.

A BEIR folder holds ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` and, optionally,
cached embeddings under ``embeddings/<model>/`` (``corpus.npy`` + ``corpus_ids.txt``,
``queries.npy`` + ``query_ids.txt``). Only numpy is needed.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._readers import jsonl, text_lines
from ..errors import InputError

#: Environment variable that points at a folder holding BEIR datasets (``scifact/``, ...).
DATA_ENV = "NUDGE_RAG_DATA"


def data_root() -> Path | None:
    """The folder of shared benchmark data: ``$NUDGE_RAG_DATA``, else ``../shared/data``
    next to the repository, else ``None``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve().parents[2]  # the repository (or site-packages) folder
    for candidate in (here.parent / "shared" / "data", here / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


@dataclass
class BeirDataset:
    """A BEIR folder in memory. Relevance is ``{query_id: {doc_id: grade}}``."""

    path: Path
    corpus: dict[str, dict] = field(repr=False)
    queries: dict[str, str] = field(repr=False)
    qrels: dict[str, dict[str, float]] = field(repr=False)

    def doc_text(self, doc_id: str) -> str:
        doc = self.corpus[doc_id]
        return (doc.get("title", "") + " " + doc.get("text", "")).strip()


def _read_rows(path: Path) -> dict[str, dict]:
    """``{_id: row}`` of a BEIR JSONL file: every row an object with an ``_id`` and, where
    present, a string ``title`` and ``text``."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; a BEIR folder holds corpus.jsonl and "
                         "queries.jsonl")
    rows = {}
    for _, where, row in jsonl(path):
        if not isinstance(row, dict) or "_id" not in row:
            raise InputError(f"{where}: expected a JSON object with an '_id' field")
        for key in ("title", "text"):
            if not isinstance(row.get(key, ""), str):
                raise InputError(f"{where}: field {key!r} must be a string")
        rows[str(row["_id"])] = row
    return rows


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``). Grades ≤ 0 are dropped."""
    qrels: dict[str, dict[str, float]] = {}
    with contextlib.closing(text_lines(path)) as lines:
        reader = csv.reader((line for _, line in lines), delimiter="\t")
        try:
            _qrel_rows(reader, path, qrels)
        except csv.Error as exc:  # a field past the csv module's size limit, and the like
            raise InputError(f"{path}:{reader.line_num}: not a readable TSV line ({exc}); fix "
                             "the file") from None
    return qrels


def _qrel_rows(reader, path, qrels: dict) -> None:
    if next(reader, None) is None:  # the header
        return
    for lineno, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) < 3:
            raise InputError(f"{path}:{lineno}: expected 3 tab-separated columns "
                             "(query-id, corpus-id, score)")
        try:
            grade = float(row[2])
        except ValueError:
            raise InputError(f"{path}:{lineno}: score {row[2]!r} is not a number") from None
        if not math.isfinite(grade):
            raise InputError(f"{path}:{lineno}: score {row[2]!r} is not a finite number")
        if grade > 0:
            qrels.setdefault(row[0], {})[row[1]] = grade


def load_beir(path: str | os.PathLike, splits: tuple[str, ...] | None = None) -> BeirDataset:
    """Load a BEIR folder. ``splits`` picks qrels files by name (default: every file, pooled)."""
    root = Path(path)
    if not (root / "corpus.jsonl").is_file():
        raise InputError(f"path={str(root)!r} has no corpus.jsonl; pass a BEIR-layout folder")
    corpus = _read_rows(root / "corpus.jsonl")
    queries = {qid: q.get("text", "") for qid, q in _read_rows(root / "queries.jsonl").items()}
    qrel_dir = root / "qrels"
    available = sorted(p.stem for p in qrel_dir.glob("*.tsv"))
    names = available if splits is None else list(splits)
    if splits is None and "all" in names:
        names = ["all"]  # an "all" file already pools the others
    qrels: dict[str, dict[str, float]] = {}
    for name in names:
        if not (qrel_dir / f"{name}.tsv").is_file():
            raise InputError(f"splits: {qrel_dir / f'{name}.tsv'} does not exist; available: "
                             f"{available}")
        for qid, rel in read_qrels(qrel_dir / f"{name}.tsv").items():
            qrels.setdefault(qid, {}).update(rel)
    return BeirDataset(root, corpus, queries, qrels)


def load_cached_embeddings(path: str | os.PathLike, model: str = "all-MiniLM-L6-v2"):
    """Return ``(doc_ids, doc_emb, query_ids, query_emb)`` from ``embeddings/<model>/``."""
    folder = Path(path) / "embeddings" / model
    if not folder.is_dir():
        raise InputError(f"no cached embeddings at {folder}; encode the dataset first "
                         "(nudge_rag.datasets.encode_cached, or `nudge-rag datasets get NAME` "
                         "for a BEIR dataset) or pick another model")
    doc_ids = (folder / "corpus_ids.txt").read_text(encoding="utf-8").split("\n")
    query_ids = (folder / "query_ids.txt").read_text(encoding="utf-8").split("\n")
    doc_emb = np.load(folder / "corpus.npy")
    query_emb = np.load(folder / "queries.npy")
    doc_ids = [d for d in doc_ids if d]
    query_ids = [q for q in query_ids if q]
    if len(doc_ids) != len(doc_emb) or len(query_ids) != len(query_emb):
        raise InputError(f"{folder}: id files and arrays differ in length; re-create the cache")
    return doc_ids, doc_emb, query_ids, query_emb


def paper_split(query_ids, seed: int = 0, fractions=(0.7, 0.1, 0.2), cap: int | None = 10_000):
    """The NUDGE paper's protocol: sort the labelled ids, permute with
    ``numpy.random.default_rng(seed)``, cut 70/10/20. Validation and test are capped at
    ``cap`` questions each (the paper's 10,000). Returns three lists of ids."""
    ids = sorted(query_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    ids = [ids[i] for i in order]
    n = len(ids)
    n_train = int(fractions[0] * n)
    n_val = int(fractions[1] * n)
    train = ids[:n_train]
    val = ids[n_train:n_train + n_val]
    test = ids[n_train + n_val:]
    if cap is not None:
        val, test = val[:cap], test[:cap]
    return train, val, test


@dataclass
class ArraySplit:
    """Embeddings and row-index relevance for one dataset, ready for ``NudgeN().fit``."""

    doc_ids: list[str]
    doc_emb: np.ndarray
    train_q: np.ndarray
    train_rel: list[dict[int, float]]
    val_q: np.ndarray
    val_rel: list[dict[int, float]]
    test_q: np.ndarray
    test_rel: list[dict[int, float]]
    query_ids: dict[str, list[str]] = field(default_factory=dict)


def load_split(path: str | os.PathLike, model: str = "all-MiniLM-L6-v2", seed: int = 0,
               doc_emb=None, doc_ids=None, query_emb=None, query_ids=None) -> ArraySplit:
    """Cached (or given) embeddings of a BEIR folder, split with :func:`paper_split`."""
    data = load_beir(path)
    if doc_emb is None:
        doc_ids, doc_emb, query_ids, query_emb = load_cached_embeddings(path, model)
    row_of_doc = {d: i for i, d in enumerate(doc_ids)}
    row_of_query = {q: i for i, q in enumerate(query_ids)}
    labelled = [q for q, rel in data.qrels.items()
                if q in row_of_query and any(d in row_of_doc for d in rel)]
    parts = paper_split(labelled, seed=seed)

    def take(ids):
        q = query_emb[[row_of_query[i] for i in ids]]
        rel = [{row_of_doc[d]: g for d, g in data.qrels[i].items() if d in row_of_doc}
               for i in ids]
        return q, rel

    (tq, tr), (vq, vr), (sq, sr) = (take(p) for p in parts)
    return ArraySplit(list(doc_ids), doc_emb, tq, tr, vq, vr, sq, sr,
                      {"train": parts[0], "val": parts[1], "test": parts[2]})
