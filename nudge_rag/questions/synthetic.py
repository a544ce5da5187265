"""Synthetic questions from an LLM, or from the offline generator when there is none.

``generate_questions`` asks the LLM for ``questions_per_chunk`` questions per chunk, with at
most ``max_concurrency`` calls in flight (one at a time for a model that runs in this
process), a ``timeout`` per call and ``max_retries`` retries with exponential backoff. Errors,
time-outs and answers with no usable question are retried and, if they keep failing,
reported; they never reach the cache. Successful chunks are appended to the JSONL ``cache``
(see :mod:`answer_cache`) as they finish, so an interrupted run resumes without asking again.
Questions that more than :data:`SHARED_QUESTION_LIMIT` chunks produce are dropped as generic.

The parts: :mod:`llm_calls` calls the model, :mod:`answer_cache` keeps the answers,
:mod:`parsing` reads them; :class:`_Generation` below runs one generation with them.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import InputError, NudgeError
from .answer_cache import AnswerCache, cache_key
from .chunks import as_chunks
from .llm_calls import CallTimedOut, ModelCaller, describe, identity_key, model_identity
from .normalize import normalize_text
from .offline import offline_questions
from .parsing import read_answer
from .question import Question
from .question_set import QuestionSet

logger = logging.getLogger(__name__)

# Written for small local models as much as for large hosted ones: the instruction comes
# first and is short, and it asks for questions that name their topic, as a search does.
# Measured with SmolLM2-135M-Instruct on SciFact (docs/benchmarks.md, "Synthetic questions").
DEFAULT_PROMPT = """Write {n} questions about the topic of the following text. Each question \
names the topic, so that it makes sense without the text. Output only the questions, one per \
line.

