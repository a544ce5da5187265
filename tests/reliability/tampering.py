"""Deltas changed after saving the way a hostile or careless hand would, checksum and all."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np


def read_arrays(path) -> dict:
    with np.load(Path(path) / "arrays.npz") as npz:
        return {k: npz[k] for k in npz.files}


def write_arrays(path, arrays: dict, fix_checksum: bool = True) -> None:
    """Replace ``arrays.npz`` and, unless told not to, the checksum that guards it."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_raw_arrays(path, buf.getvalue(), fix_checksum)


def write_raw_arrays(path, data: bytes, fix_checksum: bool = True) -> None:
    path = Path(path)
    (path / "arrays.npz").write_bytes(data)
    if fix_checksum:
        meta = json.loads((path / "delta.json").read_text())
        meta["arrays_sha256"] = hashlib.sha256(data).hexdigest()
        (path / "delta.json").write_text(json.dumps(meta))


def edit_meta(path, edit) -> None:
    """``edit(meta) -> new meta`` on ``delta.json``."""
    meta_path = Path(path) / "delta.json"
    meta = edit(json.loads(meta_path.read_text()))
    meta_path.write_text(json.dumps(meta))
