"""Talking to one LLM: how to call it, what it is (for the answer cache), and when its calls
must not overlap.

LLMs are recognised by their methods: LlamaIndex (``complete``/``acomplete``, the answer's
``.text``), LangChain chat models and LLMs (``invoke``/``ainvoke``, the answer's ``.content``
or the string itself), or any callable ``prompt -> str``.

A model that runs inside this process (llama.cpp, transformers, ...) is not safe to call from
two threads at once: llama.cpp crashes, and a transformers model only slows down. Such a model
is recognised by what it holds (:func:`find_engine`) and called one call at a time, under a
lock that every caller of that model shares. A blocking call that times out cannot be stopped,
so :class:`ModelCaller` waits for it to return before the same chunk is asked again, and before
the run ends: no call ever runs beside a timed-out one, and none outlives the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext

from ..errors import InputError

# libraries whose objects run a model in this process
IN_PROCESS_ENGINES = frozenset({
    "llama_cpp", "torch", "transformers", "ctransformers", "gpt4all", "vllm", "mlx", "mlx_lm",
    "onnxruntime", "optimum", "exllamav2", "llamafile",
})
_SEARCH_DEPTH = 3
_SEARCH_BUDGET = 400
_PRIMITIVES = (str, bytes, int, float, bool, type(None))
# fields that say nothing about what the model answers, or hold secrets
_NOT_SETTINGS = re.compile(
    r"^_|api_key|secret|password|credential|token$|auth|callback|verbose|^tags$|^metadata$|"
    r"^cache$|client$|timeout|max_retries|streaming|rate_limiter|output_parser|"
    r"pydantic_program_mode|num_workers", re.IGNORECASE)


# -- what the answer object holds ------------------------------------------------------------------
def answer_text(response) -> str:
    """The text of an answer from any of the supported frameworks."""
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


def callers(llm):
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


# -- does it run here? -----------------------------------------------------------------------------
def _children(obj):
    """What ``obj`` holds: attributes (pydantic private ones too), closure cells, the owner
    of a bound method, the function and arguments of a partial, small containers' items."""
    if isinstance(obj, dict):
        return list(obj.values())[:20]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)[:20]
    found = []
    for name in ("__self__", "func", "__wrapped__"):
        value = getattr(obj, name, None) if callable(obj) else None
        if value is not None and not isinstance(value, _PRIMITIVES):
            found.append(value)
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    found.extend(getattr(obj, "__dict__", {}).values() if hasattr(obj, "__dict__") else ())
    private = getattr(obj, "__pydantic_private__", None)
    if isinstance(private, dict):
        found.extend(private.values())
    return found


def find_engine(llm):
    """The first object reachable from ``llm`` (itself, then what it holds, a few levels
    deep) whose class comes from a library that runs a model in this process; ``None`` for
    models served elsewhere (an API, a server) as far as can be seen."""
    queue = deque([(llm, 0)])
    seen: set[int] = set()
    while queue and len(seen) < _SEARCH_BUDGET:
        obj, depth = queue.popleft()
        if isinstance(obj, _PRIMITIVES) or id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        if type(obj).__module__.split(".")[0] in IN_PROCESS_ENGINES:
            return obj
        if depth < _SEARCH_DEPTH:
            queue.extend((child, depth + 1) for child in _children(obj))
    return None


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(engine) -> threading.Lock:
    """The lock every caller of this in-process model shares (held by the engine weakly)."""
    with _LOCKS_GUARD:
        try:
            lock = _LOCKS.get(engine)
            if lock is None:
                lock = _LOCKS[engine] = threading.Lock()
            return lock
        except TypeError:  # neither hashable nor weakly referable: a lock for this run only
            return threading.Lock()


# -- what is it, for the cache ---------------------------------------------------------------------
def _setting(value):
    """``value`` as JSON-able data, or ``None`` when it says nothing stable about the model."""
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PRIMITIVES) for v in value):
        return [v if not isinstance(v, bytes) else v.hex() for v in value]
    if isinstance(value, dict) and all(isinstance(v, _PRIMITIVES) for v in value.values()):
        return {str(k): v for k, v in value.items() if not isinstance(v, bytes)}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return None


def _settings(obj) -> dict:
    fields = dict(getattr(obj, "__dict__", {}) or {})
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            fields[f"closure{len(fields)}"] = cell.cell_contents
        except ValueError:
            pass
    out = {}
    for name, value in sorted(fields.items()):
        if _NOT_SETTINGS.search(str(name)):
            continue
        kept = _setting(value)
        if kept is not None:
            out[str(name)] = kept
    return out


