"""The on-disk form of a delta: a folder holding ``delta.json`` (the facts) and
``arrays.npz`` (ids' vectors), written atomically and read as untrusted input.

Reading checks everything before anything is used: the folder is whole (the checksum in
``delta.json`` matches ``arrays.npz``), every field has its type, every array its shape and
dtype (read from the ``.npy`` headers before any data, so a forged shape cannot ask for
terabytes), every number is finite, and neither file is a link out of the folder."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import zipfile
from pathlib import Path

import numpy as np

from ._fs import check_output, interrupted_copies, listing, staged
from ._readers import read_json
from ._version import __version__
from .core.method import Method
from .core.metrics import parse_metric
from .errors import InputError

FORMAT = "nudge-rag-delta"
FORMAT_VERSION = 1
ARRAYS = "arrays.npz"
META = "delta.json"
METHODS = tuple(m.value for m in Method)
SIMILARITIES = ("cosine", "dot", "l2")
_FLOAT_ARRAYS = ("vectors", "original", "sums", "memory_keys")
_CORRUPT = "the delta is truncated or corrupt: save it again from a fit"


# -- writing ---------------------------------------------------------------------------------
def delta_problem(path: Path) -> str | None:
    """Why ``path`` is not a delta folder (``None`` when it is one: ``delta.json`` and
    nothing but ``arrays.npz`` beside it, even if damaged)."""
    if not path.is_dir():
        return "is a file, not a nudge-rag delta folder"
    names = set(os.listdir(path))
    if META not in names:
        return f"is not a nudge-rag delta (it holds {listing(path)}, and no {META})"
    extra = sorted(names - {META, ARRAYS})
    if extra:
        return (f"holds files a nudge-rag delta does not ({', '.join(extra[:4])}), so "
                "replacing it would lose them")
    return None


def check_delta_output(path, overwrite: bool, flag: str = "overwrite=True") -> None:
    """The output rule for deltas: see :func:`nudge_rag._fs.check_output`."""
    check_output(path, "a nudge-rag delta", delta_problem, overwrite, flag)


def write_delta(delta, path, overwrite: bool = False) -> Path:
    path = Path(path)
    check_finite(delta.__dict__, delta.ids, "this delta")  # changed in memory since?
    check_delta_output(path, overwrite)
    with staged(path) as tmp:
        tmp.mkdir()
        with open(tmp / ARRAYS, "wb") as fh:
            np.savez(fh, vectors=delta.vectors.astype(np.float32),
                     original=delta.original.astype(np.float64),
                     sums=delta.sums.astype(np.float64), counts=delta.counts.astype(np.int64),
                     memory_keys=delta.memory_keys.astype(np.float32),
                     memory_links=delta.memory_links.astype(np.int64))
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "nudge_rag": __version__,
                "ids": delta.ids, "method": delta.method, "gamma": delta.gamma,
                "metric": delta.metric, "similarity": delta.similarity, "dim": delta.dim,
                "model": delta.model, "questions": delta.questions,
                "report": delta.fit_report, "alpha": delta.alpha,
                "memory": {"keys": len(delta.memory_keys), "links": len(delta.memory_links)},
                "arrays_sha256": _sha256(tmp / ARRAYS)}
        with open(tmp / META, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, default=_json_default)
    return path


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


# -- reading ---------------------------------------------------------------------------------
def read_delta(path) -> dict:
    """The checked fields of the delta saved at ``path``, as ``NudgeDelta`` keywords."""
    path = Path(path)
    if path.is_file():
        raise InputError(f"{path} is a file; pass the folder that delta.save() wrote")
    if not path.is_dir():
        raise InputError(_missing(path))
    meta_path = _inside(path, META)
    if not meta_path.is_file():
        raise InputError(f"{path} holds no {META}; pass the folder that delta.save() wrote")
    meta = read_json(meta_path, _CORRUPT)
    fields = _check_meta(meta, meta_path)
    arrays_path = _inside(path, ARRAYS)
    if not arrays_path.is_file() or _sha256(arrays_path) != meta.get("arrays_sha256"):
        raise InputError(f"{arrays_path} is missing, truncated or was modified after saving "
                         "(checksum mismatch); save the delta again")
    fields.update(_read_arrays(arrays_path, len(fields["ids"]), fields["dim"],
                               fields.pop("memory_sizes")))
    check_finite(fields, fields["ids"], str(arrays_path))
    return fields


def _missing(path: Path) -> str:
    for copy in interrupted_copies(path):
        if (copy / META).is_file():
            try:
                read_delta(copy)
            except InputError:
                continue
            return (f"{path} does not exist, but {copy} beside it holds a whole delta (a save "
                    f"was interrupted); rename it back to {path.name}")
    return f"{path} does not exist (no delta.json to read); pass the folder that delta.save() wrote"


def _inside(folder: Path, name: str) -> Path:
    """``folder/name``, refusing a symbolic link that leads out of ``folder``."""
    path = folder / name
    if path.is_symlink():
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
        if root not in real.parents:
            raise InputError(f"{path} is a symbolic link to {real}, outside the delta folder; "
                             f"copy the file into {folder} instead")
    return path


def _bad(where: Path, key: str, want: str, value) -> InputError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return InputError(f"{where}: field {key!r} must be {want}, got {shown}; {_CORRUPT}")


def _check_meta(meta, where: Path) -> dict:
    if not isinstance(meta, dict):
        raise InputError(f"{where} must hold a JSON object, got {type(meta).__name__}; "
                         f"{_CORRUPT}")
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise InputError(f"{where.parent} is not a nudge-rag delta of format version "
                         f"{FORMAT_VERSION}")
    for key in ("ids", "method", "gamma", "metric", "similarity", "dim", "model"):
        if key not in meta:
            raise InputError(f"{where}: field {key!r} is missing; {_CORRUPT}")
    ids = meta["ids"]
    if not isinstance(ids, list) or not all(
            isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool)) for i in ids):
        raise _bad(where, "ids", "a list of record ids (strings)", ids)
    dim, gamma = meta["dim"], meta["gamma"]
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise _bad(where, "dim", "a positive integer", dim)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) \
            or not math.isfinite(gamma) or gamma < 0:
        raise _bad(where, "gamma", "a finite number ≥ 0", gamma)
    if meta["method"] not in METHODS:
        raise _bad(where, "method", f"one of {', '.join(METHODS)}", meta["method"])
    if meta["similarity"] not in SIMILARITIES:
        raise _bad(where, "similarity", f"one of {', '.join(SIMILARITIES)}",
                   meta["similarity"])
    try:
        parse_metric(meta["metric"], "metric")
    except InputError:
        raise _bad(where, "metric", "a metric such as 'ndcg@10'", meta["metric"]) from None
    for key, kind, want in (("model", dict, "an object"), ("report", dict, "an object"),
                            ("questions", str, "a string")):
        if not isinstance(meta.get(key, kind()), kind):
            raise _bad(where, key, want, meta[key])
    _check_model(meta["model"], where)
    _check_report(meta.get("report", {}), where)
    return {"ids": [str(i) for i in ids], "method": meta["method"], "gamma": float(gamma),
            "metric": meta["metric"], "similarity": meta["similarity"], "dim": dim,
            "model": meta["model"], "questions": meta.get("questions", ""),
            "fit_report": meta.get("report", {}), **_check_memory_meta(meta, where)}


def _finite_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_model(model: dict, where: Path) -> None:
    """The fingerprint fields that the model check reads (see ``embedding.model_mismatch``)."""
    name, dim, probe = model.get("name"), model.get("dim"), model.get("probe")
    if name is not None and not isinstance(name, str):
        raise _bad(where, "model", "an object whose 'name' is a string", model)
    if dim is not None and not (_count(dim) and dim > 0):
        raise _bad(where, "model", "an object whose 'dim' is a positive integer", model)
    if probe is not None and not (isinstance(probe, list)
                                  and all(_finite_number(x) for x in probe)):
        raise _bad(where, "model", "an object whose 'probe' is a list of finite numbers",
                   model)


def _check_report(report: dict, where: Path) -> None:
    """The fit report's fields that ``NudgeDelta.report`` and ``update`` compute with."""
    for key in ("n_train_questions", "n_val_questions"):
        if key in report and not _count(report[key]):
            raise _bad(where, "report", f"an object whose {key!r} is a whole number ≥ 0",
                       report)
    before, after = report.get("before"), report.get("after")
    for part in (before, after):
        if part is not None and not (isinstance(part, dict)
                                     and all(_finite_number(v) for v in part.values())):
            raise _bad(where, "report", "an object whose 'before' and 'after' map metric "
                       "names to numbers", report)
    if before and after and set(before) != set(after):
        raise _bad(where, "report", "an object whose 'before' and 'after' name the same "
                   "metrics", report)


