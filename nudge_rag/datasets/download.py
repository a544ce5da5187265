"""Download a public BEIR dataset once, check it against its published md5, keep it cached.

The cache is ``$NUDGE_RAG_CACHE`` when set, else ``$XDG_CACHE_HOME/nudge-rag``, else
``~/.cache/nudge-rag``; datasets live in its ``datasets/<name>/`` folder in the plain BEIR
layout that :func:`~nudge_rag.datasets.load_beir` reads. A download goes to a ``.part`` file
and an archive is unpacked into a temporary sibling that is renamed into place, so an
interrupted run leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from ..errors import DownloadError, InputError

CACHE_ENV = "NUDGE_RAG_CACHE"
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
SOURCE_FILE = "source.json"


@dataclass(frozen=True)
class Source:
    """Where a dataset's zip lives and the md5 its publisher lists for it."""

    url: str
    md5: str
    corpus: str = ""  # corpus size as published, shown by ``nudge-rag datasets list``


def _beir(name: str, md5: str, corpus: str) -> Source:
    return Source(BEIR_URL.format(name=name), md5, corpus)


#: BEIR datasets with a public zip in the flat layout, and the md5 sums listed in the BEIR
#: repository's README ("Available Datasets"). The larger ones take hours to encode on a CPU.
SOURCES: dict[str, Source] = {
    "scifact": _beir("scifact", "5f7d1de60b170fc8027bb7898e2efca1", "5K"),
    "nfcorpus": _beir("nfcorpus", "a89dba18a62ef92f7d323ec890a0d38d", "3.6K"),
    "arguana": _beir("arguana", "8ad3e3c2a5867cdced806d6503f29b99", "8.67K"),
    "scidocs": _beir("scidocs", "38121350fc3a4d2f48850f6aff52e4a9", "25K"),
    "fiqa": _beir("fiqa", "17918ed23cd04fb15047f73e6c3bd9d9", "57K"),
    "trec-covid": _beir("trec-covid", "ce62140cb23feb9becf6270d0d1fe6d1", "171K"),
    "webis-touche2020": _beir("webis-touche2020", "46f650ba5a527fc69e0a6521c5a23563", "382K"),
    "quora": _beir("quora", "18fb154900ba42a600f84b839c173167", "523K"),
}


def cache_dir() -> Path:
    """The cache root: ``$NUDGE_RAG_CACHE``, ``$XDG_CACHE_HOME/nudge-rag`` or
    ``~/.cache/nudge-rag``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "nudge-rag"


def dataset_dir(name: str, cache=None) -> Path:
    """Where dataset ``name`` is (or would be) cached."""
    return Path(cache if cache is not None else cache_dir()) / "datasets" / name


def is_complete(folder: Path) -> bool:
    """A BEIR folder that holds its corpus, queries and relevance judgements."""
    folder = Path(folder)
    return ((folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file()
            and any((folder / "qrels").glob("*.tsv")))


def source_for(name: str, url: str | None = None, md5: str | None = None) -> Source:
    """The known source of ``name``, or the one given by ``url`` and ``md5``."""
    if url is not None:
        if not md5 or len(md5) != 32:
            raise InputError(f"url={url!r} needs md5= (32 hex digits) to check the download")
        return Source(url, md5.lower())
    if name not in SOURCES:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(sorted(SOURCES))} "
                         "(or pass url= and md5= for another BEIR-layout zip)")
    return SOURCES[name]


def download(url: str, target, md5: str, progress: bool = False, block: int = 1 << 16) -> Path:
    """Stream ``url`` to ``target``, checking its length and md5; on any failure nothing is
    left at ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
    digest, received = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as fh:
            expected = _content_length(resp)
            with _bar(expected, f"downloading {target.name}", progress) as bar:
                while chunk := resp.read(block):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DownloadError(f"{url}: the download stopped after {received:,} of "
                                f"{expected:,} bytes; nothing was kept, run it again")
        if digest.hexdigest() != md5:
            raise DownloadError(f"{url}: md5 {digest.hexdigest()} does not match the published "
                                f"{md5}; the file is damaged or was changed upstream, nothing "
                                "was kept")
        os.replace(part, target)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot download {url} ({reason}); check the network") from None
    finally:
        part.unlink(missing_ok=True)
    return target


class Unreachable(DownloadError):
    """The server could not be reached (no network, a proxy, a dead mirror)."""


def _content_length(resp) -> int | None:
    value = resp.headers.get("Content-Length") if resp.headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _bar(total, desc: str, show: bool):
    from .._progress import progress_bar

    return progress_bar(total, desc, show, unit="B", unit_scale=True)


def unpack(archive, name: str, folder) -> Path:
    """Unpack the ``name/`` folder of a BEIR zip into ``folder`` (through a temporary sibling
    renamed into place). Entries outside ``name/`` are ignored; unsafe paths are refused."""
    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename).parts
                if not parts or parts[0] != name or info.is_dir():
                    continue
                if info.filename.startswith("/") or ".." in parts:
                    raise DownloadError(f"{archive}: unsafe path {info.filename!r} in the zip")
                dest = tmp.joinpath(*parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        if not is_complete(tmp):
            raise DownloadError(f"{archive} holds no BEIR folder {name}/ (corpus.jsonl, "
                                "queries.jsonl, qrels/*.tsv)")
        os.replace(tmp, folder)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a readable zip ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def fetch(name: str, cache=None, encode: bool = True, model: str | None = None,
          progress: bool = True, url: str | None = None, md5: str | None = None) -> Path:
    """A BEIR dataset in the cache, downloaded and checked on first use, with its corpus and
    queries encoded by the local model (``nudge_rag.local``, default all-MiniLM-L6-v2) so that
    :func:`~nudge_rag.datasets.load_split` can read it. Returns the dataset folder.

    Later calls find the folder and touch neither the network nor the model. ``url`` and
    ``md5`` fetch another BEIR-layout zip under ``name``.
    """
    source = source_for(name, url, md5)
    folder = dataset_dir(name, cache)
    if not is_complete(folder):
        _download_into(name, source, folder, progress)
    if encode:
        from .encode import encode_cached

        encode_cached(folder, model, progress=progress)
    return folder


def _download_into(name: str, source: Source, folder: Path, progress: bool) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        archive = download(source.url, folder.parent / f".{name}.zip", source.md5, progress)
    except Unreachable as exc:
        # what an offline user can do instead: the cache takes a folder unzipped by hand
        raise Unreachable(f"{exc}. Without the network: fetch that zip on a machine that has "
                          f"it (md5 {source.md5}), unzip it and copy its {name}/ folder to "
                          f"{folder} (so that {folder / 'corpus.jsonl'} exists), then run "
                          f"`nudge-rag datasets get {name}` again: it finds the folder and "
                          "only encodes it") from None
    try:
        unpack(archive, name, folder)
    finally:
        archive.unlink(missing_ok=True)
    stamp = {"url": source.url, "md5": source.md5,
             "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / SOURCE_FILE).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
