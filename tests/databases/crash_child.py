"""The crash tests' child process: it opens a store as a new process would (``PAIRS[name]
.open``), applies a delta in place, persists it where the store lives in memory (FAISS), and
kills itself (SIGKILL) at a chosen point of that.

Children fork from a server process (multiprocessing's forkserver) that imported the
frameworks once, so each starts in a fraction of a second instead of importing them again
(5 to 10 s each on a busy machine). The server forks before any store is opened: a child
shares no client, thread or connection with anyone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from pathlib import Path

#: what the fork server imports once (missing ones are skipped)
PRELOAD = ["numpy", "sqlalchemy", "faiss", "chromadb", "qdrant_client", "psycopg", "psycopg2",
           "llama_index.core", "llama_index.vector_stores.chroma",
           "llama_index.vector_stores.qdrant", "llama_index.vector_stores.postgres",
           "llama_index.vector_stores.faiss", "langchain_core", "langchain_chroma",
           "langchain_qdrant", "langchain_postgres", "langchain_community.vectorstores",
           "pymilvus", "milvus_lite", "llama_index.vector_stores.milvus", "langchain_milvus",
           "tiktoken", "nudge_rag.delta", "nudge_rag.cli.indexes", "nudge_rag.stores.llama_index",
           "nudge_rag.stores.langchain", "nudge_rag.stores.chroma", "nudge_rag.stores.qdrant",
           "nudge_rag.stores.pgvector", "nudge_rag.stores.milvus",
           "nudge_rag.stores.faiss_index", "nudge_rag.stores.langchain_faiss",
           "tests.databases.builders",
           "tests.databases.crash_child"]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _die_after(owner, name: str, calls: int = 1) -> None:
    """``owner.name`` runs, and the process dies once it has returned ``calls`` times."""
    real = getattr(owner, name)
    done = []

    def then_die(*args, **kwargs):
        out = real(*args, **kwargs)
        done.append(1)
        if len(done) == calls:
            _die()
        return out

    setattr(owner, name, then_die)


def _between_batches(obj) -> None:
    """Chroma, Qdrant, Milvus: writes go in batches (of 8 here); die once two have landed."""
    import nudge_rag.stores.database as database
    from nudge_rag.stores import adapt

    database.BATCH = 8
    _die_after(type(adapt(obj)), "_update", calls=2)


def _before_commit(obj) -> None:
    """pgvector: every UPDATE has run inside the one transaction, which has not committed."""
    from sqlalchemy import event

    from nudge_rag.stores import adapt

    def die_after_update(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE"):
            _die()

    event.listen(adapt(obj).engine, "after_cursor_execute", die_after_update)


def _after_apply(obj) -> None:
    """FAISS: the new index is in the store, in memory; nothing is on disk yet."""
    from nudge_rag.stores import adapt

    _die_after(type(adapt(obj)), "_put_index")


def _mid_persist(obj) -> None:
    """FAISS: the framework has written the index file of the new copy, not the rest."""
    import faiss

    _die_after(faiss, "write_index")


def _after_swap(obj) -> None:
    """FAISS: the new copy was just swapped in (one atomic exchange of the two folders); the
    old one, now beside it, is not removed yet."""
    import nudge_rag._fs as fs

    _die_after(fs, "_exchange")


#: kill point -> how it is armed
ARM = {"between-batches": _between_batches, "before-commit": _before_commit,
       "after-apply": _after_apply, "mid-persist": _mid_persist,
       "after-swap": _after_swap}


def main(name: str, place, delta_path: str, kill_at: str, error_file: str) -> None:
    """The child: exits by SIGKILL at ``kill_at``; 0 if it finished, 3 if it failed (the
    traceback is in ``error_file``)."""
    try:
        from nudge_rag import NudgeDelta
        from tests.databases.builders import PAIRS

        pair = PAIRS[name]
        obj = pair.open(place)
        ARM[kill_at](obj)
        NudgeDelta.load(delta_path).apply(obj, inplace=True)
        pair.persist(obj, place)
    except BaseException:  # noqa: BLE001 - reported to the parent through the file
        Path(error_file).write_text(traceback.format_exc())
        os._exit(3)
    os._exit(0)


def _context():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # slower: each child imports for itself
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs
    return ctx


def start_server() -> None:
    """Start the fork server now, to import while other tests run."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def kill_during_apply(name: str, place, delta_path, kill_at: str, tmp_path) -> None:
    """Run the child and check that it was killed, rather than finished or failed."""
    error_file = Path(tmp_path) / "child-error.txt"
    proc = _context().Process(target=main, args=(name, place, str(delta_path), kill_at,
                                                 str(error_file)))
    proc.start()
    proc.join(120)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
        raise AssertionError(f"the child ({name}, {kill_at}) hung")
    said = error_file.read_text() if error_file.exists() else ""
    assert proc.exitcode == -signal.SIGKILL, \
        f"the child exited with {proc.exitcode} instead of being killed at {kill_at}\n{said}"
