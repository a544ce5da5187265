"""Synthetic questions from an LLM, or from the offline generator when there is none.

``generate_questions`` asks the LLM for ``questions_per_chunk`` questions per chunk, with at
most ``max_concurrency`` calls in flight, a ``timeout`` per call and ``max_retries`` retries
with exponential backoff. Failed calls, errors, time-outs and answers with no usable question
are retried and, if they keep failing, reported; they never reach the cache. Successful
chunks are appended to the JSONL ``cache`` as they finish, keyed by the exact prompt, so an
interrupted run resumes without asking again about chunks it already has.

LLMs are recognised by their methods: LlamaIndex (``complete``/``acomplete``, the answer's
``.text``), LangChain chat models and LLMs (``invoke``/``ainvoke``, the answer's ``.content``
or the string itself), or any callable ``prompt -> str``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, NudgeError
from .chunks import as_chunks
from .normalize import normalize_text
from .parsing import parse_questions
from .question import Question
from .question_set import QuestionSet

DEFAULT_PROMPT = """You are preparing a quiz from a document collection.

Passage:
<<<
{context}
>>>

Write {n} different questions that a person searching this collection might ask and that this
passage answers. Each question must stand on its own: do not mention "the passage", "the text"
or "the author". Answer with a numbered list of {n} questions and nothing else."""


class GenerationError(NudgeError, RuntimeError):
    """The LLM gave no usable question for any chunk."""


@dataclass
class GenerationReport:
    """What happened to each chunk during :func:`generate_questions`."""

    n_chunks: int = 0
    from_cache: int = 0
    generated: int = 0
    failed: dict[str, str] = field(default_factory=dict)   # chunk id -> last error
    empty_chunks: list[str] = field(default_factory=list)  # chunks without text, skipped
    merged_duplicates: int = 0  # questions that repeated another chunk's question
    calls: int = 0

    def summary(self) -> str:
        return (f"{self.n_chunks} chunks: {self.from_cache} from cache, {self.generated} "
                f"generated in {self.calls} calls, {len(self.failed)} failed, "
                f"{len(self.empty_chunks)} empty; {self.merged_duplicates} duplicate "
                "questions merged")


# -- talking to the LLM ------------------------------------------------------------------------
def _answer_text(response) -> str:
    if response is None:
        return ""
    if isinstance(response, str):
        return response
    content = getattr(response, "content", None)  # LangChain AIMessage
    if content is None:
        content = getattr(response, "text", None)  # LlamaIndex CompletionResponse
    if content is None:
        content = getattr(response, "message", None)
        content = getattr(content, "content", None)
    if isinstance(content, list):  # LangChain content blocks
        return "\n".join(b if isinstance(b, str) else str(b.get("text", ""))
                         for b in content if isinstance(b, (str, dict)))
    return "" if content is None else str(content)


def _callers(llm):
    """``(async call or None, sync call or None)``, each ``prompt -> answer object``."""
    if hasattr(llm, "complete") and hasattr(llm, "acomplete"):  # LlamaIndex
        acomplete = getattr(type(llm), "acomplete", None)
        # CustomLLM's own acomplete just calls complete() and would block the event loop;
        # run such models in threads instead
        blocking = getattr(acomplete, "__qualname__", "").startswith("CustomLLM.")
        return (None if blocking else llm.acomplete), llm.complete
    if hasattr(llm, "invoke") or hasattr(llm, "ainvoke"):  # LangChain
        return getattr(llm, "ainvoke", None), getattr(llm, "invoke", None)
    if hasattr(llm, "acomplete") or hasattr(llm, "complete"):
        return getattr(llm, "acomplete", None), getattr(llm, "complete", None)
    if callable(llm):
        return None, llm
    raise InputError(f"llm={type(llm).__name__} is neither a LlamaIndex LLM (complete/"
                     "acomplete), a LangChain model (invoke/ainvoke) nor a callable")


def render_prompt(prompt, context: str, n: int) -> str:
    if callable(prompt):
        return str(prompt(context, n))
    # plain replacement, not str.format: prompts often contain JSON braces
    return prompt.replace("{context}", context).replace("{n}", str(n))


def _check_prompt(prompt) -> None:
    if callable(prompt):
        return
    if not isinstance(prompt, str) or "{context}" not in prompt:
        raise InputError("prompt must be a string containing {context} (and usually {n}), or "
                         "a callable (text, n) -> str")


# -- cache ------------------------------------------------------------------------------------
def _cache_key(rendered: str) -> str:
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()[:24]


def _read_cache(path: Path) -> dict[tuple[str, str], list[str]]:
    entries: dict[tuple[str, str], list[str]] = {}
    if not path.is_file():
        return entries
    with open(path, encoding="utf-8") as fh:
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
                warnings.warn(f"{path}:{lineno}: unreadable cache line skipped", stacklevel=3)
                continue
            if questions:
                entries[key] = questions
    return entries


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, disable: bool, **kwargs):
    """A tqdm bar, or a silent stand-in when progress is off or tqdm is not installed."""
    if disable:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, initial=initial, **kwargs)


# -- generation ---------------------------------------------------------------------------------
async def agenerate_questions(documents, llm, questions_per_chunk: int = 2, prompt=None, *,
                              max_concurrency: int = 4, max_retries: int = 3,
                              timeout: float = 60.0, backoff: float = 1.0, cache=None,
                              progress: bool = True):
    """The coroutine behind :func:`generate_questions`; returns ``(QuestionSet, report)``."""
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    _check_prompt(prompt)
    for name, value, low in (("questions_per_chunk", questions_per_chunk, 1),
                             ("max_concurrency", max_concurrency, 1),
                             ("max_retries", max_retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name}={value!r} must be an integer >= {low}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise InputError(f"timeout={timeout!r} must be a number of seconds > 0")
    acall, call = _callers(llm)
    chunks = as_chunks(documents)
    report = GenerationReport(n_chunks=len(chunks))
    cache_path = None if cache is None else Path(cache)
    cached = _read_cache(cache_path) if cache_path is not None else {}

    jobs = []  # (chunk id, rendered prompt, key)
    answers: dict[str, list[str]] = {}
    for chunk_id, text in chunks:
        if not text.strip():
            report.empty_chunks.append(chunk_id)
            continue
        rendered = render_prompt(prompt, text, questions_per_chunk)
        key = _cache_key(rendered)
        if (chunk_id, key) in cached:
            answers[chunk_id] = cached[(chunk_id, key)]
            report.from_cache += 1
        else:
            jobs.append((chunk_id, rendered, key))

    bar = _progress_bar(total=len(chunks) - len(report.empty_chunks), initial=report.from_cache,
                        disable=not progress, desc="questions", unit="chunk")
    semaphore = asyncio.Semaphore(max_concurrency)
    # enough threads that calls stuck past their timeout cannot starve new ones
    pool = ThreadPoolExecutor(max_workers=max_concurrency * (max_retries + 2))
    loop = asyncio.get_running_loop()
    cache_fh = None
    if cache_path is not None and jobs:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        half_line = False
        if cache_path.is_file() and cache_path.stat().st_size > 0:
            with open(cache_path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                half_line = fh.read(1) != b"\n"
        cache_fh = open(cache_path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        if half_line:
            # a killed run left half a line: end it, so new entries start on their own
            cache_fh.write("\n")

    async def ask(rendered: str) -> str:
        if acall is not None:
            return _answer_text(await acall(rendered))
        return _answer_text(await loop.run_in_executor(pool, call, rendered))

    async def one(chunk_id: str, rendered: str, key: str) -> None:
        error = "no attempt made"
        async with semaphore:
            for attempt in range(max_retries + 1):
                if attempt:
                    await asyncio.sleep(backoff * 2 ** (attempt - 1))
                report.calls += 1
                try:
                    answer = await asyncio.wait_for(ask(rendered), timeout)
                except asyncio.TimeoutError:
                    error = f"timed out after {timeout:g}s"
                    continue
                except Exception as exc:  # noqa: BLE001 - any client error is retried
                    error = f"{type(exc).__name__}: {exc}"
                    continue
                questions = parse_questions(answer)[:questions_per_chunk]
                if not questions:
                    error = f"no usable question in the answer {answer[:80]!r}"
                    continue
                answers[chunk_id] = questions
                report.generated += 1
                if cache_fh is not None:
                    row = {"chunk_id": chunk_id, "key": key, "questions": questions}
                    cache_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    cache_fh.flush()
                bar.update(1)
                return
        report.failed[chunk_id] = error
        bar.update(1)

    try:
        await asyncio.gather(*(one(*job) for job in jobs))
    finally:
        bar.close()
        pool.shutdown(wait=False, cancel_futures=True)
        if cache_fh is not None:
            cache_fh.close()

    if not answers:
        sample = "; ".join(f"{cid}: {err}" for cid, err in list(report.failed.items())[:3])
        raise GenerationError(f"the LLM returned nothing usable for any of the "
                              f"{len(chunks)} chunks ({sample}); check the model, the prompt "
                              "and the timeout")
    if report.failed:
        warnings.warn(f"no questions for {len(report.failed)} of {len(chunks)} chunks; see the "
                      "report (return_report=True)", stacklevel=3)
    return _assemble(chunks, answers, llm, report), report


def _assemble(chunks, answers, llm, report) -> QuestionSet:
    by_text: dict[str, Question] = {}
    model = type(llm).__name__
    for chunk_id, _ in chunks:
        for k, text in enumerate(answers.get(chunk_id, ())):
            key = normalize_text(text)
            if key in by_text:  # the same question for two chunks: both answer it
                by_text[key].relevant[chunk_id] = 1.0
                report.merged_duplicates += 1
                continue
            by_text[key] = Question(f"llm-{chunk_id}-{k}", text, {chunk_id: 1.0}, None,
                                    {"source": "synthetic", "generator": "llm",
                                     "chunk_id": chunk_id, "model": model})
    return QuestionSet(by_text.values())


def _run(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside a running loop (a notebook): run on a loop of our own in a thread
    with ThreadPoolExecutor(max_workers=1) as runner:
        return runner.submit(asyncio.run, coro).result()


def generate_questions(documents, llm=None, questions_per_chunk: int = 2, prompt=None, *,
                       max_concurrency: int = 4, max_retries: int = 3, timeout: float = 60.0,
                       backoff: float = 1.0, cache=None, progress: bool = True,
                       return_report: bool = False, **offline_options):
    """Synthetic training questions for ``documents`` (nodes, Documents, ``(id, text)`` pairs
    or ``{id: text}``).

    With ``llm=None`` the offline generator is used (:func:`offline_questions`; extra keyword
    arguments go to it) and no network is needed. Otherwise each chunk's prompt (``prompt``
    with ``{context}`` and ``{n}``, or a callable ``(text, n) -> str``) is sent to ``llm``.
    Returns a QuestionSet whose questions point at the chunk they came from; with
    ``return_report=True``, ``(QuestionSet, GenerationReport)``.
    """
    if llm is None:
        from .offline import offline_questions

        if prompt is not None or cache is not None:
            warnings.warn("llm=None uses the offline generator, which needs no prompt and no "
                          "cache; prompt= and cache= are ignored", stacklevel=2)
        qs = offline_questions(documents, questions_per_chunk, **offline_options)
        if return_report:
            n = len(as_chunks(documents))
            return qs, GenerationReport(n_chunks=n, generated=n)
        return qs
    if offline_options:
        raise InputError(f"unexpected arguments {sorted(offline_options)}; they only apply "
                         "to the offline generator (llm=None)")
    qs, report = _run(agenerate_questions(
        documents, llm, questions_per_chunk, prompt, max_concurrency=max_concurrency,
        max_retries=max_retries, timeout=timeout, backoff=backoff, cache=cache,
        progress=progress))
    return (qs, report) if return_report else qs
