import json
import warnings

import pytest

from nudge_rag.errors import InputError
from nudge_rag.questions import GenerationError, generate_questions

from .fake_llms import (
    Script,
    expected_questions,
    make_in_process_llm,
    make_langchain_chat,
    make_llama_llm,
)

# real Cranfield abstracts (shortened), the kind of chunk a RAG index holds
CHUNKS = {
    "c0": "An experimental study of a wing in a propeller slipstream was made in order to "
          "determine the spanwise distribution of the lift increase due to slipstream.",
    "c1": "The boundary-layer equations are presented for steady incompressible flow with no "
          "pressure gradient past a flat plate in a simple shear flow.",
    "c2": "Approximate solutions are obtained for the laminar heat transfer to a blunt nose "
          "cone in hypersonic flow, including the stagnation region.",
    "c3": "Panel flutter of thin skin panels was measured in a supersonic wind tunnel; the "
          "flutter boundary depends on dynamic pressure and aspect ratio.",
    "c4": "The buckling of thin cylindrical shells under axial compression is highly "
          "sensitive to initial imperfections of the shell geometry.",
    "c5": "Shock wave and boundary layer interaction ahead of a compression corner causes "
          "separation whose extent grows with the Mach number.",
    "c6": "Slender wing theory predicts the lift distribution of delta wings at small "
          "incidence, and vortex breakdown limits the maximum lift.",
}
# c1 fails once, c2 hangs past the timeout once, c4 always answers nothing, c5 always refuses
PLANS = {"c1": ["raise", "ok"], "c2": ["hang", "ok"], "c4": ["empty"], "c5": ["refuse"]}
# the timeout only has to separate a hung call (60 s) from a normal one (~10 ms), with room
# for a loaded machine; tests never depend on how long anything takes
FAST = {"timeout": 2.0, "backoff": 0.01, "max_retries": 2, "progress": False}
FRAMEWORKS = {
    "llama-async": lambda s: make_llama_llm(s),
    "llama-blocking": lambda s: make_llama_llm(s, native_async=False),
    "langchain": make_langchain_chat,
}


def _run(make, script, **kwargs):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            qs, report = generate_questions(CHUNKS, llm=make(script), return_report=True,
                                            **{**FAST, **kwargs})
    finally:
        script.release()
    return qs, report, caught


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_messy_failing_hanging_llms(framework):
    # a blocking call cannot be cancelled: its hang ends after 4 s, past the 2 s timeout
    script = Script(CHUNKS, PLANS, hang_seconds=4.0)
    qs, report, caught = _run(FRAMEWORKS[framework], script)
    good = ["c0", "c1", "c2", "c3", "c6"]
    for cid in good:
        got = [q.text for q in qs if q.metadata["chunk_id"] == cid]
        assert got == expected_questions(CHUNKS[cid])
    assert all(q.relevant == {q.metadata["chunk_id"]: 1.0} for q in qs)
    assert all(q.source == "synthetic" and q.metadata["generator"] == "llm" for q in qs)
    assert set(report.failed) == {"c4", "c5"}
    assert "no usable question" in report.failed["c4"]
    assert report.generated == 5 and report.from_cache == 0
    # one retry each for the error and the hang; 3 attempts for the hopeless chunks
    assert script.calls == {"c0": 1, "c1": 2, "c2": 2, "c3": 1, "c4": 3, "c5": 3, "c6": 1}
    assert report.calls == sum(script.calls.values())
    assert any("no questions for 2 of 7 chunks" in str(w.message) for w in caught)
    # c2's retry never ran beside its timed-out call, and no call outlived the run
    assert script.max_chunk_in_flight == 1 and script.in_flight == 0


@pytest.mark.parametrize("framework", ["llama-async", "langchain"])
def test_concurrency_is_bounded(framework):
    # the first calls wait until the limit is reached; an unbounded run would start all 7
    script = Script(CHUNKS, rendezvous=2)
    _run(FRAMEWORKS[framework], script, max_concurrency=2)
    assert script.max_in_flight == 2
    script = Script(CHUNKS, rendezvous=4)
    _run(FRAMEWORKS[framework], script, max_concurrency=4)
    assert script.max_in_flight == 4
    script = Script(CHUNKS)
    _run(FRAMEWORKS[framework], script, max_concurrency=1)
    assert script.max_in_flight == 1


def test_cache_resumes_without_asking_again(tmp_path):
    cache = tmp_path / "cache" / "questions.jsonl"
    first_script = Script(CHUNKS, PLANS)
    first, report, _ = _run(FRAMEWORKS["langchain"], first_script, cache=cache)
    lines = [json.loads(x) for x in cache.read_text(encoding="utf-8").splitlines()]
    # only successful chunks were written, failures never
    assert sorted(x["chunk_id"] for x in lines) == ["c0", "c1", "c2", "c3", "c6"]
    # the second run talks to the same model, which now answers everything
    second_script = Script(CHUNKS)
    second, report, _ = _run(FRAMEWORKS["langchain"], second_script, cache=cache)
    assert report.from_cache == 5 and report.generated == 2
    assert set(second_script.calls) == {"c4", "c5"}
    assert [t for t in second.texts if t in first.texts] == first.texts
    assert len(second) == len(first) + 4
    # a third run asks nothing at all
    third_script = Script(CHUNKS)
    third, report, _ = _run(FRAMEWORKS["langchain"], third_script, cache=cache)
    assert not third_script.calls and third.texts == second.texts


