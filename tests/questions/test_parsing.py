import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag.questions import DEFAULT_PROMPT, parse_questions
from nudge_rag.questions.parsing import read_answer, rejection
from nudge_rag.questions.synthetic import render_prompt

Q1 = "What limits the maximum lift of a slender delta wing?"
Q2 = "How does wall cooling change boundary layer transition at Mach 3?"


@pytest.mark.parametrize("answer", [
    f"1. {Q1}\n2. {Q2}",
    f"Sure! Here are two questions based on the passage:\n\n1) {Q1}\n2) {Q2}\n\nHope this helps!",
    f"```json\n[\"{Q1}\", \"{Q2}\"]\n```",
    f"```\n{{\"questions\": [\"{Q1}\", \"{Q2}\"]}}\n```",
    f'Here you go: [{{"question": "{Q1}", "answer": "vortex breakdown"}}, '
    f'{{"question": "{Q2}", "answer": "delays it"}}]',
    f"- **{Q1}**\n- {Q2}",
    f"* {Q1}\n* {Q2}",
    f"• {Q1}\n• {Q2}",
    f"Q1: {Q1}\nA1: Vortex breakdown over the wing.\nQ2: {Q2}\nA2: Cooling delays it.",
    f"Question 1: {Q1}\nQuestion 2: {Q2}",
    f"**1.** \"{Q1}\"\n**2.** “{Q2}”",
    f"{Q1} {Q2}",
    f"{Q1}\n\n{Q2}\n",
    f"1. What limits the maximum lift of a\n   slender delta wing?\n2. {Q2}",
    f"1. {Q1}\n2. {Q2}\n3. {Q1.upper()}",
])
def test_messy_shapes_give_the_two_questions(answer):
    assert parse_questions(answer) == [Q1, Q2]


@pytest.mark.parametrize("answer", [
    None, "", "   \n\n ", "I'm sorry, but I can't help with that request.",
    "Unfortunately the passage does not contain enough information.",
    "Here are the questions:", "[]", '{"questions": []}', "1. Why?\n2. OK?",
])
def test_nothing_usable(answer):
    assert parse_questions(answer) == []


def test_statements_without_question_marks_are_refused():
    # issue 15: small models answer with claims or keyword lists; they are not questions
    answer = "1. Vortex breakdown limits delta wing lift\n2. Wall cooling delays transition"
    assert parse_questions(answer) == []
    got = read_answer(answer)
    assert [reason for _, reason in got.rejected] == ["no question mark"] * 2
    # a question with a remark after it keeps the question
    assert parse_questions(f"1. {Q1} (asked about the lift)") == [Q1]


# what SmolLM2-135M-Instruct wrote for SciFact abstracts with the old default prompt
GENERIC = [
    "What is the scientific abstract about?",
    "What is the purpose of the passage?",
    "What does the passage say about the importance of DNA methylation in human biology?",
    "How does the article address the issue of efficiency in gene editing?",
    "What is the main topic of the text?",
    "What are the key findings?",
    "What does the study show?",
    "How does the passage answer the question asked?",
    "What is the purpose of this task?",
]


@pytest.mark.parametrize("question", GENERIC)
def test_generic_questions_are_refused(question):
    assert parse_questions(f"1. {question}\n2. {Q1}") == [Q1]
    assert rejection(question) == "generic"


@pytest.mark.parametrize("question", [
    "What is the purpose of Bayesian inference?",  # names its topic: kept
    "What is the cross section of a uranium nucleus?",
    "Does the main rotor of a helicopter stall first?",
    "What is photosynthesis used for?",
])
def test_questions_that_name_a_topic_are_kept(question):
    assert rejection(question) is None


def test_echoes_of_the_instruction_are_refused():
    instruction = render_prompt(DEFAULT_PROMPT, "", 2)
    echoes = ["Which questions name the topic so that it makes sense?",
              "Does each question name its topic in one line?",
              "What are two questions related to the topic of transcription?"]
    answer = "\n".join(f"{i}. {q}" for i, q in enumerate([*echoes, Q1, Q2], 1))
    got = read_answer(answer, instruction)
    assert got.questions == [Q1, Q2]
    assert [reason for _, reason in got.rejected] == ["echo", "echo", "echo"]
    assert parse_questions(answer) == [*echoes, Q1, Q2]  # without the instruction: kept


# questions as models write them: a capitalised word, then lower-case words, then "?"
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9)
_question = st.builds(lambda first, rest: " ".join([first.capitalize(), *rest]) + "?",
                      _word, st.lists(_word, min_size=3, max_size=12))


@given(st.lists(_question, min_size=1, max_size=6,
                unique_by=lambda q: q.casefold().rstrip("?")),
       st.sampled_from(["numbered", "paren", "bullets", "json", "fenced", "labels", "lines"]),
       st.booleans())
@settings(max_examples=150, deadline=None)
def test_any_list_in_any_shape_round_trips(questions, shape, chatty):
    body = {
        "numbered": "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1)),
        "paren": "\n".join(f"({i}) {q}" for i, q in enumerate(questions, 1)),
        "bullets": "\n".join(f"- **{q}**" for q in questions),
        "json": json.dumps({"questions": questions}),
        "fenced": "```json\n" + json.dumps(questions, indent=2) + "\n```",
        "labels": "\n".join(f"Q{i}: {q}\nA{i}: It depends." for i, q in enumerate(questions, 1)),
        "lines": "\n".join(questions),
    }[shape]
    answer = f"Sure! Here are {len(questions)} questions:\n\n{body}\n\nHope this helps!" \
        if chatty else body
    assert parse_questions(answer) == questions


@pytest.mark.parametrize("line", ["Error bars in the figure mean what?",
                                  "Sorry state of affairs causes what?",
                                  "Note taking improves recall how much?"])
def test_a_question_that_opens_like_a_refusal_is_kept(line):
    assert parse_questions(f"1. {line}") == [line]