def _check_memory_meta(meta: dict, where: Path) -> dict:
    """α and the memory's sizes; a delta saved before query memory existed has neither (and
    no memory)."""
    alpha, sizes = meta.get("alpha", 0.0), meta.get("memory", {"keys": 0, "links": 0})
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) \
            or not math.isfinite(alpha) or alpha < 0:
        raise _bad(where, "alpha", "a finite number ≥ 0", alpha)
    if not isinstance(sizes, dict) or set(sizes) != {"keys", "links"} or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for v in sizes.values()):
        raise _bad(where, "memory", "an object with counts 'keys' and 'links'", sizes)
    return {"alpha": float(alpha), "memory_sizes": (sizes["keys"], sizes["links"])}


def _read_arrays(path: Path, n: int, dim: int, memory: tuple[int, int] = (0, 0)) -> dict:
    """The arrays, each checked from its ``.npy`` header before its data is read; the
    memory's two only where ``delta.json`` says it holds some (older deltas have none)."""
    want = {"vectors": (n, dim), "original": (n, dim), "sums": (n, dim), "counts": (n,)}
    if memory != (0, 0):
        want.update({"memory_keys": (memory[0], dim), "memory_links": (memory[1], 2)})
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}
            for name, shape in want.items():
                info = members.get(f"{name}.npy")
                if info is None:
                    raise InputError(f"{path} holds no array {name!r}; {_CORRUPT}")
                with zf.open(info) as fh:
                    _check_header(fh, info.file_size, name, shape, path)
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in want}
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged zip or .npy raises
        raise InputError(f"{path} cannot be read ({type(exc).__name__}: {exc}); "
                         f"{_CORRUPT}") from None


