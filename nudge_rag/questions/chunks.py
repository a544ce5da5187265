"""Turn the things users call a corpus into ``[(record id, text), ...]``.

Accepted: a dict ``{id: text}``; ``(id, text)`` pairs; LlamaIndex nodes and Documents
(``node_id`` + ``get_content()``); LangChain Documents (``id`` + ``page_content``). The
frameworks are recognised by attribute, so neither needs to be installed.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputError


def _one(item, i: int) -> tuple[str, str]:
    if hasattr(item, "get_content") and hasattr(item, "node_id"):  # LlamaIndex node/Document
        return str(item.node_id), item.get_content()
    if hasattr(item, "page_content"):  # LangChain Document
        rid = getattr(item, "id", None)
        if rid is None:
            meta = getattr(item, "metadata", None) or {}
            rid = meta.get("id", meta.get("doc_id"))
        if rid is None:
            raise InputError(f"documents[{i}]: LangChain Document has no id (neither .id nor "
                             "metadata['id']); pass the ids the vector store uses, e.g. as "
                             "(id, text) pairs")
        return str(rid), item.page_content
    if isinstance(item, (tuple, list)) and len(item) == 2:
        rid, text = item
        return str(rid), text
    raise InputError(f"documents[{i}]: cannot read {type(item).__name__}; pass LlamaIndex "
                     "nodes/Documents, LangChain Documents, (id, text) pairs or {id: text}")


def as_chunks(items) -> list[tuple[str, str]]:
    """``[(id, text), ...]`` in input order; raises on repeated ids or non-string texts."""
    if isinstance(items, Mapping):
        pairs = [(str(k), v) for k, v in items.items()]
    else:
        pairs = [_one(item, i) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, (rid, text) in enumerate(pairs):
        if rid in seen:
            raise InputError(f"documents[{i}]: id {rid!r} appears twice; record ids must be "
                             "unique")
        seen.add(rid)
        if not isinstance(text, str):
            raise InputError(f"documents[{i}] (id {rid!r}): text must be a string, got "
                             f"{type(text).__name__}")
    if not pairs:
        raise InputError("documents is empty; pass at least one chunk")
    return pairs
