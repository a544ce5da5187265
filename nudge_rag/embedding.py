"""Embedding questions with the index's own model, on its query path, and fingerprinting it.

LlamaIndex models embed queries with ``get_query_embedding``, LangChain ones with
``embed_query``; models that can embed many queries at once (``embed_queries``, as the local
model of :mod:`nudge_rag.local` does) are called in batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref

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


#: embedded with the index's model at fit time and again when a delta meets an index: two
#: models compute the same thing when they embed it alike, whatever their wrapper classes
PROBE_TEXT = "nudge-rag model probe: which planet is closest to the sun?"
_PROBE_DIMS = 16  # the first components of the unit probe vector are enough to tell models apart
_PROBE_TOLERANCE = 1e-3  # float32 noise and batching differences stay far below this
#: id(model) -> (weak reference to the model, probe summary); by id because many embedding
#: classes (pydantic models) are not hashable
_probes: dict[int, tuple] = {}


#: what wrappers report when they know no name (LlamaIndex's BaseEmbedding default)
_NO_NAME = {"unknown", ""}


def model_name(model) -> str | None:
    if model is None:
        return None
    for attr in ("model_name", "model", "model_id", "model_path"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value not in _NO_NAME:
            return value
    return None


def probe_summary(vector) -> list[float]:
    v = np.asarray(vector, dtype=np.float64).ravel()
    norm = np.linalg.norm(v)
    v = v / norm if norm > 0 else v
    return [round(float(x), 6) for x in v[:_PROBE_DIMS]]


def model_probe(model) -> list[float] | None:
    """The model's (unit) query embedding of :data:`PROBE_TEXT`, first components; ``None``
    when the model cannot embed it. Computed once per model object."""
    return _probe_or_reason(model)[0]


def _probe_or_reason(model) -> tuple[list[float] | None, str | None]:
    cached = _probes.get(id(model))
    if cached is not None and cached[0]() is model:
        return cached[1], None
    try:
        vector = embed_queries(model, [PROBE_TEXT])[0]
    except Exception as exc:  # noqa: BLE001 - any failure only means: no probe to compare
        return None, str(exc).split(";")[0].split(". ")[0]
    return remember_probe(model, vector), None


def remember_probe(model, vector) -> list[float]:
    """Keep a probe embedding computed alongside other texts (the finetuner embeds it with
    the training questions)."""
    summary = probe_summary(vector)
    key = id(model)
    with contextlib.suppress(TypeError):  # objects without weak references are not cached
        _probes[key] = (weakref.ref(model, lambda _: _probes.pop(key, None)), summary)
    return summary


def model_fingerprint(model, dim: int | None) -> dict:
    """The model's name and dimension and, when this process has embedded the probe text
    with it (the finetuner does so alongside the training questions), what it computes. The
    wrapper class is left out: the same model through LangChain and through LlamaIndex is the
    same model."""
    fp = {"name": model_name(model), "dim": dim}
    cached = _probes.get(id(model))
    if model is not None and cached is not None and cached[0]() is model:
        fp["probe"] = cached[1]
    return fp


def model_mismatch(fitted: dict, model, dim: int | None) -> str | None:
    """Why ``model`` (embedding ``dim``-d vectors) is not the model of the fingerprint
    ``fitted``, or ``None`` when it is or nothing tells. With a probe in ``fitted`` the
    model must embed the probe text alike (a model that cannot embed it is refused);
    without one (questions given as embeddings, or a delta of nudge-rag 0.1, whose
    ``class`` is ignored) the names must agree where both are known."""
    fitted = fitted or {}
    name = fitted.get("name") if fitted.get("name") not in _NO_NAME else None
    theirs = model_name(model)
    if fitted.get("dim") and dim and fitted["dim"] != dim:
        return f"model {name!r} makes {fitted['dim']}-d vectors, the index's {dim}-d ones"
    if fitted.get("probe") and model is not None:
        probe, reason = _probe_or_reason(model)
        if probe is None:
            return (f"the index's model {theirs!r} cannot embed the probe text that tells "
                    f"whether it is the delta's model {name!r} ({reason})")
        if len(probe) == len(fitted["probe"]):
            gap = float(np.max(np.abs(np.subtract(probe, fitted["probe"]))))
            if gap <= _PROBE_TOLERANCE:
                return None
            return (f"model {name!r} and the index's model {theirs!r} embed the probe text "
                    f"differently (components differ by up to {gap:.3g}): they compute "
                    "different vectors")
    if name and theirs and name != theirs:
        return f"model {name!r} is not the index's model {theirs!r}"
    return None


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
