"""Pull questions out of what an LLM actually answers.

Models asked for "a numbered list of questions" return JSON, fenced JSON, numbered or bulleted
lists, ``Q1:`` labels, bold markup, chatty preambles ("Sure! Here are two questions:"), answers
after the questions, or nothing. :func:`parse_questions` reads all of those and returns the
question texts, cleaned and de-duplicated, in the order given.
"""

from __future__ import annotations

import json
import re

from .normalize import normalize_text

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


def parse_questions(answer) -> list[str]:
    """Questions found in an LLM answer (``[]`` when there are none)."""
    if answer is None:
        return []
    text = str(answer).strip()
    if not text:
        return []
    fenced = _FENCE.findall(text)
    if fenced:
        text = "\n".join(fenced)
    raw = _try_json(text)
    if raw is None:
        raw = _from_lines(text)
    out, seen = [], set()
    for item in raw:
        if not isinstance(item, str):
            continue
        question = _clean(item)
        if not question or _ANSWER.match(question):
            continue
        # a line that ends in "?" is a question even when it opens like a refusal or a
        # preamble ("Error bars ...?", "Note-taking ...?")
        asks = question.endswith("?")
        if question.endswith(":") or (not asks and (_REFUSAL.match(question)
                                                    or _PREAMBLE.match(question))):
            continue
        key = normalize_text(question)
        if len(key.split()) < MIN_WORDS or key in seen:
            continue
        seen.add(key)
        out.append(question)
    return out