def _engine_identity(engine) -> dict:
    ident = {"class": f"{type(engine).__module__}.{type(engine).__qualname__}",
             **_settings(engine)}
    config = getattr(engine, "config", None)
    if config is not None and hasattr(config, "to_json_string"):  # a transformers model
        ident["config"] = hashlib.sha256(config.to_json_string().encode()).hexdigest()[:16]
    parameters = getattr(engine, "parameters", None)
    if callable(parameters):  # a torch module: its size and a checksum of its first weights
        try:
            first = next(iter(parameters()), None)
            ident["parameters"] = sum(p.numel() for p in parameters())
            ident["checksum"] = None if first is None else float(first.detach().float().sum())
        except Exception:  # noqa: BLE001 - an identity is best effort, never a failure
            pass
    return ident


def model_identity(llm, engine=None) -> dict:
    """What the model is, as far as its object tells: its class, its settings (model name or
    path, temperature, token limits, ...; secrets and plumbing left out) and, for a model in
    this process, the engine's class, configuration and weights' checksum."""
    kind = type(llm)
    if callable(llm) and hasattr(llm, "__qualname__") and not hasattr(kind, "model_fields"):
        name = f"{getattr(llm, '__module__', '')}.{llm.__qualname__}"  # a function
    else:
        name = f"{kind.__module__}.{kind.__qualname__}"
    ident = {"class": name, "settings": _settings(llm)}
    if engine is not None:
        ident["engine"] = _engine_identity(engine)
    return ident


def describe(llm, identity: dict) -> str:
    """A short name for logs: the class and the model name or path when there is one."""
    settings = identity.get("settings", {})
    model = next((settings[k] for k in ("model_name", "model", "model_path", "model_id")
                  if isinstance(settings.get(k), str)), None)
    engine = identity.get("engine", {})
    model = model or engine.get("model_path") or engine.get("name_or_path")
    return type(llm).__name__ + (f" ({model})" if model else "")


def identity_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


# -- calling ---------------------------------------------------------------------------------------
def _retrieved(future: asyncio.Future) -> None:
    """Mark the outcome of a call nobody awaits any more as seen (no "never retrieved" log)."""
    if not future.cancelled():
        future.exception()


class CallTimedOut(Exception):
    """A call ran past its timeout; ``await finished()`` waits until it has really ended."""

    def __init__(self, timeout: float, still_running: Future | None):
        super().__init__(f"timed out after {timeout:g}s")
        self.still_running = still_running

    async def finished(self) -> None:
        if self.still_running is not None:
            await asyncio.wait([asyncio.wrap_future(self.still_running)])


class ModelCaller:
    """Calls one LLM with a prompt and returns the answer's text.

    Native async calls are awaited and cancelled at the timeout. Blocking calls run in worker
    threads; one that times out raises :class:`CallTimedOut`, whose ``finished()`` the caller
    awaits before asking again. A model in this process is always called through its blocking
    method, in a thread, under the model's lock. ``max_in_flight`` records the most calls that
    ever ran at once.
    """

    def __init__(self, llm):
        self.acall, self.call = callers(llm)
        self.engine = find_engine(llm)
        self.in_process = self.engine is not None
        if self.in_process and self.call is not None:
            self.acall = None  # its async path may hide threads of its own
        self.lock = model_lock(self.engine) if self.in_process else nullcontext()
        self.pool: ThreadPoolExecutor | None = None
        self.pending: set[Future] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self._count = threading.Lock()

    def start(self, workers: int) -> None:
        """Threads for blocking calls: as many as may run at once."""
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nudge-llm")

    def _started(self) -> None:
        with self._count:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _ended(self) -> None:
        with self._count:
            self.in_flight -= 1

    def _blocking(self, prompt: str):
        with self.lock:
            self._started()
            try:
                return self.call(prompt)
            finally:
                self._ended()

    async def _native(self, prompt: str):
        self._started()
        try:
            return await self.acall(prompt)
        finally:
            self._ended()

    async def ask(self, prompt: str, timeout: float) -> str:
        if self.acall is not None:
            try:
                return answer_text(await asyncio.wait_for(self._native(prompt), timeout))
            except asyncio.TimeoutError:
                raise CallTimedOut(timeout, None) from None
        future = self.pool.submit(self._blocking, prompt)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        try:
            # shielded: timing out must not cancel a call that has not started yet either,
            # or finished() would wait on a call that never runs
            inner = asyncio.wrap_future(future)
            inner.add_done_callback(_retrieved)
            return answer_text(await asyncio.wait_for(asyncio.shield(inner), timeout))
        except asyncio.TimeoutError:
            raise CallTimedOut(timeout, future) from None

    async def close(self) -> None:
        """Wait for every call still running (timed out ones), then free the threads."""
        if self.pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self.pending)])
        if self.pool is not None:
            self.pool.shutdown(wait=False)
