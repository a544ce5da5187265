import csv
import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from nudge_rag.datasets import load_cached_embeddings
from nudge_rag.errors import InputError
from nudge_rag.questions import import_logs, node_id_map, normalize_text


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cranfield_log(cranfield_dir, cranfield):
    """A query log simulated from a real retrieval run on Cranfield: each of 80 judged queries
    is asked 1-3 times, shown its top 5 by all-MiniLM-L6-v2, and the user clicks the shown
    documents judged relevant (grade >= 3), sometimes giving a thumbs up or down."""
    doc_ids, doc_emb, query_ids, query_emb = load_cached_embeddings(cranfield_dir)
    row_of_query = {q: i for i, q in enumerate(query_ids)}
    rng = np.random.default_rng(0)
    rows = []
    for n, qid in enumerate(list(cranfield.qrels)[:80]):
        scores = doc_emb @ query_emb[row_of_query[qid]]
        shown = [doc_ids[i] for i in np.argsort(-scores)[:5]]
        clicked = [d for d in shown if cranfield.qrels[qid].get(d, 0) >= 3]
        text = cranfield.queries[qid]
        for repeat in range(1 + n % 3):
            asked = text if repeat == 0 else text.upper().rstrip(" .") + " ?"
            feedback = [None, "up", "down", None][int(rng.integers(4))] if clicked else None
            rows.append({"query": asked, "shown_ids": shown, "clicked_ids": clicked,
                         "feedback": feedback,
                         "timestamp": f"2026-02-{1 + n % 27:02d}T1{repeat}:00:00Z"})
    return rows


def test_real_log_grades_follow_the_rules(tmp_path, cranfield_log, cranfield):
    path = _write_jsonl(tmp_path / "log.jsonl", cranfield_log)
    qs, report = import_logs(path, known_ids=cranfield.corpus)
    # rebuild the expectation independently from the rows
    clicks, ups, downs, asked, spellings = (defaultdict(Counter) for _ in range(5))
    for row in cranfield_log:
        key = normalize_text(row["query"])
        asked[key]["rows"] += 1
        spellings[key][row["query"]] += 1
        clicks[key].update(row["clicked_ids"])
        if row["feedback"]:
            (ups if row["feedback"] == "up" else downs)[key].update(row["clicked_ids"])
    expected = {}
    for key in asked:
        rel = {}
        for d in clicks[key]:
            net = ups[key][d] - downs[key][d]
            if net >= 0:
                rel[d] = 2.0 if net > 0 else 1.0
        if rel:
            expected[key] = rel
    got = {normalize_text(q.text): q.relevant for q in qs}
    assert got == expected
    assert report.rows_read == len(cranfield_log) == report.rows_used
    assert report.merged_rows == len(cranfield_log) - len(asked)
    assert report.no_positive == len(asked) - len(expected)
    for q in qs:
        assert q.source == "logged" and q.metadata["asked"] == asked[normalize_text(q.text)]["rows"]
        assert q.metadata["timestamp"] <= q.metadata["last_seen"]
        # the most frequent spelling names the question; ties go to the first seen
        counts = spellings[normalize_text(q.text)]
        assert q.text == max(counts, key=counts.get)
    assert any(q.text.isupper() for q in qs) and any(not q.text.isupper() for q in qs)


def test_negative_feedback_is_kept(tmp_path):
    rows = [
        {"query": "wing flutter speed", "shown_ids": ["d1", "d2"], "clicked_ids": ["d1"],
         "feedback": "up"},
        {"query": "Wing flutter speed?", "shown_ids": ["d1", "d2"], "clicked_ids": ["d2"],
         "feedback": "down"},
        {"query": "wing flutter speed", "shown_ids": ["d2", "d3"], "clicked_ids": [],
         "feedback": "thumbs_down"},
        {"query": "stall of thin aerofoils", "shown_ids": ["d4"], "clicked_ids": [],
         "feedback": False},
        {"query": "shock stand-off distance", "shown_ids": ["d5", "d6"], "clicked_ids": [],
         "feedback": "👍"},
        {"query": "heat transfer", "shown_ids": ["d7", "d8"],
         "feedback": {"d7": "up", "d8": -1}},
    ]
    qs, report = import_logs(rows)
    by_text = {normalize_text(q.text): q for q in qs}
    flutter = by_text["wing flutter speed"]
    assert flutter.relevant == {"d1": 2.0}
    assert flutter.metadata["negative"] == {"d2": 2, "d3": 1}
    assert flutter.metadata["clicks"] == {"d1": 1, "d2": 1}
    assert by_text["shock stand off distance"].relevant == {"d5": 1.0, "d6": 1.0}
    assert by_text["heat transfer"].relevant == {"d7": 1.0}
    assert by_text["heat transfer"].metadata["negative"] == {"d8": 1}
    assert report.no_positive == 1
    assert report.negative_only == [{"query": "stall of thin aerofoils", "negative": {"d4": 1},
                                     "timestamp": None}]


