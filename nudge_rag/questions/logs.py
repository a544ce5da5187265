"""Turn production query logs into a graded QuestionSet (rules in docs/questions.md).

Each log row holds a query, the ids that were shown (retrieved), the ids that were clicked or
accepted, optional explicit feedback and a timestamp. Rows are grouped by normalised query
text; within a group, for each record id:

* ``ups``/``downs`` count thumbs-up/down that targeted the id. Feedback on a whole answer
  targets the row's clicked ids, or its shown ids when nothing was clicked; feedback given as
  ``{id: up/down}`` targets those ids.
* net negative (``downs > ups``): not relevant; kept in ``metadata["negative"]``.
* clicked and net positive (``ups > downs``): grade 2.
* clicked, or net positive without a click: grade 1.
* shown only: nothing.

Groups left without a positive id are dropped (reported; their negatives are kept in the
report). Document-level ids are mapped to index node ids first (see :func:`map_clicks`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .._readers import text_lines
from ..errors import InputError
from .io import jsonl_rows
from .normalize import normalize_text
from .question import Question
from .question_set import QuestionSet
from .split import to_epoch

DEFAULT_FIELDS = {
    "query": "query",
    "shown": "shown_ids",
    "clicked": "clicked_ids",
    "feedback": "feedback",
    "timestamp": "timestamp",
}

_UP = {"up", "+1", "1", "true", "yes", "y", "positive", "pos", "good", "helpful", "like",
       "thumbs_up", "thumbsup", "thumbs up", "👍", "accept", "accepted"}
_DOWN = {"down", "-1", "0", "false", "no", "n", "negative", "neg", "bad", "unhelpful", "dislike",
         "thumbs_down", "thumbsdown", "thumbs down", "👎", "reject", "rejected"}
_DEFAULT_SEPARATORS = re.compile(r"[|;,]")


@dataclass
class LogReport:
    """What :func:`import_logs` did with each row, and what it dropped and why."""

    rows_read: int = 0
    rows_used: int = 0
    empty_queries: list[str] = field(default_factory=list)      # where each was
    duplicate_rows: list[str] = field(default_factory=list)     # repeated log lines
    unknown_ids: Counter = field(default_factory=Counter)       # id -> times dropped
    merged_rows: int = 0            # rows folded into an earlier row with the same query
    no_positive: int = 0            # query groups with no click or positive feedback
    negative_only: list[dict] = field(default_factory=list)  # their negative feedback, kept
    clicks_mapped_to_all_nodes: int = 0  # doc clicks whose row named none of its nodes

    @property
    def dropped(self) -> dict[str, int]:
        return {
            "empty query": len(self.empty_queries),
            "duplicate row": len(self.duplicate_rows),
            "id not in index": sum(self.unknown_ids.values()),
            "no positive signal": self.no_positive,
        }

    def summary(self) -> str:
        dropped = ", ".join(f"{k}: {v}" for k, v in self.dropped.items() if v) or "nothing"
        return (f"{self.rows_read} rows read, {self.rows_used} used, {self.merged_rows} merged "
                f"into repeated queries; dropped {dropped}")


# -- reading rows --------------------------------------------------------------------------------
def _get(row: Mapping, path: str):
    """``row[path]``, following dots into nested objects (``"response.source_ids"``)."""
    if path in row:
        return row[path]
    value = row
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _rows_jsonl(path: Path):
    for _, where, row in jsonl_rows(path):
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, row


def _rows_csv(path: Path, delimiter: str, query_field: str):
    try:
        yield from _csv_rows(path, delimiter, query_field)
    except csv.Error as exc:  # a stray quote or line break, a field past the size limit
        raise InputError(f"{path}: not readable as CSV ({exc}); quote fields that hold "
                         "quotes, line breaks or the delimiter") from None


def _csv_rows(path: Path, delimiter: str, query_field: str):
    with contextlib.closing(text_lines(path)) as lines:
        reader = csv.DictReader((line for _, line in lines), delimiter=delimiter,
                                restkey="\0extra")
        if reader.fieldnames is None:
            return
        if query_field not in reader.fieldnames:
            raise InputError(f"{path}: no column {query_field!r} (columns: {reader.fieldnames});"
                             " name the query column with fields={'query': ...}")
        width = len(reader.fieldnames)
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if "\0extra" in row or any(v is None for v in row.values()):
                got = width + len(row.get("\0extra", [])) - sum(v is None for v in row.values())
                raise InputError(f"{where}: expected {width} columns, found {got}; quote fields "
                                 "that contain the delimiter")
            yield where, row


def _id_list(value, where: str, name: str, sep) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and str(v) != ""]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, str):
        raise InputError(f"{where}: field {name!r} must be a list of ids or a string, got "
                         f"{type(value).__name__}")
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, too deep, too many digits
            raise InputError(f"{where}: field {name!r} starts like a JSON list but is not one: "
                             f"{text[:60]!r}") from None
        return _id_list(parsed, where, name, sep)
    parts = _DEFAULT_SEPARATORS.split(text) if sep is None else text.split(sep)
    return [p.strip() for p in parts if p.strip()]


def _vote(value, where: str, name: str) -> int:
    """+1, -1 or 0 (no feedback) from the many ways logs spell thumbs up/down."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, (int, float)):
        return 1 if value > 0 else -1
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return 0
        if text in _UP:
            return 1
        if text in _DOWN:
            return -1
        try:
            return 1 if float(text) > 0 else -1
        except ValueError:
            pass
    raise InputError(f"{where}: field {name!r} value {value!r} is not thumbs up/down; use "
                     "up/down, 1/-1, true/false, or {id: up/down}")