Text: {context}"""

#: a question that more chunks than this produce names no topic of its own ("What is this
#: study about?"): it is dropped instead of pulling those chunks together
SHARED_QUESTION_LIMIT = 2
#: calls in flight at once when ``max_concurrency`` is not given, for a model served elsewhere
DEFAULT_CONCURRENCY = 4


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
    model: str = ""                 # the model, as named in logs and the cache
    in_process: bool = False        # the model runs in this process: calls one at a time
    max_in_flight: int = 0          # the most calls that ran at once
    stale_cache: int = 0            # chunks cached for another model, prompt or setting
    rejected: Counter = field(default_factory=Counter)  # refused candidates, by reason
    shared_dropped: dict[str, int] = field(default_factory=dict)  # question -> chunks

    def summary(self) -> str:
        return (f"{self.n_chunks} chunks: {self.from_cache} from cache, {self.generated} "
                f"generated in {self.calls} calls, {len(self.failed)} failed, "
                f"{len(self.empty_chunks)} empty; {self.merged_duplicates} duplicate "
                f"questions merged, {len(self.shared_dropped)} dropped as shared by more than "
                f"{SHARED_QUESTION_LIMIT} chunks; refused: {dict(self.rejected) or 'none'}")


# -- options ---------------------------------------------------------------------------------------
def render_prompt(prompt, context: str, n: int) -> str:
    if callable(prompt):
        return str(prompt(context, n))
    # plain replacement, not str.format: prompts often contain JSON braces
    return prompt.replace("{context}", context).replace("{n}", str(n))


@dataclass(frozen=True)
class _Options:
    questions_per_chunk: int
    max_concurrency: int | None
    max_retries: int
    timeout: float
    backoff: float

    def check(self, prompt) -> None:
        if not callable(prompt) and (not isinstance(prompt, str) or "{context}" not in prompt):
            raise InputError("prompt must be a string containing {context} (and usually {n}), "
                             "or a callable (text, n) -> str")
        for name, value, low in (("questions_per_chunk", self.questions_per_chunk, 1),
                                 ("max_concurrency", self.max_concurrency, 1),
                                 ("max_retries", self.max_retries, 0)):
            if name == "max_concurrency" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name}={value!r} must be an integer >= {low}")
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise InputError(f"timeout={self.timeout!r} must be a number of seconds > 0")


def _concurrency(asked: int | None, caller: ModelCaller, model: str) -> int:
    """Calls in flight at once: one for a model in this process, whatever was asked."""
    if not caller.in_process:
        return DEFAULT_CONCURRENCY if asked is None else asked
    if asked is not None and asked > 1:
        warnings.warn(f"llm={model} runs in this process, where parallel calls crash or "
                      f"stall it; its calls run one at a time (max_concurrency={asked} "
                      "ignored)", stacklevel=6)
    return 1


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


# -- one generation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    chunk_id: str
    prompt: str
    key: str
    instruction: str  # the prompt without the chunk, to recognise echoes of it


class _Generation:
    """One run: which chunks the cache answers, asking the model about the others (with
    retries), and what came back."""

    def __init__(self, llm, prompt, options: _Options, cache, report: GenerationReport):
        self.prompt, self.options, self.report = prompt, options, report
        self.caller = ModelCaller(llm)
        identity = model_identity(llm, self.caller.engine)
        self.model_key = identity_key(identity)
        report.model = describe(llm, identity)
        report.in_process = self.caller.in_process
        self.workers = _concurrency(options.max_concurrency, self.caller, report.model)
        self.cache = None if cache is None else AnswerCache(cache)
        self.answers: dict[str, list[str]] = {}

    def plan(self, chunks: list[tuple[str, str]]) -> list[_Job]:
        """The chunks still to ask about; cached ones are answered at once (and logged)."""
        jobs, stale = [], set()
        for chunk_id, text in chunks:
            if not text.strip():
                self.report.empty_chunks.append(chunk_id)
                continue
            rendered = render_prompt(self.prompt, text, self.options.questions_per_chunk)
            key = cache_key(rendered, self.model_key)
            cached = None if self.cache is None else self.cache.get(chunk_id, key)
            if cached is not None:
                self.answers[chunk_id] = cached
                self.report.from_cache += 1
                continue
            others = set() if self.cache is None else self.cache.others(chunk_id, key)
            stale |= others
            self.report.stale_cache += bool(others)
            jobs.append(_Job(chunk_id, rendered, key, rendered.replace(text, " ")))
        if self.cache is not None:
            logger.info("%s: reused the cached questions of %d of %d chunks for %s; asking "
                        "about %d%s", self.cache.path, self.report.from_cache, len(chunks),
                        self.report.model, len(jobs),
                        f" ({self.report.stale_cache} were cached for another model, prompt "
                        f"or setting: {', '.join(sorted(stale))})" if stale else "")
        return jobs

    async def run(self, jobs: list[_Job], progress: bool) -> None:
        self.caller.start(self.workers)
        semaphore = asyncio.Semaphore(self.workers)
        bar = _progress_bar(total=self.report.n_chunks - len(self.report.empty_chunks),
                            initial=self.report.from_cache, disable=not progress,
                            desc="questions", unit="chunk")

        async def one(job: _Job) -> None:
            async with semaphore:
                await self.ask(job)
            bar.update(1)

        try:
            await asyncio.gather(*(one(job) for job in jobs))
        finally:
            bar.close()
            await self.caller.close()  # no call outlives the run
            if self.cache is not None:
                self.cache.close()
        self.report.max_in_flight = self.caller.max_in_flight

    async def ask(self, job: _Job) -> None:
        """Ask about one chunk until an answer holds a usable question or retries run out."""
        options, error = self.options, "no attempt made"
        for attempt in range(options.max_retries + 1):
            if attempt:
                await asyncio.sleep(options.backoff * 2 ** (attempt - 1))
            self.report.calls += 1
            try:
                answer = await self.caller.ask(job.prompt, options.timeout)
            except CallTimedOut as exc:
                error = str(exc)
                await exc.finished()  # never a retry beside a call that still runs
                continue
            except Exception as exc:  # noqa: BLE001 - any client error is retried
                error = f"{type(exc).__name__}: {exc}"
                continue
            parsed = read_answer(answer, job.instruction)
            self.report.rejected.update(reason for _, reason in parsed.rejected)
            questions = parsed.questions[:options.questions_per_chunk]
            if not questions:
                error = f"no usable question in the answer {answer[:80]!r}"
                continue
            self.answers[job.chunk_id] = questions
            self.report.generated += 1
            if self.cache is not None:
                self.cache.add(job.chunk_id, job.key, questions, self.report.model)
            return
        self.report.failed[job.chunk_id] = error


async def agenerate_questions(documents, llm, questions_per_chunk: int = 2, prompt=None, *,
                              max_concurrency: int | None = None, max_retries: int = 3,
                              timeout: float = 60.0, backoff: float = 1.0, cache=None,
                              progress: bool = True):
    """The coroutine behind :func:`generate_questions`; returns ``(QuestionSet, report)``."""
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    options = _Options(questions_per_chunk, max_concurrency, max_retries, timeout, backoff)
    options.check(prompt)
    chunks = as_chunks(documents)
    report = GenerationReport(n_chunks=len(chunks))
    generation = _Generation(llm, prompt, options, cache, report)
    await generation.run(generation.plan(chunks), progress)
    if not generation.answers:
        sample = "; ".join(f"{cid}: {err}" for cid, err in list(report.failed.items())[:3])
        raise GenerationError(f"the LLM returned nothing usable for any of the "
                              f"{len(chunks)} chunks ({sample}); check the model, the prompt "
                              "and the timeout")
    if report.failed:
        warnings.warn(f"no questions for {len(report.failed)} of {len(chunks)} chunks; see the "
                      "report (return_report=True)", stacklevel=3)
    return assemble_questions(chunks, generation.answers, report), report


def assemble_questions(chunks, answers: dict[str, list[str]],
                       report: GenerationReport) -> QuestionSet:
    """One question per distinct text, relevant to every chunk (at most
    :data:`SHARED_QUESTION_LIMIT`) that produced it; a text more chunks produced is dropped."""
    sources: dict[str, list[tuple[str, int, str]]] = {}
    for chunk_id, _ in chunks:
        for k, text in enumerate(answers.get(chunk_id, ())):
            sources.setdefault(normalize_text(text), []).append((chunk_id, k, text))
    questions = []
    for found in sources.values():
        chunk_ids = list(dict.fromkeys(cid for cid, _, _ in found))
        first_chunk, k, text = found[0]
        if len(chunk_ids) > SHARED_QUESTION_LIMIT:
            report.shared_dropped[text] = len(chunk_ids)
            continue
        report.merged_duplicates += len(found) - 1
        questions.append(Question(f"llm-{first_chunk}-{k}", text,
                                  {cid: 1.0 for cid in chunk_ids}, None,
                                  {"source": "synthetic", "generator": "llm",
                                   "chunk_id": first_chunk, "model": report.model}))
    if not questions:
        raise GenerationError(f"every question the LLM wrote was written for more than "
                              f"{SHARED_QUESTION_LIMIT} chunks (e.g. "
                              f"{next(iter(report.shared_dropped))!r}), so none names a topic; "
                              "ask for questions that name what the chunk is about")
    return QuestionSet(questions)


def _run(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside a running loop (a notebook): run on a loop of our own in a thread
    with ThreadPoolExecutor(max_workers=1) as runner:
        return runner.submit(asyncio.run, coro).result()


def generate_questions(documents, llm=None, questions_per_chunk: int = 2, prompt=None, *,
                       max_concurrency: int | None = None, max_retries: int = 3,
                       timeout: float = 60.0, backoff: float = 1.0, cache=None,
                       progress: bool = True, return_report: bool = False, **offline_options):
    """Synthetic training questions for ``documents`` (nodes, Documents, ``(id, text)`` pairs
    or ``{id: text}``).

    With ``llm=None`` the offline generator is used (:func:`offline_questions`; extra keyword
    arguments go to it) and no network is needed. Otherwise each chunk's prompt (``prompt``
    with ``{context}`` and ``{n}``, or a callable ``(text, n) -> str``) is sent to ``llm``.
    ``max_concurrency`` defaults to 4 calls at once, and is always 1 for a model that runs in
    this process (llama.cpp, transformers, ...). Returns a QuestionSet whose questions point
    at the chunk they came from; with ``return_report=True``, ``(QuestionSet,
    GenerationReport)``.
    """
    if llm is None:
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