def test_drops_are_reported(tmp_path):
    rows = [
        {"query": "  ", "clicked_ids": ["d1"]},
        {"query": None, "clicked_ids": ["d1"]},
        {"query": "lift of delta wings", "shown_ids": ["d1", "x9"], "clicked_ids": ["d1", "x9"],
         "timestamp": 1767225600},
        {"query": "lift of delta wings", "shown_ids": ["d1", "x9"], "clicked_ids": ["d1", "x9"],
         "timestamp": 1767225600},
        {"query": "Lift of delta wings.", "shown_ids": ["d2"], "clicked_ids": ["d2"],
         "timestamp": "2026-01-02T00:00:00Z"},
        {"query": "transition", "shown_ids": ["x8"], "clicked_ids": ["x8"]},
    ]
    qs, report = import_logs(rows, known_ids=["d1", "d2", "d3"])
    assert len(qs) == 1
    assert qs[0].relevant == {"d1": 1.0, "d2": 1.0}
    assert qs[0].metadata["asked"] == 2
    assert qs[0].metadata["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert qs[0].metadata["variants"] == ["Lift of delta wings.", "lift of delta wings"]
    assert report.empty_queries == ["row 0", "row 1"]
    assert report.duplicate_rows == ["row 3"]
    assert report.unknown_ids == Counter({"x9": 1, "x8": 1})
    assert report.dropped == {"empty query": 2, "duplicate row": 1, "id not in index": 2,
                              "no positive signal": 1}
    assert "6 rows read" in report.summary()


def test_csv_with_own_field_names(tmp_path, cranfield_log):
    path = tmp_path / "log.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ts", "user_query", "retrieved", "accepted", "rating"])
        for row in cranfield_log:
            writer.writerow([row["timestamp"], row["query"], "|".join(row["shown_ids"]),
                             json.dumps(row["clicked_ids"]), row["feedback"] or ""])
    fields = {"query": "user_query", "shown": "retrieved", "clicked": "accepted",
              "feedback": "rating", "timestamp": "ts"}
    from_csv, report = import_logs(path, fields=fields)
    from_jsonl, _ = import_logs(cranfield_log)
    assert sorted(zip(from_csv.texts, from_csv.relevance, strict=True)) == \
        sorted(zip(from_jsonl.texts, from_jsonl.relevance, strict=True))
    assert report.rows_read == len(cranfield_log)


def test_nested_json_fields(tmp_path):
    rows = [{"request": {"text": "nose cone drag"}, "response": {"sources": ["d1", "d2"]},
             "user": {"clicked": "d2", "vote": 1}, "at": "2026-03-01T08:00:00+01:00"}]
    qs, _ = import_logs(_write_jsonl(tmp_path / "n.jsonl", rows),
                        fields={"query": "request.text", "shown": "response.sources",
                                "clicked": "user.clicked", "feedback": "user.vote",
                                "timestamp": "at"})
    assert qs[0].relevant == {"d2": 2.0}
    assert qs[0].metadata["timestamp"] == "2026-03-01T07:00:00+00:00"


@pytest.mark.parametrize("content, message", [
    ('{"query": "a b c", "clicked_ids": ["1"]}\n{"query": "d e f", "clicked_ids": [1\n',
     r"log\.jsonl:2: not valid JSON"),
    ('{"query": "a b c", "clicked_ids": ["1"], "feedback": "meh"}\n',
     r"log\.jsonl:1: field 'feedback' value 'meh'"),
    ('{"query": "a b c", "clicked_ids": ["1"], "timestamp": "last tuesday"}\n',
     r"log\.jsonl:1: field 'timestamp'.*'last tuesday'"),
    ('{"query": "a b c", "clicked_ids": {"1": 2}}\n', r"log\.jsonl:1: field 'clicked_ids'"),
    ('{"query": "a b c", "clicked_ids": "[1, 2"}\n', r"field 'clicked_ids' starts like a JSON"),
    ('{"query": "a b c", "shown_ids": ["1"]}\n', "no usable question"),
])
def test_bad_jsonl_logs(tmp_path, content, message):
    path = tmp_path / "log.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_logs(path)


