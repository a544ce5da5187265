"""Pull questions out of what an LLM actually answers.

Models asked for "a numbered list of questions" return JSON, fenced JSON, numbered or bulleted
lists, ``Q1:`` labels, bold markup, chatty preambles ("Sure! Here are two questions:"), answers
after the questions, or nothing. :func:`parse_questions` reads all of those and returns the
question texts, cleaned and de-duplicated, in the order given.

Small models also write things that parse as questions but teach NUDGE nothing, so these are
refused (:func:`rejection`): statements without a question mark; generic questions that name
no topic of their own ("What is the scientific abstract about?", "What is the purpose of the
passage?"), which would otherwise pull many unrelated records together; and echoes of the
instruction ("What questions would a person searching this collection ask?").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .normalize import STOP_WORDS, normalize_text

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_MARKER = re.compile(
    r"""^\s*(?:
        [-*•·–+]\s+                                  # bullets
      | \(?\d{1,3}\s*[.):\]]\s*                      # 1.  1)  (1)  1:
      | (?:q|question)\s*\d{0,3}\s*[.:)\-]\s*        # Q1:  Question 2 -  Q:
    )(.*)$""", re.IGNORECASE | re.VERBOSE)
_ANSWER = re.compile(r"^\s*(?:a|answer)\s*\d{0,3}\s*[.:)\-]\s*", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|here (?:are|is)|below (?:are|is)|the following|"
    r"i (?:have|hope|can)|note|these questions)\b", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^(?:i(?: am|'m)? (?:cannot|can't|can not|unable|sorry|not able)|sorry|as an ai|"
    r"unfortunately|error\b)", re.IGNORECASE)
# two questions run together on one line: "What is X? How does Y work?"
_RUN_ON = re.compile(r"(?<=\?)\s+(?=[A-Z0-9])")
_MARKUP = re.compile(r"(\*\*|__|`)")
_QUOTES = "\"'“”‘’«»"
_QA_KEYS = ("question", "query", "q", "text")
MIN_WORDS = 3

# "the passage", "this scientific abstract", "the given text": the question points at its source
# instead of naming a topic, so it only makes sense beside that one chunk
_SOURCE_REFERENCE = re.compile(
    r"\b(?:the|this|that|these|those|given|above|provided|following)\s+"
    r"(?:(?:given|above|provided|following|scientific|original|whole|entire|previous|current|"
    r"same|research|medical|news)\s+)?"
    r"(?:passages?|texts?|excerpts?|paragraphs?|abstracts?|articles?|documents?|authors?|"
    r"contexts?|snippets?|chunks?|papers?|study|studies|reading|extract|tasks?|prompts?)\b",
    re.IGNORECASE)
# words that ask about a text in general; a question made of these and function words alone
# ("What are the main findings?", "What is the key takeaway?") names no topic
_GENERIC_WORDS = frozenset("""
main key primary central overall general important importance significance purpose point
points idea ideas topic topics subject theme themes message summary summarize summarise
conclusion conclusions finding findings result results takeaway takeaways aim goal goals
discussed described mentioned presented explained stated said say says talk talks about
discuss discusses describe describes explain explains mean means meaning
information content contents question questions answer answers things thing something
passage text excerpt paragraph abstract article document author authors context study paper
""".split())
# a question whose words mostly come from the instruction echoes it
_ECHO_SHARE = 0.75


def _from_json(obj) -> list[str] | None:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, list):
        out = []
        for item in obj:
            found = _from_json(item)
            if found:
                out.extend(found)
        return out
    if isinstance(obj, dict):
        for key in _QA_KEYS + ("questions", "queries"):
            for k, v in obj.items():
                if k.casefold() == key:
                    return _from_json(v)
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) == 1:
            return _from_json(lists[0])
    return None


def _try_json(text: str) -> list[str] | None:
    candidates = [text]
    for open_ch, close_ch in (("[", "]"), ("{", "}")):
        start, end = text.find(open_ch), text.rfind(close_ch)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            parsed = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        found = _from_json(parsed)
        if found is not None:
            return found
    return None


def _clean(item: str) -> str:
    item = _MARKUP.sub("", item).strip()
    marker = _MARKER.match(item)  # "1. **Q1:** text" carries two markers
    if marker and marker.group(1).strip():
        item = marker.group(1).strip()
    return item.strip(_QUOTES + " \t").strip()


def _ends_item(line: str) -> bool:
    return _MARKUP.sub("", line).rstrip().rstrip(_QUOTES).endswith(("?", ".", "!"))


def _from_lines(text: str) -> list[str]:
    raw_lines = [line.rstrip() for line in text.splitlines()]
    lines = [line for line in raw_lines if line.strip()]
    if any(_MARKER.match(_MARKUP.sub("", line)) for line in lines):
        items: list[str] = []
        open_item = False
        for line in raw_lines:
            if not line.strip():
                open_item = False  # a blank line ends any wrapped item
            elif _ANSWER.match(line):
                open_item = False
            elif _MARKER.match(_MARKUP.sub("", line)):
                items.append(_MARKUP.sub("", line))
                open_item = not _ends_item(line)
            elif open_item and not _PREAMBLE.match(line.strip()):
                items[-1] += " " + line.strip()  # the item wrapped onto a second line
                open_item = not _ends_item(line)
        return items
    pieces = [piece for line in lines for piece in _RUN_ON.split(line)]
    questions = [piece for piece in pieces if piece.rstrip().endswith("?")]
    return questions or pieces


def _clean_question(item: str) -> str | None:
    """The item as a question: markup, list markers and quotes removed, anything after its
    last question mark cut off (answers, remarks); ``None`` for items that cannot be one."""
    question = _clean(item)
    if not question or _ANSWER.match(question) or question.endswith(":"):
        return None
    if "?" in question:
        question = question[:question.rindex("?") + 1].strip()
    return question


def _content_words(normalized: str) -> list[str]:
    return [w for w in normalized.split() if w not in STOP_WORDS and not w.isdigit()]


def _stem(word: str) -> str:
    """A plural or third-person "s" dropped, so "names" echoes "name"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") \
        else word


