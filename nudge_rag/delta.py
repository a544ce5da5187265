"""``NudgeDelta``: the result of a fit, and everything that consumes it.

A delta is a small table (the moved records' ids, new vectors and original vectors) plus the
facts of the fit. It can be written into a store (a new one by default, or in place and then
reverted), overlaid on a retriever without writing anything, and saved as JSON + ``.npz``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.memory import QueryMemory
from .core.method import Method
from .delta_format import FORMAT, FORMAT_VERSION, check_finite, read_delta, write_delta
from .errors import InputError, MismatchError
from .stores import adapt
from .stores.base import check_target, held_states

__all__ = ["FORMAT", "FORMAT_VERSION", "NudgeDelta"]


def _metric_table(before: dict, after: dict, title: str) -> list[str]:
    lines = [f"{title:<18} {'before':>8} {'after':>8} {'change':>8}"]
    for name in before:
        b, a = before[name], after[name]
        lines.append(f"{name:<18} {b:>8.4f} {a:>8.4f} {a - b:>+8.4f}")
    return lines


def _warm_cold_lines(r: dict) -> list[str]:
    """NDCG@10 (or the first metric) of warm and cold held-out questions apart."""
    parts = [(p, r.get(p)) for p in ("warm", "cold")]
    if not all(isinstance(v, dict) and "after" in v for _, v in parts):
        return []
    name = "ndcg@10" if "ndcg@10" in r["after"] else next(iter(r["after"]))
    lines = []
    for part, v in parts:
        if v["n_questions"] == 0:
            lines.append(f"  {part}: no questions")
            continue
        b, a = v["before"][name], v["after"][name]
        lines.append(f"  {part} ({v['n_questions']} questions{_WHY[part]}): {name} "
                     f"{b:.4f} -> {a:.4f} ({a - b:+.4f})")
    return lines


_WHY = {"warm": ", some relevant record named by a fit question",
        "cold": ", no relevant record named: NUDGE cannot help them"}


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
    #: query memory: the weight α of its scores (0: none), its unit question vectors
    #: (float32, one row per key) and its links ``(key, position in ids)``, one row each
    alpha: float = 0.0
    memory_keys: np.ndarray | None = None
    memory_links: np.ndarray | None = None

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
        if np.shape(self.counts) != (n,):
            raise InputError(f"delta counts has shape {np.shape(self.counts)}, expected ({n},); "
                             "the delta is corrupt")
        self._check_memory()
        check_finite(self.__dict__, self.ids, "this delta")

    def _check_memory(self) -> None:
        """The memory's arrays as the format keeps them: keys float32 of the delta's
        dimension, links naming a key and a record of this delta each."""
        keys = np.zeros((0, self.dim), np.float32) if self.memory_keys is None \
            else np.asarray(self.memory_keys, dtype=np.float32)
        links = np.zeros((0, 2), np.int64) if self.memory_links is None \
            else np.asarray(self.memory_links)
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise InputError(f"delta memory_keys has shape {keys.shape}, expected (n, "
                             f"{self.dim}); the delta is corrupt")
        if links.ndim != 2 or links.shape[1] != 2 or links.dtype.kind not in "iu":
            raise InputError(f"delta memory_links has shape {links.shape} and dtype "
                             f"{links.dtype}, expected integer (n, 2); the delta is corrupt")
        # keys are unit question vectors (float32): a scaled key would outscore every record
        sq = np.einsum("ij,ij->i", keys, keys, dtype=np.float64)
        if np.any(np.abs(sq - 1.0) > 1e-3):
            raise InputError(f"delta memory_keys row {int(np.argmax(np.abs(sq - 1.0) > 1e-3))} "
                             "is not a unit vector; the delta is corrupt")
        if len(links) and (links.min() < 0 or links[:, 0].max() >= len(keys)
                           or links[:, 1].max() >= len(self.ids)):
            raise InputError("delta memory_links name a key or record the delta does not "
                             "hold; the delta is corrupt")
        alpha = self.alpha
        if isinstance(alpha, bool) or not np.isfinite(alpha) or alpha < 0:
            raise InputError(f"delta alpha={alpha!r} must be a finite number ≥ 0; the delta "
                             "is corrupt")
        self.memory_keys, self.memory_links = keys, links.astype(np.int64)
        self.alpha = float(alpha)

    @property
    def n_memory(self) -> int:
        """How many question vectors the delta keeps as memory (0 when it keeps none)."""
        return len(self.memory_keys) if self.alpha > 0 else 0

    def query_memory(self):
        """The memory as :class:`~nudge_rag.core.memory.QueryMemory` over the delta's records
        (columns are positions in ``ids``), or ``None`` when the delta keeps none."""
        if self.n_memory == 0:
            return None
        order = np.lexsort((self.memory_links[:, 0], self.memory_links[:, 1]))
        keys = np.asarray(self.memory_keys, dtype=np.float64)
        return QueryMemory(keys, self.memory_links[order, 0], self.memory_links[order, 1],
                           len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def moved(self) -> np.ndarray:
        """Which records the delta changes: their nudged vector differs from the stored one
        (as stores keep them, in float32). Records whose questions give no direction, and
        every record of a γ = 0 fit, keep their vector."""
        return np.any(self.vectors.astype(np.float32) != self.original.astype(np.float32),
                      axis=1)

    def __repr__(self) -> str:
        memory = f", alpha={self.alpha:.4g}, memory={self.n_memory}" if self.n_memory else ""
        return (f"NudgeDelta(method={self.method!r}, gamma={self.gamma:.4g}{memory}, "
                f"moved={int(self.moved.sum())}, dim={self.dim}, "
                f"similarity={self.similarity!r})")

    # -- reading it ------------------------------------------------------------------------------
    def report(self) -> str:
        """The fit at a glance: γ and α, records moved, held-out metrics before and after
        (cross-validated where folds chose, and then the validation questions' own figures at
        the chosen γ and α), warm and cold questions apart, and what the query memory
        holds and needs."""
        r = self.fit_report
        alpha = f", alpha={self.alpha:.4g}" if self.alpha > 0 else ""
        # a fit that chose nothing (γ and α given) has no held-out figures
        how = f"chosen by {self.metric}" if r.get("before") or not r else "fixed"
        if r.get("before") and r.get("gamma_fixed"):  # α alone was searched
            how = f"gamma fixed, alpha chosen by {self.metric}"
        lines = [f"NUDGE fit: {self.method}, gamma={self.gamma:.4g}{alpha} ({how}), "
                 f"{int(self.moved.sum())} records moved, store scores by "
                 f"{self.similarity}",
                 f"questions: {r.get('n_train_questions', '?')} train, "
                 f"{r.get('n_val_questions', 0)} validation"
                 + ("; the final fit used both (refit)" if r.get("refit") else "")]
        if r.get("before") and r.get("after"):
            cv = r.get("estimate") == "cross-validated"
            lines.append(f"{'cross-validated' if cv else 'validation'} estimate: each "
                         "held-out question scored against a fit that did not see it"
                         + (f" ({r.get('folds')} folds of the training questions"
                            + (" plus the validation questions)" if r.get("n_val_questions")
                               else ")") if cv else ""))
            lines += _metric_table(r["before"], r["after"], "held-out metric")
            lines += _warm_cold_lines(r)
            if r.get("validation"):
                # the same γ and α on the validation questions only: not the paper's
                # protocol, which would also have chosen them there
                lines.append("validation questions alone, at the chosen gamma and alpha:")
                lines += _metric_table(r["validation"]["before"], r["validation"]["after"],
                                       "validation metric")
        else:
            lines.append("gamma was fixed: no held-out report")
        return "\n".join(lines + self._memory_lines())

    def _memory_lines(self) -> list[str]:
        if self.n_memory == 0:
            return ["query memory: none kept; apply() writes everything this delta does"]
        return [f"query memory: {self.n_memory} question vectors kept, linked to the records "
                "they name; they can reveal what users asked (memory=False keeps no memory; "
                "the per-record question sums that update() needs stay in any delta)",
                "apply() writes only the nudged records: an applied store does not have the "
                "memory, nor its share of the gain; use delta.as_retriever(...) to keep it"]

    # -- stores ------------------------------------------------------------------------------------
    def _check_target(self, adapter, allow_model_mismatch: bool) -> None:
        check_target(adapter, self, allow_model_mismatch)

    def _states(self, adapter, purpose: str):
        """``(positions into ids, stored is exactly the original, stored is near the nudged
        vector)`` for the records still in the store and not re-embedded since the fit;
        deleted and re-embedded ones are skipped with a warning."""
        found, stored = adapter.fetch(self.ids)
        if not found:
            raise MismatchError(f"none of this delta's {len(self.ids)} records are in the "
                                f"{adapter.kind}; it was fitted on another index")
        pos_of = {i: p for p, i in enumerate(self.ids)}
        pos = np.array([pos_of[i] for i in found], dtype=np.int64)
        stored = np.asarray(stored, dtype=np.float64)
        exact = np.all(stored == self.original[pos], axis=1)
        near_orig, near_new = held_states(stored, self.original[pos], self.vectors[pos])
        # NaN or inf in the store (left by an older version's apply) is no re-embedding:
        # revert must be able to write the original back
        broken = ~np.isfinite(stored).all(axis=1)
        changed = ~near_orig & ~near_new & ~broken
        gone = len(self.ids) - len(found)
        if gone:
            warnings.warn(f"{gone} moved record(s) are no longer in the store and were skipped",
                          stacklevel=4)
        if changed.any():
            bad = [found[i] for i in np.flatnonzero(changed)[:3]]
            warnings.warn(f"{int(changed.sum())} moved record(s) were re-embedded after the fit "
                          f"(e.g. {bad}); they were skipped rather than overwritten "
                          f"({purpose})", stacklevel=4)
        keep = ~changed
        return pos[keep], exact[keep], near_new[keep] & ~exact[keep]

    def live(self, adapter, purpose: str = "apply"):
        """Which moved records can be used on this store now: ``(positions into ids, their
        state)`` where state is ``"original"`` or ``"nudged"``. Records deleted from the store
        or re-embedded since the fit are skipped with a warning."""
        pos, _, nudged = self._states(adapter, purpose)
        return pos, np.where(nudged, "nudged", "original")

    def pending(self, index_or_store, action: str = "apply") -> list[str]:
        """The ids that ``apply(..., inplace=True)`` (``action="apply"``) or :meth:`revert`
        (``action="revert"``) would write now; nothing is written. Apply writes the records
        that move and do not hold their nudged vector yet; revert the records that do not hold
        their original vector bit for bit."""
        return [self.ids[p] for p in self._pending(adapt(index_or_store), action)]

    def _pending(self, adapter, action: str) -> np.ndarray:
        pos, exact, nudged = self._states(adapter, action)
        if action == "revert":
            return pos[~exact]
        if action != "apply":
            raise InputError(f"action={action!r} must be 'apply' or 'revert'")
        return pos[self.moved[pos] & ~nudged]

    def apply(self, index_or_store, inplace: bool = False, allow_model_mismatch: bool = False,
              copy_name: str | None = None):
        """Write the nudged vectors. By default returns a new index/store that shares the
        nodes/documents and holds the nudged vectors; the original is untouched. With
        ``inplace=True`` writes into the given store (undo with :meth:`revert`); records that
        already hold their nudged vector, and records that do not move, are not rewritten.

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
            if not isinstance(copy_name, str) or not copy_name or "\x00" in copy_name:
                raise InputError(f"copy_name must be a non-empty string without NUL "
                                 f"characters, got {copy_name!r}")
        check_finite(self.__dict__, self.ids, "this delta")  # changed in memory since?
        adapter = adapt(index_or_store)
        self._check_target(adapter, allow_model_mismatch)
        if inplace:
            todo = self._pending(adapter, "apply")
            if len(todo):
                adapter.write([self.ids[p] for p in todo], self.vectors[todo])
            return index_or_store
        pos, _ = self.live(adapter, "apply")
        todo = pos[self.moved[pos]]
        return adapter.clone_with([self.ids[p] for p in todo], self.vectors[todo],
                                  name=copy_name)

    def revert(self, index_or_store) -> int:
        """Undo an in-place :meth:`apply`: write back, bit for bit, the original vector of
        every record that does not hold it. Returns how many records were written (0 when the
        store already holds the original vectors)."""
        adapter = adapt(index_or_store)
        self._check_target(adapter, allow_model_mismatch=True)
        todo = self._pending(adapter, "revert")
        if len(todo):
            adapter.write([self.ids[p] for p in todo], self.original[todo])
        return int(len(todo))

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
    def save(self, path, overwrite: bool = False) -> Path:
        """Write ``path/`` (``delta.json`` + ``arrays.npz``). The new copy is written beside
        ``path``, flushed to disk and swapped in at once, so ``path`` holds the old delta or
        the new one, whole, at every instant (see docs/reliability.md).

        ``path`` must not exist, or be an empty folder, or hold a delta and
        ``overwrite=True`` be given; anything else there is refused (and left as it was)."""
        return write_delta(self, path, overwrite)

    @classmethod
    def load(cls, path) -> NudgeDelta:
        """Read a delta written by :meth:`save`, verifying it is whole and untouched: every
        field, shape, dtype and checksum, and finite values. A damaged delta raises
        :class:`InputError` naming the file and the field."""
        return cls(**read_delta(path))
