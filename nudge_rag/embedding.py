"""Embedding questions with the index's own model, on its query path, and fingerprinting it.

LlamaIndex models embed queries with ``get_query_embedding``, LangChain ones with
``embed_query``; models that can embed many queries at once (``embed_queries``, as the local
model of :mod:`nudge_rag.local` does) are called in batches.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .errors import InputError

#: LlamaIndex falls back to OpenAI when an index is loaded without embed_model= (an ImportError
#: without llama-index-embeddings-openai), and to a 1-d MockEmbedding when Settings.embed_model
#: is None; either way the questions need the model that built the index.
LLAMA_MOCK_HINT = (
    "the index's embedding model is LlamaIndex's MockEmbedding (what it uses when "
    "Settings.embed_model is None, e.g. to avoid its OpenAI default), which cannot embed "
    "questions like the stored vectors. Load the index with the model that built it: "
    "load_index_from_storage(StorageContext.from_defaults(persist_dir=...), "
    "embed_model=nudge_rag.local.llama_index_embedding()) for an index made by nudge-rag "
    "(all-MiniLM-L6-v2), or your own model; or pass EmbeddingFinetuner(index, embed_model=...)")


def embed_queries(model, texts: list[str], batch_size: int = 64,
                  show_progress: bool = False) -> np.ndarray:
    """Query embeddings of ``texts`` as a float64 matrix."""
    if model is None:
        raise InputError("no embedding model is known for this index; pass embed_model=... or "
                         "give question embeddings")
    if type(model).__name__ == "MockEmbedding":
        raise InputError(LLAMA_MOCK_HINT)
    from ._progress import progress_bar

    rows = []
    # the bar counts texts, like every other bar of nudge-rag (not batches)
    with progress_bar(len(texts), "embedding questions", show_progress) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            if hasattr(model, "embed_queries"):
                rows.extend(model.embed_queries(batch))
            elif hasattr(model, "get_query_embedding"):
                rows.extend(model.get_query_embedding(t) for t in batch)
            elif hasattr(model, "embed_query"):
                rows.extend(model.embed_query(t) for t in batch)
            else:
                raise InputError(f"embed_model {type(model).__name__} has no query-embedding "
                                 "method (get_query_embedding or embed_query)")
            bar.update(len(batch))
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), -1)


def model_fingerprint(model, dim: int | None) -> dict:
    """Class, name and dimension: enough to notice a delta used with another model."""
    if model is None:
        return {"class": None, "name": None, "dim": dim}
    name = None
    for attr in ("model_name", "model", "model_id", "model_path"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            name = value
            break
    return {"class": type(model).__name__, "name": name, "dim": dim}


def fingerprints_differ(a: dict, b: dict) -> bool:
    """True when both name a model and they differ (a missing side is not a conflict)."""
    if not a.get("class") or not b.get("class"):
        return False
    return (a["class"], a.get("name")) != (b["class"], b.get("name"))


def questions_fingerprint(ids, texts, record_ids, pairs) -> str:
    """A short hash of a question set: question ids and texts, and its relevance as flat
    (question, record, grade) arrays over ``record_ids`` (hashing arrays, not dicts, keeps it
    cheap beside the fit)."""
    h = hashlib.sha256()
    for part in (map(str, ids), ("" if t is None else str(t) for t in texts), record_ids):
        h.update("\x1f".join(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    for arr in (pairs.query, pairs.row, pairs.grade):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]
