"""Encode a BEIR folder's corpus and queries with the local model into its embedding cache.

The cache is ``<folder>/embeddings/<model>/`` (``corpus.npy`` + ``corpus_ids.txt``,
``queries.npy`` + ``query_ids.txt``), the layout :func:`load_cached_embeddings` reads.
Documents are encoded as ``(title + " " + text).strip()`` in batches of 32 and queries as
their text in batches of 64, unit-norm float32: the recipe of the caches the benchmarks use.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .beir import load_beir

CACHE_FILES = ("corpus.npy", "corpus_ids.txt", "queries.npy", "query_ids.txt")


def model_key(model: str | None) -> str:
    """The cache folder name of a model: its name, or a model folder's last part."""
    from ..local import DEFAULT_MODEL

    return Path(model).name if model else DEFAULT_MODEL


def encode_cached(folder, model: str | None = None, progress: bool = True) -> Path:
    """Encode ``folder`` with ``model`` (default: the bundled all-MiniLM-L6-v2) unless its
    cache is already there; returns the cache folder. Needs the ``local`` extra."""
    folder = Path(folder)
    target = folder / "embeddings" / model_key(model)
    if all((target / name).is_file() for name in CACHE_FILES):
        return target
    from ..local import encode_many

    data = load_beir(folder)
    doc_ids = list(data.corpus)
    query_ids = list(data.queries)
    docs = encode_many([data.doc_text(d) for d in doc_ids], model, batch_size=32,
                       desc=f"encoding {folder.name} corpus", show=progress)
    queries = encode_many([data.queries[q] for q in query_ids], model, batch_size=64,
                          desc=f"encoding {folder.name} queries", show=progress)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "corpus.npy", docs)
        np.save(tmp / "queries.npy", queries)
        (tmp / "corpus_ids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")
        (tmp / "query_ids.txt").write_text("\n".join(query_ids) + "\n", encoding="utf-8")
        if target.exists():  # a half-written cache from an older run
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