# -- id mapping ------------------------------------------------------------------------------------
def node_id_map(nodes_or_docstore, key: str | None = None) -> dict[str, list[str]]:
    """``{document id: [node ids]}`` from LlamaIndex nodes (via ``node.ref_doc_id``), a
    LlamaIndex docstore (its ``docs``), or LangChain Documents (``metadata[key]``, ids from
    ``doc.id``). Nodes without a source document are left out."""
    items = nodes_or_docstore
    if hasattr(items, "docs") and isinstance(items.docs, Mapping):
        items = items.docs.values()
    mapping: dict[str, list[str]] = {}
    for i, node in enumerate(items):
        if hasattr(node, "node_id"):
            doc, nid = getattr(node, "ref_doc_id", None), node.node_id
        elif hasattr(node, "page_content"):
            meta = getattr(node, "metadata", None) or {}
            doc, nid = meta.get(key or "source"), getattr(node, "id", None)
            if nid is None:
                raise InputError(f"nodes[{i}]: LangChain Document has no id; the map needs the "
                                 "ids the vector store uses")
        else:
            raise InputError(f"nodes[{i}]: expected a LlamaIndex node or LangChain Document, "
                             f"got {type(node).__name__}")
        if doc is not None:
            mapping.setdefault(str(doc), []).append(str(nid))
    return mapping


def _resolver(id_map) -> Callable[[str], list[str] | None]:
    if id_map is None:
        return lambda _id: None
    if isinstance(id_map, Mapping):
        table = {str(k): [str(n) for n in v] for k, v in id_map.items()}
        return table.get
    if callable(id_map):
        def call(doc_id: str):
            nodes = id_map(doc_id)
            return None if nodes is None else [str(n) for n in nodes]
        return call
    raise InputError("id_map must be a dict {doc id: [node ids]} or a callable doc id -> "
                     "node ids")


def map_clicks(clicked: list[str], shown: list[str], resolve) -> tuple[list[str], list[str], int]:
    """Map logged ids to node ids. Returns ``(clicked nodes, shown nodes, fallbacks)``.

    A shown document id stands for all its nodes. A clicked document id maps to those of its
    nodes that the row shows; when the row shows none of them (it logged documents only, or
    nothing), to all of its nodes, and that counts as a fallback. Ids the map does not know
    are taken as node ids already.
    """
    shown_nodes: list[str] = []
    for sid in shown:
        nodes = resolve(sid)
        shown_nodes.extend(nodes if nodes is not None else [sid])
    shown_set = set(shown_nodes)
    clicked_nodes: list[str] = []
    fallbacks = 0
    for cid in clicked:
        nodes = resolve(cid)
        if nodes is None:
            clicked_nodes.append(cid)
            continue
        seen = [n for n in nodes if n in shown_set]
        if not seen:
            seen, fallbacks = list(nodes), fallbacks + 1
        clicked_nodes.extend(seen)
    return list(dict.fromkeys(clicked_nodes)), list(dict.fromkeys(shown_nodes)), fallbacks