def test_cache_survives_a_killed_run_and_keys_on_the_prompt(tmp_path):
    cache = tmp_path / "q.jsonl"
    _run(FRAMEWORKS["langchain"], Script(CHUNKS), cache=cache)
    text = cache.read_text(encoding="utf-8")
    cache.write_text(text + '{"chunk_id": "c9", "key": "ab', encoding="utf-8")  # cut mid-line
    script = Script(CHUNKS)
    with pytest.warns(UserWarning, match="unreadable cache line"):
        qs, report = generate_questions(CHUNKS, llm=make_langchain_chat(script), cache=cache,
                                        return_report=True, **FAST)
    assert report.from_cache == 7 and not script.calls
    # a different prompt is a different question to the model: nothing is reused
    script = Script(CHUNKS)
    other_prompt = "Write {n} quiz questions about:\n{context}"
    with pytest.warns(UserWarning, match="unreadable cache line"):
        generate_questions(CHUNKS, llm=make_langchain_chat(script), cache=cache,
                           prompt=other_prompt, **FAST)
    assert sum(script.calls.values()) == 7
    # the entries appended after the broken line are intact and reused
    script = Script(CHUNKS)
    with pytest.warns(UserWarning, match="unreadable cache line"):
        generate_questions(CHUNKS, llm=make_langchain_chat(script), cache=cache,
                           prompt=other_prompt, **FAST)
    assert not script.calls


def test_all_failures_raise_and_write_nothing(tmp_path):
    cache = tmp_path / "q.jsonl"
    script = Script(CHUNKS, {cid: ["raise"] for cid in CHUNKS})
    with pytest.raises(GenerationError, match="nothing usable for any of the 7 chunks.*503"):
        generate_questions(CHUNKS, llm=make_langchain_chat(script), cache=cache, **FAST)
    assert not cache.exists() or cache.read_text(encoding="utf-8") == ""
    hanging = Script(CHUNKS, {cid: ["hang"] for cid in CHUNKS})
    with pytest.raises(GenerationError, match="timed out after 1s"):
        generate_questions(CHUNKS, llm=make_llama_llm(hanging), **{**FAST, "timeout": 1.0,
                                                                    "max_retries": 0})


def test_prompt_callable_progress_bar_and_plain_callables(capsys):
    seen = []

    def my_prompt(text, n):
        seen.append(n)
        return f"Give {n} questions, numbered.\n{text}"

    script = Script(CHUNKS)
    qs = generate_questions(CHUNKS, llm=make_langchain_chat(script), questions_per_chunk=1,
                            prompt=my_prompt, timeout=5, progress=True)
    assert seen == [1] * 7 and len(qs) == 7
    assert "questions" in capsys.readouterr().err  # tqdm writes to stderr

    def two_chunks_share(prompt):  # a plain callable
        same = "What is the lift increase in a propeller slipstream?"
        own = expected_questions(next(t for t in CHUNKS.values() if t in prompt))[0]
        shared = CHUNKS["c0"] in prompt or CHUNKS["c6"] in prompt
        return f"1. {same if shared else own}"

    qs = generate_questions(CHUNKS, llm=two_chunks_share, progress=False)
    # the same question for two chunks: one question, relevant to both of them
    assert len(qs) == 6
    assert [q.relevant for q in qs if "slipstream" in q.text] == [{"c0": 1.0, "c6": 1.0}]


def test_bad_arguments():
    llm = make_langchain_chat(Script(CHUNKS))
    with pytest.raises(InputError, match="prompt must be a string containing"):
        generate_questions(CHUNKS, llm=llm, prompt="Write questions.")
    with pytest.raises(InputError, match="max_concurrency=0"):
        generate_questions(CHUNKS, llm=llm, max_concurrency=0)
    with pytest.raises(InputError, match="neither a LlamaIndex LLM"):
        generate_questions(CHUNKS, llm=object())
    with pytest.raises(InputError, match=r"unexpected arguments \['style'\]"):
        generate_questions(CHUNKS, llm=llm, style="keywords")


# -- issue 15: what a real, local LLM showed that fake ones did not --------------------------------
def test_an_in_process_model_is_called_one_call_at_a_time():
    # llama.cpp crashed under the default of 4 parallel calls; this fake fails the same way
    script = Script(CHUNKS)
    llm = make_in_process_llm(script)
    with pytest.warns(UserWarning, match="runs in this process.*one at a time"):
        qs, report = generate_questions(CHUNKS, llm=llm, max_concurrency=4, return_report=True,
                                        **FAST)
    assert report.in_process and report.max_in_flight == 1
    assert script.calls == {cid: 1 for cid in CHUNKS}  # no crash, so no retry
    assert len(qs) == 14 and not report.failed
    # without max_concurrency the default for it is one call at a time, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = generate_questions(CHUNKS, llm=make_in_process_llm(Script(CHUNKS)),
                                       return_report=True, **FAST)
    assert report.max_in_flight == 1


