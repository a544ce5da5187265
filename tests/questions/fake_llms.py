"""Fake LLMs for the synthetic-question tests, one per framework.

Each fake answers from a :class:`Script`: it finds which chunk the prompt is about, then
follows that chunk's plan for the n-th time it is asked (``ok``, ``raise``, ``hang``,
``empty``, ``refuse``). ``ok`` answers come in the messy shapes real models produce: chatty
preambles, fenced JSON, bullets with bold markup, Q/A pairs, JSON objects, run-on lines.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter

import pytest

# a hung call waits this long unless the test releases it first (Script.release); tests
# time out far sooner, and release blocked threads afterwards so nothing lingers at exit
HANG_SECONDS = 60.0


def expected_questions(text: str) -> list[str]:
    """The two questions the fake asks about ``text`` (built from its longest words)."""
    words = sorted({w for w in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", text)},
                   key=lambda w: (-len(w), w))
    a, b, c, d = (words + ["topic"] * 4)[:4]
    return [f"What is known about {a} and {b}?", f"How does {c} affect {d}?"]


def messy(questions: list[str], shape: int) -> str:
    q1, q2 = questions
    shapes = [
        f"Sure! Here are 2 questions based on the passage:\n\n1. {q1}\n2. {q2}\n\n"
        "Let me know if you need more!",
        f'```json\n["{q1}", "{q2}"]\n```',
        f"- **{q1}**\n- {q2}",
        f"Q1: {q1}\nA1: The passage explains it in detail.\nQ2: {q2}\nA2: It is discussed.",
        f'{{"questions": [{{"question": "{q1}"}}, {{"question": "{q2}"}}]}}',
        f"{q1} {q2}",
        f"Here are the questions:\n1) {q1}\n2) {q2}\n3) {q1}",
    ]
    return shapes[shape % len(shapes)]


class Script:
    """What to do for each chunk, attempt by attempt. Thread-safe; counts every call."""

    def __init__(self, corpus: dict[str, str], plans: dict[str, list[str]] | None = None,
                 rendezvous: int = 0, hang_seconds: float = HANG_SECONDS):
        self.corpus = corpus
        self.plans = plans or {}
        # a blocking call cannot be cancelled, and nudge-rag waits for a timed-out one before
        # it asks again; tests of blocking models give their hangs an end
        self.hang_seconds = hang_seconds
        # async calls wait (up to 5 s) until this many calls have started, so a test can see
        # overlapping calls without relying on timing
        self.rendezvous = rendezvous
        self.calls: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.chunk_in_flight: Counter = Counter()
        self.max_chunk_in_flight = 0  # calls about the same chunk running at once
        self._lock = threading.Lock()
        self._released = threading.Event()

    def release(self) -> None:
        """Wake every call that is still hanging (threads of blocking fakes)."""
        self._released.set()

    def chunk_of(self, prompt: str) -> str:
        return next(cid for cid, text in self.corpus.items() if text in prompt)

    def begin(self, prompt: str) -> tuple[str, str]:
        cid = self.chunk_of(prompt)
        with self._lock:
            attempt = self.calls[cid]
            self.calls[cid] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.chunk_in_flight[cid] += 1
            self.max_chunk_in_flight = max(self.max_chunk_in_flight, self.chunk_in_flight[cid])
        plan = self.plans.get(cid, [])
        action = plan[attempt] if attempt < len(plan) else (plan[-1] if plan else "ok")
        return cid, action

    def end(self, cid: str) -> None:
        with self._lock:
            self.in_flight -= 1
            self.chunk_in_flight[cid] -= 1

    def answer(self, cid: str, action: str) -> str:
        if action == "raise":
            raise ConnectionError("503 Service Unavailable: upstream overloaded")
        if action == "empty":
            return ""
        if action == "refuse":
            return "I'm sorry, but I can't help with that request."
        index = list(self.corpus).index(cid)
        return messy(expected_questions(self.corpus[cid]), index)


def _sync_answer(script: Script, prompt: str) -> str:
    cid, action = script.begin(prompt)
    try:
        if action == "hang":
            script._released.wait(script.hang_seconds)
        return script.answer(cid, action)
    finally:
        script.end(cid)


async def _async_answer(script: Script, prompt: str) -> str:
    cid, action = script.begin(prompt)
    try:
        await asyncio.sleep(0.01)  # a network round trip, so calls overlap
        for _ in range(1000):
            if script.calls.total() >= script.rendezvous:
                break
            await asyncio.sleep(0.005)
        if action == "hang":
            await asyncio.sleep(HANG_SECONDS)
        return script.answer(cid, action)
    finally:
        script.end(cid)


def make_llama_llm(script: Script, native_async: bool = True):
    """A LlamaIndex ``CustomLLM``; with ``native_async=False`` it only implements the
    blocking ``complete`` (so nudge-rag must run it in threads)."""
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from pydantic import PrivateAttr

    class MessyLlamaLLM(CustomLLM):
        _script: Script = PrivateAttr()

        def __init__(self, script: Script):
            super().__init__()
            self._script = script

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="messy-fake")

        def complete(self, prompt: str, formatted: bool = False, **kwargs):
            return CompletionResponse(text=_sync_answer(self._script, prompt))

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            yield self.complete(prompt)

    class AsyncMessyLlamaLLM(MessyLlamaLLM):
        async def acomplete(self, prompt: str, formatted: bool = False, **kwargs):
            return CompletionResponse(text=await _async_answer(self._script, prompt))

    return (AsyncMessyLlamaLLM if native_async else MessyLlamaLLM)(script)


def make_langchain_chat(script: Script, **settings):
    """A LangChain ``BaseChatModel`` with sync and async generation; ``settings`` sets its
    ``model_name`` and ``temperature`` (which only the answer cache looks at)."""
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from pydantic import PrivateAttr

    class MessyChatModel(BaseChatModel):
        model_name: str = "messy-fake"
        temperature: float = 0.0
        _script: Script = PrivateAttr()

        def __init__(self, script: Script, **settings):
            super().__init__(**settings)
            self._script = script

        @property
        def _llm_type(self) -> str:
            return "messy-fake-chat"

        @staticmethod
        def _prompt(messages) -> str:
            return "\n".join(str(m.content) for m in messages)

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            text = _sync_answer(self._script, self._prompt(messages))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            text = await _async_answer(self._script, self._prompt(messages))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    return MessyChatModel(script, **settings)


class ParallelCallCrash(RuntimeError):
    """What llama.cpp does, more politely, when two threads call one model at once."""


def make_in_process_llm(script: Script):
    """A LlamaIndex ``CustomLLM`` that holds a torch module, as ``HuggingFaceLLM`` and
    ``LlamaCPP`` hold their model, and fails when called from two threads at once."""
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from pydantic import PrivateAttr

    class InProcessLLM(CustomLLM):
        _script: Script = PrivateAttr()
        _model: object = PrivateAttr()
        _busy: threading.Lock = PrivateAttr(default_factory=threading.Lock)

        def __init__(self, script: Script):
            super().__init__()
            self._script = script
            self._model = torch.nn.Linear(4, 4)

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="in-process-fake")

        def complete(self, prompt: str, formatted: bool = False, **kwargs):
            if not self._busy.acquire(blocking=False):
                raise ParallelCallCrash("two calls at once into one in-process model")
            try:
                time.sleep(0.05)  # generating takes a while, so parallel calls would overlap
                return CompletionResponse(text=_sync_answer(self._script, prompt))
            finally:
                self._busy.release()

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            yield self.complete(prompt)

    return InProcessLLM(script)
