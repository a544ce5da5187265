"""The answer cache of synthetic-question generation: one JSONL line per chunk that succeeded.

A line is ``{"chunk_id", "key", "model", "questions"}``. ``key`` hashes the exact prompt sent
together with the model's identity and generation settings (see ``llm_calls.model_identity``),
so a changed prompt, chunk text, ``questions_per_chunk``, model or setting asks again, and a
model fixed after a bad run does not get its old answers back. ``model`` is a readable name
for logs. Lines are appended as chunks finish, so an interrupted run resumes; a line cut off by
a killed run is skipped with a warning, and the next run starts its lines on a fresh line.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path


def cache_key(prompt: str, model_key: str) -> str:
    """The key of one request: the model (its identity hash) and the rendered prompt."""
    h = hashlib.sha256(model_key.encode("utf-8"))
    h.update(b"\0")
    h.update(prompt.encode("utf-8"))
    return h.hexdigest()[:24]


class AnswerCache:
    """Questions already received, read from and appended to a JSONL file."""

    def __init__(self, path):
        self.path = Path(path)
        self.entries: dict[tuple[str, str], list[str]] = {}
        self.models: dict[tuple[str, str], str] = {}
        self._file = None
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        with open(self.path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    questions = [q for q in row["questions"] if isinstance(q, str)]
                    key = (str(row["chunk_id"]), str(row["key"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    # most likely the last line of a run that was killed mid-write; that chunk
                    # will simply be asked again
                    warnings.warn(f"{self.path}:{lineno}: unreadable cache line skipped",
                                  stacklevel=4)
                    continue
                if questions:
                    self.entries[key] = questions
                    self.models[key] = str(row.get("model", "an unnamed model"))

    def get(self, chunk_id: str, key: str) -> list[str] | None:
        return self.entries.get((chunk_id, key))

    def others(self, chunk_id: str, key: str) -> set[str]:
        """Models whose answers for this chunk are cached under another key (another
        model, prompt or setting): they are not reused."""
        return {model for (cid, k), model in self.models.items() if cid == chunk_id and k != key}

    def add(self, chunk_id: str, key: str, questions: list[str], model: str) -> None:
        """Append one chunk's questions, flushed at once so a crash loses at most this line."""
        if self._file is None:
            self._file = self._open()
        row = {"chunk_id": chunk_id, "key": key, "model": model, "questions": questions}
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        self.entries[(chunk_id, key)] = list(questions)
        self.models[(chunk_id, key)] = model

    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        half_line = False
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                half_line = fh.read(1) != b"\n"
        handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if half_line:
            # a killed run left half a line: end it, so new entries start on their own
            handle.write("\n")
        return handle

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
