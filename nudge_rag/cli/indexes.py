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

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

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


def _what_is_an_index(path: Path, head: str) -> str:
    """What the INDEX argument should have been, and the extra each kind needs."""
    first = head.lstrip().split("\n", 1)[0]
    looks = ""
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

        try:
            obj = InMemoryVectorStore.load(str(path), langchain_embeddings(model))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path} is not a readable InMemoryVectorStore dump ({exc})") from None
    else:
        if not allow_pickle:
            raise InputError(f"{path} is a FAISS folder; loading it unpickles index.pkl, which "
                             "can run code: pass --allow-pickle if you wrote it yourself")
        from langchain_community.vectorstores import FAISS

        from ..local import langchain_embeddings

        obj = FAISS.load_local(str(path), langchain_embeddings(model),
                               allow_dangerous_deserialization=True)
    return Loaded(obj, kind, path, model)


def _write(obj, kind: str, target: Path) -> None:
    if kind == "llama-index":
        obj.storage_context.persist(persist_dir=str(target))
    elif kind == "langchain":
        obj.dump(str(target))
    else:
        obj.save_local(str(target))


def save_index(obj, kind: str, target, backup=None) -> Path | None:
    """Write ``obj`` to ``target`` through a temporary sibling renamed into place. When
    ``target`` exists it is moved to ``backup`` (or removed when ``backup`` is ``None``).
    Returns the backup path."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _write(obj, kind, tmp)
    except BaseException:
        _remove(tmp)
        raise
    old = None
    if target.exists():
        old = Path(backup) if backup is not None else \
            target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        if backup is not None and old.exists():
            _remove(tmp)
            raise InputError(f"backup {old} already exists; move it away or pass --backup")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        _remove(tmp)
        raise
    if old is not None and backup is None:
        _remove(old)
    return old if backup is not None else None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