# -- aggregation ----------------------------------------------------------------------------------
@dataclass
class _Group:
    texts: Counter = field(default_factory=Counter)
    rows: int = 0
    first: float | None = None
    last: float | None = None
    clicks: Counter = field(default_factory=Counter)
    ups: Counter = field(default_factory=Counter)
    downs: Counter = field(default_factory=Counter)

    def add_time(self, t: float | None) -> None:
        if t is None:
            return
        self.first = t if self.first is None else min(self.first, t)
        self.last = t if self.last is None else max(self.last, t)

    def grades(self) -> tuple[dict[str, float], dict[str, int]]:
        relevant, negative = {}, {}
        for rid in dict.fromkeys([*self.clicks, *self.ups, *self.downs]):
            net = self.ups[rid] - self.downs[rid]
            if net < 0:
                negative[rid] = -net
            elif self.clicks[rid] and net > 0:
                relevant[rid] = 2.0
            elif self.clicks[rid] or net > 0:
                relevant[rid] = 1.0
        return relevant, negative

    def text(self) -> str:
        # the most frequent spelling; max() keeps the first of equals, i.e. the earliest seen
        return max(self.texts, key=self.texts.__getitem__)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


def _rows_iterable(source: Iterable):
    for i, row in enumerate(source):
        if not isinstance(row, Mapping):
            raise InputError(f"row {i}: expected a dict, got {type(row).__name__}")
        yield f"row {i}", row


def _rows(source, fmt, delimiter, query_field):
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"source={str(path)!r} is not a file")
        kind = fmt or {".csv": "csv", ".tsv": "tsv"}.get(path.suffix.lower(), "jsonl")
        if kind == "jsonl":
            return _rows_jsonl(path)
        if kind in ("csv", "tsv"):
            return _rows_csv(path, "\t" if kind == "tsv" else delimiter, query_field)
        raise InputError(f"format={fmt!r} is not one of 'jsonl', 'csv', 'tsv'")
    if isinstance(source, Iterable):
        return _rows_iterable(source)
    raise InputError("source must be a path to a JSONL/CSV file or an iterable of dict rows")


@dataclass
class _Row:
    """One log row, read and mapped to node ids."""

    query: str          # as typed (stripped)
    key: str            # normalised: rows with the same key are one question
    clicked: list[str]  # node ids
    votes: dict[str, int]  # node id -> +1 / -1
    time: float | None
    event: tuple | None  # what makes two rows the same logged event (None without a time)
    unknown: list[str]   # ids dropped because the index lacks them
    fallbacks: int       # document clicks mapped to all the document's nodes


class _RowParser:
    """Reads one row at a time: the fields, id lists, feedback, time and id mapping."""

    def __init__(self, names: dict[str, str], list_sep, resolve, known: set | None,
                 report: LogReport):
        self.names, self.list_sep, self.resolve = names, list_sep, resolve
        self.known, self.report = known, report  # the parser reports empty queries only

    def ids(self, row: Mapping, role: str, where: str) -> list[str]:
        return _id_list(_get(row, self.names[role]), where, self.names[role], self.list_sep)

    def parse(self, row: Mapping, where: str) -> _Row | None:
        """The row, or ``None`` (reported) when its query is empty."""
        query = _get(row, self.names["query"])
        if query is not None and not isinstance(query, str):
            query = str(query)
        key = normalize_text(query) if query else ""
        if not key:
            self.report.empty_queries.append(where)
            return None
        shown, clicked = self.ids(row, "shown", where), self.ids(row, "clicked", where)
        feedback = _get(row, self.names["feedback"])
        raw_time = _get(row, self.names["timestamp"])
        t = None if raw_time in (None, "") else to_epoch(
            raw_time, f"{where}: field {self.names['timestamp']!r}")
        # the same query, ids, feedback and time twice is a double-logged event
        event = None if t is None else (key, tuple(shown), tuple(clicked),
                                        json.dumps(feedback, sort_keys=True, default=str), t)
        clicked, shown, fallbacks = map_clicks(clicked, shown, self.resolve)
        votes = self.votes(feedback, clicked, shown, where)
        unknown = []
        if self.known is not None:
            unknown = [rid for rid in [*clicked, *votes] if rid not in self.known]
            clicked = [c for c in clicked if c in self.known]
            votes = {r: v for r, v in votes.items() if r in self.known}
        return _Row(query.strip(), key, clicked, votes, t, event, unknown, fallbacks)

    def votes(self, feedback, clicked: list[str], shown: list[str], where: str) -> dict:
        """``{node id: +1/-1}``: per-record feedback, or whole-answer feedback on the clicked
        ids (the shown ones when nothing was clicked)."""
        name = self.names["feedback"]
        if isinstance(feedback, Mapping):
            votes = {}
            for rid, value in feedback.items():
                vote = _vote(value, where, name)
                for target in map_clicks([str(rid)], shown, self.resolve)[0]:
                    votes[target] = vote
            return votes
        vote = _vote(feedback, where, name)
        return {target: vote for target in (clicked or shown)} if vote else {}