def test_a_retry_never_starts_beside_a_timed_out_call():
    # the call about c1 hangs for 3 s, past the 1 s timeout, in a thread that cannot be
    # stopped; its retry waits for it, and so does the end of the run
    script = Script(CHUNKS, {"c1": ["hang", "ok"]}, hang_seconds=3.0)
    qs, report = generate_questions(CHUNKS, llm=make_in_process_llm(script),
                                    return_report=True, **{**FAST, "timeout": 1.0})
    assert script.calls["c1"] == 2 and "c1" not in report.failed
    assert script.max_chunk_in_flight == 1 and report.max_in_flight == 1
    assert script.in_flight == 0


def test_the_cache_is_keyed_on_the_model_and_its_settings(tmp_path, caplog):
    cache = tmp_path / "q.jsonl"
    _run(lambda s: make_langchain_chat(s, model_name="misconfigured"), Script(CHUNKS),
         cache=cache)
    # the fixed model asks again instead of reusing the old model's answers, and says why
    script = Script(CHUNKS)
    with caplog.at_level("INFO", logger="nudge_rag.questions.synthetic"):
        _, report, _ = _run(lambda s: make_langchain_chat(s, model_name="fixed"), script,
                            cache=cache)
    assert sum(script.calls.values()) == 7 and report.from_cache == 0
    assert report.stale_cache == 7
    assert "reused the cached questions of 0 of 7 chunks" in caplog.text
    assert "misconfigured" in caplog.text
    # another generation setting is another model too
    script = Script(CHUNKS)
    _run(lambda s: make_langchain_chat(s, model_name="fixed", temperature=0.7), script,
         cache=cache)
    assert sum(script.calls.values()) == 7
    # the same model and settings again: everything is reused, and the log says so
    script = Script(CHUNKS)
    caplog.clear()
    with caplog.at_level("INFO", logger="nudge_rag.questions.synthetic"):
        _, report, _ = _run(lambda s: make_langchain_chat(s, model_name="fixed"), script,
                            cache=cache)
    assert not script.calls and report.from_cache == 7
    assert "reused the cached questions of 7 of 7 chunks" in caplog.text


def test_a_question_many_chunks_produce_is_dropped():
    # "What is the scientific abstract about?" pointed at 11 SciFact abstracts
    def same_for_all(prompt):
        own = expected_questions(next(t for t in CHUNKS.values() if t in prompt))[0]
        return f"1. Which wind tunnel measured these results?\n2. {own}"

    qs, report = generate_questions(CHUNKS, llm=same_for_all, progress=False,
                                    return_report=True)
    assert report.shared_dropped == {"Which wind tunnel measured these results?": 7}
    assert len(qs) == 7 and all(len(q.relevant) == 1 for q in qs)
    with pytest.raises(GenerationError, match="written for more than 2 chunks"):
        generate_questions(CHUNKS, llm=lambda p: "1. Which wind tunnel measured these?",
                           progress=False)


def test_generic_answers_are_refused_and_counted():
    def small_model(prompt):
        chunk = next(text for text in CHUNKS.values() if text in prompt)
        return ("1. What is the purpose of the passage?\n2. What is the scientific abstract "
                f"about?\n3. The passage is about wings.\n4. {expected_questions(chunk)[1]}")

    qs, report = generate_questions(CHUNKS, llm=small_model, progress=False,
                                    return_report=True)
    assert [q.text for q in qs] == [expected_questions(t)[1] for t in CHUNKS.values()]
    assert report.rejected == {"generic": 14, "no question mark": 7}


def test_in_process_models_are_recognised_by_what_they_hold():
    from nudge_rag.questions.llm_calls import find_engine

    # what ChatLlamaCpp holds in .client, and LlamaCPP in ._model: a llama_cpp.Llama
    Llama = type("Llama", (), {"__module__": "llama_cpp.llama"})
    engine = Llama()

    class ChatModel:  # a wrapper one level above, as ChatHuggingFace wraps a pipeline
        def __init__(self):
            self.client = engine
            self.temperature = 0.2

    class Wrapper:
        def __init__(self):
            self.llm = ChatModel()

    assert find_engine(ChatModel()) is engine
    assert find_engine(Wrapper()) is engine
    assert find_engine(lambda prompt: str(engine) + prompt) is engine  # held in a closure
    assert find_engine(make_in_process_llm(Script(CHUNKS))) is not None  # a private attribute
    # models served elsewhere hold no engine
    assert find_engine(make_langchain_chat(Script(CHUNKS))) is None
    assert find_engine(make_llama_llm(Script(CHUNKS))) is None
    assert find_engine(lambda prompt: "1. What is lift?") is None