def _check_header(fh, size: int, name: str, shape: tuple, path: Path) -> None:
    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else \
        npy.read_array_header_2_0
    got, _, dtype = read_header(fh)
    integers = name in ("counts", "memory_links")
    if dtype.kind not in ("iu" if integers else "f") or dtype.hasobject:
        raise InputError(f"{path}: array {name!r} has dtype {dtype}, expected "
                         f"{'integers' if integers else 'floats'}; {_CORRUPT}")
    if tuple(got) != shape:
        raise InputError(f"{path}: array {name!r} has shape {tuple(got)}, expected {shape} "
                         f"(one row per id); {_CORRUPT}")
    if math.prod(got) * dtype.itemsize > size:
        raise InputError(f"{path}: array {name!r} is shorter than its header says; {_CORRUPT}")


#: the nudged vectors are written as float32 (by the format and by most stores)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite(arrays: dict, ids, where: str) -> None:
    """Refuse NaN or infinite values in a delta's float arrays, nudged vectors that float32
    cannot hold, and negative counts."""
    for name in _FLOAT_ARRAYS:
        if arrays.get(name) is None:  # no memory
            continue
        bad = ~np.isfinite(arrays[name]).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = f"key {row}" if name == "memory_keys" else f"record {ids[row]!r}"
            raise InputError(f"{where}: {name!r} row {row} ({what}) holds NaN or inf "
                             f"({int(bad.sum())} such rows); {_CORRUPT}")
    big = np.abs(arrays["vectors"]).max(axis=1, initial=0.0) > _FLOAT32_MAX
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise InputError(f"{where}: 'vectors' row {row} (record {ids[row]!r}) holds values too "
                         f"large for float32, in which stores and deltas keep nudged vectors "
                         f"(up to {float(np.abs(arrays['vectors'][row]).max()):.3g}, float32 "
                         "ends at 3.4e38); fit the delta again")
    counts = np.asarray(arrays["counts"])
    if (counts < 0).any() or (counts > np.iinfo(np.int64).max).any():
        raise InputError(f"{where}: 'counts' holds a negative count or one past int64; "
                         f"{_CORRUPT}")
