"""Persisted indexes the command line reads and writes.

Three layouts are recognised (or chosen with ``--kind``):

- ``llama-index``: a LlamaIndex persist dir (``docstore.json``, ``index_store.json``,
  ``default__vector_store.json``), SimpleVectorStore;
- ``langchain``: a file written by LangChain's ``InMemoryVectorStore.dump(path)``;
- ``faiss``: a folder written by LangChain's ``FAISS.save_local`` (``index.faiss`` +
  ``index.pkl``). Loading it unpickles ``index.pkl``, so it needs ``--allow-pickle``: only
  load folders you wrote yourself.

Every write goes to a temporary sibling first and is renamed into place, so a failed write
leaves what was there untouched.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .._fs import staged
from .._readers import read_json
from ..errors import InputError

KINDS = ("llama-index", "langchain", "faiss")


def add_index_options(parser, allow_pickle: bool = True) -> None:
    parser.add_argument("--kind", choices=KINDS,
                        help="the index layout (default: detected from the path)")
    parser.add_argument("--model", default=None,
                        help="sentence-transformers model name or path that embedded the index "
                             "(default: the bundled offline all-MiniLM-L6-v2)")
    if allow_pickle:
        parser.add_argument("--allow-pickle", action="store_true",
                            help="allow loading a FAISS folder, whose index.pkl is a pickle "
                                 "(only for folders you wrote yourself)")


def detect_kind(path: Path) -> str:
    if not path.exists():
        raise InputError(f"index {path} does not exist")
    if path.is_dir():
        if (path / "index.faiss").is_file() and (path / "index.pkl").is_file():
            return "faiss"
        if (path / "docstore.json").is_file():
            return "llama-index"
        raise InputError(f"{path} is not an index. {_what_is_an_index(path, '')}")
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except UnicodeDecodeError:
        head = ""
    if _looks_like_dump(head):
        return "langchain"
    raise InputError(f"{path} is not an index. {_what_is_an_index(path, head)}")


def _looks_like_dump(head: str) -> bool:
    """The start of ``InMemoryVectorStore.dump``'s JSON: one object of ``{id: {"id",
    "vector", ...}}``, and not a JSONL file of questions (one object per line)."""
    text = head.strip()
    if text == "{}":
        return True
    first = text.split("\n", 1)[0]
    return text.startswith("{") and '"vector"' in text and '"question"' not in first


def _is_index_dir(path: Path) -> bool:
    return ((path / "docstore.json").is_file()
            or ((path / "index.faiss").is_file() and (path / "index.pkl").is_file()))


def _near_miss(path: Path) -> str:
    """The path a nearly right INDEX argument meant: the index inside the demo's folder, the
    folder of a file of an index, or the order of a delta and its index."""
    from ..delta_format import META

    if path.is_dir():
        if (path / META).is_file():
            return "It is a delta (written by `nudge-rag fit`); the index comes first. "
        inside = [str(p) for p in sorted(path.iterdir()) if p.is_dir() and _is_index_dir(p)]
        if inside:
            return f"Did you mean {' or '.join(inside[:3])}? "
    elif path.parent != path and _is_index_dir(path.parent):
        return f"Did you mean {path.parent}? "
    return ""


def _what_is_an_index(path: Path, head: str) -> str:
    """What the INDEX argument should have been, and the extra each kind needs."""
    first = head.lstrip().split("\n", 1)[0]
    looks = _near_miss(path)
    if path.suffix.lower() == ".jsonl" or '"question"' in first:
        looks = "It looks like a questions file; questions come after the index. "
    return (looks + "INDEX is one of: a LlamaIndex persist dir (docstore.json; pip install "
            "'nudge-rag[llama-index]'), a LangChain InMemoryVectorStore dump (a JSON file "
            "written by store.dump(path); pip install 'nudge-rag[langchain]') or a LangChain "
            "FAISS folder (index.faiss + index.pkl; pip install 'nudge-rag[langchain]').")


def check_kind(path: Path, kind: str) -> None:
    """Refuse a ``--kind`` that the path cannot be."""
    if not path.exists():
        raise InputError(f"index {path} does not exist")
    found = None
    try:
        found = detect_kind(path)
    except InputError:
        pass
    if found is not None and found != kind:
        raise InputError(f"--kind {kind} does not match {path}, which looks like a {found} "
                         "index; drop --kind or pass the right one")
    if found is None:
        raise InputError(f"{path} is not a {kind} index")


@dataclass
class Loaded:
    """An index read from disk: the framework object, its kind and where it came from."""

    obj: object
    kind: str
    path: Path
    model: str | None

    def chunks(self) -> list[tuple[str, str]]:
        """``(record id, text)`` for every record that holds a vector."""
        if self.kind == "llama-index":
            emb = self.obj.vector_store.data.embedding_dict
            docs = self.obj.docstore.docs
            return [(i, docs[i].get_content()) for i in emb if i in docs]
        if self.kind == "langchain":
            return [(i, rec["text"]) for i, rec in self.obj.store.items()]
        ids = [self.obj.index_to_docstore_id[r] for r in range(self.obj.index.ntotal)]
        return [(i, self.obj.docstore.search(i).page_content) for i in ids]

    def texts(self, ids) -> dict[str, str]:
        chunks = dict(self.chunks())
        return {i: chunks.get(i, "") for i in ids}

    def metadata(self, record_id: str) -> dict:
        if self.kind == "llama-index":
            node = self.obj.docstore.docs.get(record_id)
            return dict(node.metadata) if node is not None else {}
        if self.kind == "langchain":
            return dict(self.obj.store.get(record_id, {}).get("metadata") or {})
        doc = self.obj.docstore.search(record_id)
        return dict(getattr(doc, "metadata", {}) or {})

    def ref_docs(self) -> dict[str, list[str]]:
        """``{document id: [record ids]}`` for mapping logged document ids to records."""
        out: dict[str, list[str]] = {}
        if self.kind == "llama-index":
            for nid, node in self.obj.docstore.docs.items():
                ref = getattr(node, "ref_doc_id", None)
                if ref:
                    out.setdefault(str(ref), []).append(nid)
        else:
            for rid, _ in self.chunks():
                source = self.metadata(rid).get("source")
                if source:
                    out.setdefault(str(source), []).append(rid)
        return out


EXTRAS = {"llama-index": "llama-index", "langchain": "langchain", "faiss": "langchain"}


def load_index(path, kind: str | None = None, model: str | None = None,
               allow_pickle: bool = False) -> Loaded:
    path = Path(path)
    if kind is None:
        kind = detect_kind(path)
    else:
        check_kind(path, kind)
    try:
        return _load(path, kind, model, allow_pickle)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise InputError(f"{path} is a {kind} index, and reading it needs {missing}: pip "
                         f"install 'nudge-rag[{EXTRAS[kind]}]'") from None


def _load(path: Path, kind: str, model: str | None, allow_pickle: bool) -> Loaded:
    if kind == "llama-index":
        from llama_index.core import StorageContext, load_index_from_storage

        from ..local import llama_index_embedding

        storage = StorageContext.from_defaults(persist_dir=str(path))
        try:
            obj = load_index_from_storage(storage, embed_model=llama_index_embedding(model))
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
    elif kind == "langchain":
        from langchain_core.vectorstores import InMemoryVectorStore

        from ..local import langchain_embeddings

        _check_dump(path)
        try:
            obj = InMemoryVectorStore.load(str(path), langchain_embeddings(model))
        except Exception as exc:  # noqa: BLE001 - whatever LangChain's reader raises
            raise InputError(f"{path} is not a readable InMemoryVectorStore dump "
                             f"({type(exc).__name__}: {exc})") from None
    else:
        if not allow_pickle:
            raise InputError(f"{path} is a FAISS folder; loading it unpickles index.pkl, which "
                             "can run code: pass --allow-pickle if you wrote it yourself")
        from langchain_community.vectorstores import FAISS

        from ..local import langchain_embeddings

        _check_faiss_file(path / "index.faiss")
        try:
            obj = FAISS.load_local(str(path), langchain_embeddings(model),
                                   allow_dangerous_deserialization=True)
        except Exception as exc:  # noqa: BLE001 - whatever faiss or the unpickling raises
            raise InputError(f"{path} is not a readable FAISS folder ({type(exc).__name__}: "
                             f"{exc}); save it again with save_local") from None
        _check_faiss_store(obj, path)
    return Loaded(obj, kind, path, model)


_DUMP_FIX = "write it with InMemoryVectorStore.dump(path)"


def _check_dump(path: Path) -> None:
    """Refuse a LangChain dump that is not ``{id: {"id", "vector", "text", "metadata"}}``
    with finite vectors of one length, naming the record and the field."""
    data = read_json(path, _DUMP_FIX)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{id: record}}, got "
                         f"{type(data).__name__}; {_DUMP_FIX}")
    dim = None
    for key, rec in data.items():
        where = f"{path}: record {key!r}"
        if not isinstance(rec, dict):
            raise InputError(f"{where} must be an object, got {type(rec).__name__}; "
                             f"{_DUMP_FIX}")
        vector = rec.get("vector")
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in vector):
            raise InputError(f"{where}: field 'vector' must be a non-empty list of finite "
                             f"numbers; {_DUMP_FIX}")
        if dim is not None and len(vector) != dim:
            raise InputError(f"{where}: field 'vector' has {len(vector)} numbers, the records "
                             f"before it {dim}; {_DUMP_FIX}")
        dim = len(vector)
        if not isinstance(rec.get("text"), str) or not isinstance(rec.get("id", key), str):
            raise InputError(f"{where}: fields 'text' and 'id' must be strings; {_DUMP_FIX}")
        if not isinstance(rec.get("metadata", {}), dict):
            raise InputError(f"{where}: field 'metadata' must be an object; {_DUMP_FIX}")


def _check_faiss_store(obj, path: Path) -> None:
    """Every row of the FAISS index must map to a document in the docstore."""
    index_ids = getattr(obj, "index_to_docstore_id", None)
    docs = getattr(getattr(obj, "docstore", None), "_dict", None)
    if not isinstance(index_ids, dict) or not isinstance(docs, dict) or \
            sorted(index_ids) != list(range(obj.index.ntotal)) or \
            any(i not in docs for i in index_ids.values()):
        raise InputError(f"{path}: index.faiss and index.pkl do not match (rows without "
                         "documents); save the store again with save_local")


#: the FAISS index types whose file is a fixed header plus the rows, so that a header that
#: promises more rows than the file holds can be refused before faiss allocates them
_FLAT_FOURCC = (b"IxFI", b"IxF2", b"IxFl")


def _check_faiss_file(path: Path) -> None:
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(45)
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror}); is it a FAISS folder?") \
            from None
    if len(head) < 4:
        raise InputError(f"{path} is empty or truncated; save the store again with save_local")
    if head[:4] not in _FLAT_FOURCC or len(head) < 45:
        return  # other index types: faiss checks them itself
    d, ntotal = struct.unpack_from("<iq", head, 4)
    metric = struct.unpack_from("<i", head, 29)[0]
    codes_at = 33 + (4 if metric > 1 else 0)  # metric_arg follows a metric beyond L2/IP
    size = path.stat().st_size
    if d <= 0 or ntotal < 0 or d * ntotal * 4 > size - codes_at - 8:
        raise InputError(f"{path} is truncated or damaged (its header promises {ntotal} rows "
                         f"of {d} floats); save the store again with save_local")


def _write(obj, kind: str, target: Path) -> None:
    if kind == "llama-index":
        obj.storage_context.persist(persist_dir=str(target))
    elif kind == "langchain":
        obj.dump(str(target))
    else:
        _save_faiss(obj, target)


def _save_faiss(store, folder: Path) -> None:
    """The layout of LangChain's ``FAISS.save_local`` (``index.faiss``, and ``index.pkl``
    holding the docstore and the row-to-id map), with the index streamed through Python:
    ``faiss.write_index(index, path)`` only prints a failed close (a full disk) and returns,
    leaving a truncated file behind."""
    import pickle

    import faiss

    folder.mkdir()
    with open(folder / "index.faiss", "wb") as fh:
        writer = faiss.PyCallbackIOWriter(fh.write)
        faiss.write_index(store.index, writer)
        del writer  # flushes its last block
    with open(folder / "index.pkl", "wb") as fh:
        pickle.dump((store.docstore, store.index_to_docstore_id), fh)


def save_index(obj, kind: str, target, backup=None) -> Path | None:
    """Write ``obj`` to ``target``: into a temporary sibling, flushed to disk, then swapped
    in at once, so ``target`` holds the old index or the new one, whole, at every instant.
    With ``backup``, the old index is kept there (whole, before ``target`` changes).
    Returns the backup path when one was made."""
    target = Path(target)
    keep = backup is not None and os.path.lexists(target)
    with staged(target, backup=backup) as tmp:
        _write(obj, kind, tmp)
    return Path(backup) if keep else None
