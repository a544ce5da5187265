"""A corpus kept as shard files, one matrix of record vectors per file, read a shard at a time.

``.npy`` shards are memory-mapped, so a scan touches the file's pages without copying them;
Parquet shards hold one vector column (a list or fixed-size list of floats) and are decoded a
shard at a time. Rows are numbered globally: shard by shard, in the order given. What each
shard contributes to a fit (its rows that questions name, and each validation question's best
records among its unmoved rows) is computed here, in plain numpy, wherever the shard is read:
in this process or in a Ray task (:mod:`nudge_rag.ray_fit`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .core.checks import check_finite_nonzero
from .core.topk import topk_scan
from .errors import InputError


@dataclass(frozen=True)
class ShardFile:
    """One shard: ``path`` of a ``.npy`` or ``.parquet`` file (``column``: the Parquet vector
    column), its number of ``rows`` and its first global row, ``offset``."""

    path: str
    rows: int
    offset: int
    column: str | None = None


def _parquet_column(path: str, column: str | None) -> str:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if column is not None:
        if column not in schema.names:
            raise InputError(f"column={column!r} is not in {path} (it has {schema.names}); "
                             "name the column that holds the record vectors")
        return column
    lists = [f.name for f in schema if str(f.type).startswith(("list", "fixed_size_list",
                                                                "large_list"))]
    if len(lists) != 1:
        raise InputError(f"{path} has {len(lists)} list columns ({lists}); pass column=... to "
                         "say which holds the record vectors")
    return lists[0]


def shard_files(paths, column: str | None = None) -> list[ShardFile]:
    """The shards at ``paths`` (``.npy`` or ``.parquet``), with their global row offsets; only
    each file's header or footer is read."""
    if isinstance(paths, (str, os.PathLike)):
        raise InputError("shards must be a list of shard files, not one path; pass "
                         "sorted(glob('dir/*.npy')) or similar")
    out, offset = [], 0
    for path in map(str, paths):
        if not os.path.isfile(path):
            raise InputError(f"shard {path!r} does not exist; pass existing .npy or .parquet "
                             "files")
        if path.endswith(".npy"):
            shape = np.load(path, mmap_mode="r").shape
            if len(shape) != 2:
                raise InputError(f"shard {path} holds an array of shape {shape}; each shard "
                                 "must be 2-D (rows × dimension)")
            out.append(ShardFile(path, int(shape[0]), offset))
        elif path.endswith(".parquet"):
            import pyarrow.parquet as pq

            name = _parquet_column(path, column)
            out.append(ShardFile(path, int(pq.ParquetFile(path).metadata.num_rows), offset,
                                 name))
        else:
            raise InputError(f"shard {path!r} is neither .npy nor .parquet")
        offset += out[-1].rows
    if not out:
        raise InputError("shards is empty; pass at least one shard file")
    return out


def read_shard(shard) -> np.ndarray:
    """The vectors of one shard: a memory map for ``.npy``, a decoded array for Parquet, or
    the array itself (a Ray Dataset block handed over as an array)."""
    if isinstance(shard, np.ndarray):
        return shard
    if shard.column is None:
        return np.load(shard.path, mmap_mode="r")
    import pyarrow.parquet as pq

    col = pq.read_table(shard.path, columns=[shard.column], memory_map=True)[0]
    col = col.combine_chunks()
    values = col.values if hasattr(col, "values") else col.flatten()
    mat = values.to_numpy(zero_copy_only=False)
    return mat.reshape(len(col), -1) if len(col) else mat.reshape(0, 0)


def take_rows(shard, local_rows) -> np.ndarray:
    """Rows ``local_rows`` (sorted) of one shard, in its own dtype."""
    mat = read_shard(shard)
    return np.asarray(mat[np.asarray(local_rows, dtype=np.int64)])


def scan_shard(shard, queries: np.ndarray, k: int, moved_local, offset: int,
               force_scale: bool = False):
    """One shard's part of the validation competition: each query's top-``k`` rows of this
    shard that do not move (``moved_local``: their rows within the shard), scored as the
    array engine scores them. Returns ``(scores, global rows, unit)``; ``unit`` says every
    row of the shard is unit-norm, in which case it was scanned without rescaling unless
    ``force_scale`` (another shard was not unit-norm, and the whole corpus is then scored
    with inverse norms)."""
    mat = read_shard(shard)
    norms = _checked_norms(mat, offset)
    unit = bool(np.all(np.abs(norms - 1.0) < 1e-6))
    scale = None if unit and not force_scale else 1.0 / norms
    exclude = np.zeros(len(mat), dtype=bool)
    exclude[np.asarray(moved_local, dtype=np.int64)] = True
    scores, rows = topk_scan(mat, queries, k, row_scale=scale, exclude=exclude)
    return scores, np.where(rows >= 0, rows + offset, -1), unit


def _checked_norms(mat: np.ndarray, offset: int) -> np.ndarray:
    """Row norms, with NaN/inf and zero rows reported by their global row."""
    try:
        return check_finite_nonzero(mat, "doc_emb")
    except InputError as exc:
        raise InputError(f"{exc} (rows counted from shard row 0 = global row {offset})") \
            from None


def merge_competition(parts, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best ``k`` over the shards' own top-``k`` lists ``(scores, rows)``."""
    scores = np.concatenate([p[0] for p in parts], axis=1)
    rows = np.concatenate([p[1] for p in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)
    rows = np.take_along_axis(rows, order, axis=1)
    return scores, np.where(np.isfinite(scores), rows, -1)