def test_bad_csv_logs(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("query,clicked_ids\nwing stall,d1\nbody drag,d2,d3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"log\.csv:3: expected 2 columns, found 3"):
        import_logs(path, list_sep="|")
    path.write_text("q,clicked_ids\nwing stall,d1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no column 'query'.*fields=\{'query'"):
        import_logs(path)
    with pytest.raises(InputError, match="row 1: expected a dict, got tuple"):
        import_logs([{"query": "wing stall", "clicked_ids": ["d1"]}, ("body drag", "d2")])
    with pytest.raises(InputError, match="unknown key 'clicks'"):
        import_logs(path, fields={"clicks": "c"})


# -- document ids -> node ids --------------------------------------------------------------
@pytest.fixture(scope="module")
def cranfield_nodes(cranfield):
    """LlamaIndex nodes of 40 Cranfield abstracts, about three sentences each, linked to their
    document the way node parsers link them (a SOURCE relationship, read as ref_doc_id)."""
    import re

    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    nodes = []
    for d in list(cranfield.corpus)[:40]:
        sentences = re.split(r"(?<=\.) ", cranfield.doc_text(d))
        for k in range(0, len(sentences), 3):
            nodes.append(TextNode(text=" ".join(sentences[k:k + 3]), relationships={
                NodeRelationship.SOURCE: RelatedNodeInfo(node_id=d)}))
    return nodes


def test_node_id_map_from_nodes_and_docstore(cranfield_nodes):
    from llama_index.core.storage.docstore import SimpleDocumentStore

    mapping = node_id_map(cranfield_nodes)
    expected = defaultdict(list)
    for node in cranfield_nodes:
        expected[node.ref_doc_id].append(node.node_id)
    assert mapping == dict(expected)
    assert any(len(v) > 1 for v in mapping.values())  # long abstracts split into several nodes
    store = SimpleDocumentStore()
    store.add_documents(cranfield_nodes)
    assert {k: sorted(v) for k, v in node_id_map(store).items()} == \
        {k: sorted(v) for k, v in expected.items()}


def test_document_clicks_map_to_shown_nodes(cranfield_nodes):
    mapping = node_id_map(cranfield_nodes)
    doc = next(d for d, nodes in mapping.items() if len(nodes) >= 3)
    nodes = mapping[doc]
    other = next(d for d, n in mapping.items() if d != doc)
    rows = [
        # nodes 0 and 2 of the document were shown; the user clicked the document
        {"query": "pressure distribution", "shown_ids": [nodes[0], nodes[2], mapping[other][0]],
         "clicked_ids": [doc]},
        # this row logged documents only: a shown document stands for all its nodes
        {"query": "boundary layer suction", "shown_ids": [doc], "clicked_ids": [doc]},
        # nothing shown was logged: the click falls back to all of the document's nodes
        {"query": "laminar heat transfer", "clicked_ids": [doc]},
        # a click on a node id passes through unchanged
        {"query": "skin friction", "shown_ids": [nodes[1]], "clicked_ids": [nodes[1]]},
    ]
    all_nodes = [n.node_id for n in cranfield_nodes]
    for id_map in (mapping, lambda d: mapping.get(d)):
        qs, report = import_logs(rows, id_map=id_map, known_ids=all_nodes)
        rel = {q.text: q.relevant for q in qs}
        assert rel["pressure distribution"] == {nodes[0]: 1.0, nodes[2]: 1.0}
        assert rel["boundary layer suction"] == {n: 1.0 for n in nodes}
        assert rel["skin friction"] == {nodes[1]: 1.0}
        assert rel["laminar heat transfer"] == {n: 1.0 for n in nodes}
        assert report.clicks_mapped_to_all_nodes == 1
    with pytest.raises(InputError, match="id_map must be"):
        import_logs(rows, id_map=["not", "a", "map"])


def test_node_id_map_for_langchain_documents(cranfield):
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from langchain_core.documents import Document

    docs = [Document(page_content=cranfield.doc_text(d)[:200], id=f"{d}-{k}",
                     metadata={"source": d}) for d in list(cranfield.corpus)[:5] for k in range(2)]
    mapping = node_id_map(docs)
    assert mapping == {d: [f"{d}-0", f"{d}-1"] for d in list(cranfield.corpus)[:5]}
