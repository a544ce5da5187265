import pytest

from nudge_rag.questions import parse_questions

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


def test_statements_without_question_marks_are_kept():
    # some models write search-style statements or claims rather than questions
    answer = "1. Vortex breakdown limits delta wing lift\n2. Wall cooling delays transition"
    assert parse_questions(answer) == ["Vortex breakdown limits delta wing lift",
                                       "Wall cooling delays transition"]