class _QuestionGroups:
    """Folds rows into one group per normalised query, and turns groups into questions."""

    def __init__(self, report: LogReport):
        self.report = report
        self.groups: dict[str, _Group] = {}
        self.events: set[tuple] = set()

    def add(self, row: _Row, where: str) -> None:
        if row.event is not None:
            if row.event in self.events:
                self.report.duplicate_rows.append(where)
                return
            self.events.add(row.event)
        self.report.unknown_ids.update(row.unknown)
        self.report.clicks_mapped_to_all_nodes += row.fallbacks
        group = self.groups.get(row.key)
        if group is None:
            group = self.groups[row.key] = _Group()
        else:
            self.report.merged_rows += 1
        self.report.rows_used += 1
        group.rows += 1
        group.texts[row.query] += 1
        group.add_time(row.time)
        group.clicks.update(row.clicked)
        for rid, vote in row.votes.items():
            (group.ups if vote > 0 else group.downs)[rid] += 1

    def questions(self) -> list[Question]:
        """One question per group with a positive id; the others are reported."""
        questions = []
        for key, group in self.groups.items():
            relevant, negative = group.grades()
            text = group.text()
            if not relevant:
                self.report.no_positive += 1
                if negative:
                    self.report.negative_only.append({"query": text, "negative": negative,
                                                      "timestamp": _iso(group.first)})
                continue
            metadata = {"source": "logged", "asked": group.rows, "clicks": dict(group.clicks)}
            if group.first is not None:
                metadata["timestamp"] = _iso(group.first)
                metadata["last_seen"] = _iso(group.last)
            if negative:
                metadata["negative"] = negative
            if len(group.texts) > 1:
                metadata["variants"] = sorted(group.texts)
            qid = "log-" + hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
            questions.append(Question(qid, text, relevant, None, metadata))
        return questions


def _field_names(fields: Mapping[str, str] | None) -> dict[str, str]:
    names = dict(DEFAULT_FIELDS)
    for role, column in (fields or {}).items():
        if role not in DEFAULT_FIELDS:
            raise InputError(f"fields: unknown key {role!r}; use {sorted(DEFAULT_FIELDS)}")
        names[role] = column
    return names


def import_logs(source, *, fields: Mapping[str, str] | None = None, format: str | None = None,
                known_ids=None, id_map=None, list_sep: str | None = None,
                delimiter: str = ",") -> tuple[QuestionSet, LogReport]:
    """Read query logs and return ``(QuestionSet, LogReport)``.

    ``source``: a ``.jsonl``/``.csv``/``.tsv`` path or an iterable of dicts. ``fields`` renames
    the columns (keys ``query``, ``shown``, ``clicked``, ``feedback``, ``timestamp``; dotted
    paths reach into nested JSON). Id lists may be JSON lists, lists, or strings split on
    ``list_sep`` (default: any of ``| ; ,``). ``id_map`` (``{doc id: [node ids]}`` or a
    callable, see :func:`node_id_map`) maps document ids to node ids; ``known_ids`` drops ids
    the index does not hold (reported).
    """
    names = _field_names(fields)
    if list_sep is not None and (not isinstance(list_sep, str) or not list_sep):
        raise InputError(f"list_sep={list_sep!r} must be a non-empty string, or None to split "
                         "id lists on any of | ; ,")
    known = None if known_ids is None else set(map(str, known_ids))
    report = LogReport()
    parser = _RowParser(names, list_sep, _resolver(id_map), known, report)
    groups = _QuestionGroups(report)
    for where, raw in _rows(source, format, delimiter, names["query"]):
        report.rows_read += 1
        row = parser.parse(raw, where)
        if row is not None:
            groups.add(row, where)
    questions = groups.questions()
    if not questions:
        raise InputError(f"the logs hold no usable question ({report.summary()}); check the "
                         "field names (fields=...) and the id mapping")
    return QuestionSet(questions), report
