"""Up-front validation of arrays and relevance lists.

Every failure raises :class:`~nudge_rag.errors.InputError` naming the argument and the fix.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def as_matrix(x, name: str, allow_empty: bool = False) -> np.ndarray:
    """A 2-D array of real numbers, finite, with no all-zero row. No copy when possible."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} must be a 2-D array of floats; got {type(x).__name__} "
                         f"({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"{name} must hold real numbers; got dtype {arr.dtype}. Convert it "
                         "with np.asarray(..., dtype=np.float32)")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows × dimension); got shape {arr.shape}. "
                         "Stack the vectors into one array, one row per vector")
    if arr.shape[0] == 0 and not allow_empty:
        raise InputError(f"{name} is empty; pass at least one row")
    if arr.shape[1] == 0:
        raise InputError(f"{name} has dimension 0; pass real embedding vectors")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_finite_nonzero(arr: np.ndarray, name: str, block_rows: int = 65_536) -> np.ndarray:
    """Row norms of ``arr`` (float64), after checking for NaN/inf and zero rows, block by
    block so that a large corpus is never copied whole."""
    norms = np.empty(arr.shape[0], dtype=np.float64)
    for start in range(0, arr.shape[0], block_rows):
        block = arr[start:start + block_rows]
        sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        if not np.all(np.isfinite(sq)):
            first = int(np.flatnonzero(~np.isfinite(sq))[0])
            _raise_not_finite(block[first], name, start + first)
        norms[start:start + block.shape[0]] = np.sqrt(sq)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise InputError(f"{name} row {int(zero[0])} has zero norm ({zero.size} such rows); "
                         "a zero vector has no direction: drop those rows or re-embed them")
    return norms


def _raise_not_finite(row: np.ndarray, name: str, index: int) -> None:
    """Say what is wrong with a row whose squared norm is not finite: NaN or inf values, or
    finite values too large to square in float64."""
    if np.all(np.isfinite(row)):
        big = float(np.max(np.abs(row)))
        raise InputError(f"{name} row {index} has values too large (up to {big:.3g}): its "
                         "squared norm overflows float64. Rescale the vectors (embedding "
                         "values are usually within ±10)")
    raise InputError(f"{name} row {index} contains NaN or inf; remove or re-embed it")


def check_same_dim(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{b_name} has dimension {b.shape[1]} but {a_name} has "
                         f"{a.shape[1]}; embed both with the same model")
