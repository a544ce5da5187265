"""Retrieval datasets: read BEIR folders, apply the NUDGE paper's split, and fetch public
BEIR datasets into a local cache.

- :mod:`.beir`: the BEIR reader, cached embeddings, the paper's 70/10/20 split (numpy only);
- :mod:`.download`: :func:`fetch` downloads a BEIR zip once, checks its md5 and caches it;
- :mod:`.encode`: :func:`encode_cached` fills a folder's embedding cache with the local model.
"""

from .beir import (
    DATA_ENV,
    ArraySplit,
    BeirDataset,
    data_root,
    load_beir,
    load_cached_embeddings,
    load_split,
    paper_split,
    read_qrels,
)
from .download import CACHE_ENV, SOURCES, Source, cache_dir, dataset_dir, fetch
from .encode import encode_cached

__all__ = [
    "ArraySplit", "BeirDataset", "CACHE_ENV", "DATA_ENV", "SOURCES", "Source", "cache_dir",
    "data_root", "dataset_dir", "encode_cached", "fetch", "load_beir", "load_cached_embeddings",
    "load_split", "paper_split", "read_qrels",
]
