"""``NudgeDelta``: the result of a fit, and everything that consumes it.

A delta is a small table (the moved records' ids, new vectors and original vectors) plus the
facts of the fit. It can be written into a store (a new one by default, or in place and then
reverted), overlaid on a retriever without writing anything, and saved as JSON + ``.npz``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._version import __version__
from .core.method import Method
from .errors import InputError, MismatchError
from .stores import adapt
from .stores.base import check_target, held_states

FORMAT = "nudge-rag-delta"
FORMAT_VERSION = 1
_ARRAYS = "arrays.npz"
_META = "delta.json"


@dataclass
class NudgeDelta:
    """Moved records and the facts of their fit. ``vectors`` are what NUDGE computed,
    ``original`` what the store held, ``sums``/``counts`` the per-record question sums that
    later updates add to."""

    ids: list[str]
    vectors: np.ndarray
    original: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    method: Method
    gamma: float
    metric: str
    similarity: str
    dim: int
    model: dict = field(default_factory=dict)
    questions: str = ""
    fit_report: dict = field(default_factory=dict)

    def __post_init__(self):
        self.method = Method.parse(self.method, "method")  # saved deltas hold its name
        n = len(self.ids)
        for name in ("vectors", "original", "sums"):
            arr = getattr(self, name)
            if arr.shape != (n, self.dim):
                raise InputError(f"delta {name} has shape {arr.shape}, expected ({n}, "
                                 f"{self.dim}); the delta is corrupt")
        if len(set(self.ids)) != n:
            raise InputError("delta ids are not unique; the delta is corrupt")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"NudgeDelta(method={self.method!r}, gamma={self.gamma:.4g}, "
                f"moved={len(self.ids)}, dim={self.dim}, similarity={self.similarity!r})")

    # -- reading it ------------------------------------------------------------------------------
    def report(self) -> str:
        """The fit at a glance: γ, records moved, validation metrics before and after."""
        r = self.fit_report
        lines = [f"NUDGE fit: {self.method}, gamma={self.gamma:.4g} (chosen by {self.metric}), "
                 f"{len(self.ids)} records moved, store scores by {self.similarity}",
                 f"questions: {r.get('n_train_questions', '?')} train, "
                 f"{r.get('n_val_questions', 0)} validation"]
        before, after = r.get("before"), r.get("after")
        if before and after:
            lines.append(f"{'validation metric':<18} {'before':>8} {'after':>8} {'change':>8}")
            for name in before:
                b, a = before[name], after[name]
                lines.append(f"{name:<18} {b:>8.4f} {a:>8.4f} {a - b:>+8.4f}")
        else:
            lines.append("gamma was fixed: no validation report")
        return "\n".join(lines)

    # -- stores ------------------------------------------------------------------------------------
    def _check_target(self, adapter, allow_model_mismatch: bool) -> None:
        check_target(adapter, self, allow_model_mismatch)

    def live(self, adapter, purpose: str = "apply"):
        """Which moved records can be used on this store now: ``(positions into ids, their
        state)`` where state is ``"original"`` or ``"nudged"``. Records deleted from the store
        or re-embedded since the fit are skipped with a warning."""
        found, stored = adapter.fetch(self.ids)
        if not found:
            raise MismatchError(f"none of this delta's {len(self.ids)} records are in the "
                                f"{adapter.kind}; it was fitted on another index")
        pos_of = {i: p for p, i in enumerate(self.ids)}
        pos = np.array([pos_of[i] for i in found], dtype=np.int64)
        is_orig, is_new = held_states(stored, self.original[pos], self.vectors[pos])
        changed = ~is_orig & ~is_new
        gone = len(self.ids) - len(found)
        if gone:
            warnings.warn(f"{gone} moved record(s) are no longer in the store and were skipped",
                          stacklevel=3)
        if changed.any():
            bad = [found[i] for i in np.flatnonzero(changed)[:3]]
            warnings.warn(f"{int(changed.sum())} moved record(s) were re-embedded after the fit "
                          f"(e.g. {bad}); they were skipped rather than overwritten "
                          f"({purpose})", stacklevel=3)
        keep = ~changed
        state = np.where(is_orig, "original", "nudged")[keep]
        return pos[keep], state

    def apply(self, index_or_store, inplace: bool = False, allow_model_mismatch: bool = False,
              copy_name: str | None = None):
        """Write the nudged vectors. By default returns a new index/store that shares the
        nodes/documents and holds the nudged vectors; the original is untouched. With
        ``inplace=True`` writes into the given store (undo with :meth:`revert`).

        On a vector database the new store is a copy of the whole collection, named
        ``copy_name``: a Chroma or Qdrant collection, a pgvector table (LlamaIndex), or a
        PostgreSQL schema holding LangChain's tables (langchain-postgres keys every collection's
        rows by id alone, so a copy cannot share their table). The default is the source's
        name plus ``_nudged``. A name that is already taken raises :class:`InputError`; nothing
        is ever overwritten. In-memory stores copy in memory and ignore ``copy_name``."""
        if copy_name is not None:
            if inplace:
                raise InputError("copy_name names the copy that inplace=False makes; drop it, or "
                                 "drop inplace=True to get a copy")
            if not isinstance(copy_name, str) or not copy_name:
                raise InputError(f"copy_name must be a non-empty string, got {copy_name!r}")
        adapter = adapt(index_or_store)
        self._check_target(adapter, allow_model_mismatch)
        pos, state = self.live(adapter, "apply")
        todo = pos[state == "original"] if inplace else pos
        ids = [self.ids[p] for p in todo]
        if inplace:
            if ids:
                adapter.write(ids, self.vectors[todo])
            return index_or_store
        return adapter.clone_with(ids, self.vectors[todo], name=copy_name)

    def revert(self, index_or_store) -> None:
        """Undo an in-place :meth:`apply`: restore the original vectors of records that still
        hold the nudged ones."""
        adapter = adapt(index_or_store)
        self._check_target(adapter, allow_model_mismatch=True)
        pos, state = self.live(adapter, "revert")
        todo = pos[state == "nudged"]
        if len(todo):
            adapter.write([self.ids[p] for p in todo], self.original[todo])

    def as_retriever(self, index_or_store, **kwargs):
        """A retriever of the store's own framework that overlays this delta on the stored
        vectors at query time, writing nothing. Keyword arguments go to the retriever: those
        of LlamaIndex's ``VectorIndexRetriever`` (``similarity_top_k``, ``filters``,
        ``callback_manager``, ...) or of LangChain's ``VectorStoreRetriever`` (``k``,
        ``filter``, ``search_kwargs``, ...)."""
        adapter = adapt(index_or_store)
        if adapter.framework == "llama-index":
            from .integrations.llama_index import NudgedRetriever

            return NudgedRetriever(index_or_store, self, **kwargs)
        from .integrations.langchain import NudgedRetriever as LcRetriever

        return LcRetriever.from_store(index_or_store, self, **kwargs)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``path/`` (``delta.json`` + ``arrays.npz``) atomically: into a temporary
        folder beside it, then renamed over it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with open(tmp / _ARRAYS, "wb") as fh:
                np.savez(fh, vectors=self.vectors.astype(np.float32),
                         original=self.original.astype(np.float64),
                         sums=self.sums.astype(np.float64), counts=self.counts.astype(np.int64))
                fh.flush()
                os.fsync(fh.fileno())
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "nudge_rag": __version__,
                    "ids": self.ids, "method": self.method, "gamma": self.gamma,
                    "metric": self.metric, "similarity": self.similarity, "dim": self.dim,
                    "model": self.model, "questions": self.questions,
                    "report": self.fit_report, "arrays_sha256": _sha256(tmp / _ARRAYS)}
            with open(tmp / _META, "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=1, default=_json_default)
                fh.flush()
                os.fsync(fh.fileno())
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> NudgeDelta:
        """Read a delta written by :meth:`save`, verifying it is whole and untouched."""
        path = Path(path)
        if not (path / _META).is_file():
            raise InputError(f"{path} holds no {_META}; pass the folder that delta.save() wrote")
        try:
            meta = json.loads((path / _META).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path / _META} is truncated or corrupt ({exc}); save the delta "
                             "again") from None
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise InputError(f"{path} is not a nudge-rag delta of format version "
                             f"{FORMAT_VERSION}")
        arrays = path / _ARRAYS
        if not arrays.is_file() or _sha256(arrays) != meta.get("arrays_sha256"):
            raise InputError(f"{arrays} is missing, truncated or was modified after saving "
                             "(checksum mismatch); save the delta again")
        with np.load(arrays, allow_pickle=False) as npz:
            data = {k: npz[k] for k in ("vectors", "original", "sums", "counts")}
        return cls(ids=[str(i) for i in meta["ids"]], method=meta["method"],
                   gamma=float(meta["gamma"]), metric=meta["metric"],
                   similarity=meta["similarity"], dim=int(meta["dim"]), model=meta["model"],
                   questions=meta["questions"], fit_report=meta["report"], **data)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in delta.json")