def instruction_words(instruction: str | None) -> frozenset[str]:
    """The content words of the instruction a model was given (the prompt without the
    chunk), against which :func:`rejection` recognises echoes."""
    if not instruction:
        return frozenset()
    return frozenset(_stem(w) for w in _content_words(normalize_text(instruction)))


def rejection(question: str, echo_words: frozenset[str] = frozenset()) -> str | None:
    """Why ``question`` is refused (``"no question mark"``, ``"too short"``, ``"generic"``,
    ``"echo"``), or ``None`` when it is a usable question."""
    if not question.rstrip(_QUOTES + " ").endswith("?"):
        return "no question mark"
    key = normalize_text(question)
    if len(key.split()) < MIN_WORDS:
        return "too short"
    content = _content_words(key)
    if _SOURCE_REFERENCE.search(question) or all(w in _GENERIC_WORDS for w in content):
        return "generic"
    if echo_words and content:
        stems = [_stem(w) for w in content]
        shared = sum(w in echo_words for w in stems)
        if shared >= 2 and shared >= _ECHO_SHARE * len(content):
            return "echo"
        if "question" in echo_words and "question" in stems:
            return "echo"  # asked for questions, it wrote about questions ("What are two ...")
    return None


@dataclass
class ParsedAnswer:
    """The questions found in one answer, and the candidates refused with the reason."""

    questions: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def _candidates(text: str) -> list[str]:
    fenced = _FENCE.findall(text)
    if fenced:
        text = "\n".join(fenced)
    raw = _try_json(text)
    return _from_lines(text) if raw is None else raw


def read_answer(answer, instruction: str | None = None) -> ParsedAnswer:
    """Every candidate in an LLM answer, sorted into usable questions (cleaned, in order, each
    once) and refusals. ``instruction`` is the prompt without the chunk, to catch echoes."""
    parsed = ParsedAnswer()
    text = "" if answer is None else str(answer).strip()
    if not text:
        return parsed
    echo_words = instruction_words(instruction)
    seen = set()
    for item in _candidates(text):
        if not isinstance(item, str):
            continue
        question = _clean_question(item)
        if question is None:
            continue
        # a line that ends in "?" is a question even when it opens like a refusal or a
        # preamble ("Error bars ...?", "Note-taking ...?")
        if not question.endswith("?") and (_REFUSAL.match(question)
                                           or _PREAMBLE.match(question)):
            continue
        key = normalize_text(question)
        if key in seen:
            continue
        seen.add(key)
        reason = rejection(question, echo_words)
        if reason is None:
            parsed.questions.append(question)
        else:
            parsed.rejected.append((question, reason))
    return parsed


def parse_questions(answer, instruction: str | None = None) -> list[str]:
    """Usable questions found in an LLM answer (``[]`` when there are none); ``instruction``
    (the prompt without the chunk) lets it refuse echoes of the instruction too."""
    return read_answer(answer, instruction).questions
