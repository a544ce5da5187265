import copy

import numpy as np
import pytest

from nudge_rag.errors import InputError
from nudge_rag.questions import Question, QuestionSet


def _claims(scifact, n=40):
    """The first ``n`` labelled SciFact claims as Questions."""
    out = []
    for qid, rel in list(scifact.qrels.items())[:n]:
        out.append(Question(qid, scifact.queries[qid], rel, None, {"source": "human"}))
    return out


def test_columns_follow_input_order(scifact):
    questions = _claims(scifact)
    qs = QuestionSet(questions)
    assert len(qs) == len(questions)
    assert qs.ids == [q.id for q in questions]
    assert qs.texts == [q.text for q in questions]
    assert qs.relevance == [q.relevant for q in questions]
    assert qs.embeddings is None
    assert [q.id for q in qs] == qs.ids
    assert qs.record_ids == {d for q in questions for d in q.relevant}


def test_nothing_handed_in_is_mutated_and_set_cannot_be_changed(scifact):
    questions = _claims(scifact, 10)
    snapshot = copy.deepcopy(questions)
    qs = QuestionSet(questions)
    questions[0].relevant["9999999"] = 5.0
    questions[0].metadata["source"] = "logged"
    assert "9999999" not in qs.relevance[0]
    assert qs[0].metadata["source"] == "human"
    got = qs[0]
    got.relevant["bogus"] = 1.0
    got.metadata["x"] = 1
    assert "bogus" not in qs.relevance[0] and "x" not in qs.metadata[0]
    assert questions[1:] == snapshot[1:]


def test_embeddings_are_all_or_none_and_read_only(scifact):
    questions = _claims(scifact, 6)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    with_emb = [Question(q.id, q.text, q.relevant, vectors[i], q.metadata)
                for i, q in enumerate(questions)]
    qs = QuestionSet(with_emb)
    np.testing.assert_array_equal(qs.embeddings, vectors)
    with pytest.raises(ValueError):
        qs.embeddings[0, 0] = 1.0
    vectors[0, 0] = 42.0  # the caller's array is copied, not shared
    assert qs.embeddings[0, 0] != 42.0
    mixed = with_emb[:3] + questions[3:]
    with pytest.raises(InputError, match="question 3 has no embedding"):
        QuestionSet(mixed)
    ragged = with_emb[:2] + [Question("odd", "x y z", {"1": 1}, np.ones(5))]
    with pytest.raises(InputError, match="question 2: embedding shape"):
        QuestionSet(ragged)


def test_with_embeddings_returns_new_set(scifact):
    qs = QuestionSet(_claims(scifact, 5))
    emb = np.arange(15, dtype=np.float64).reshape(5, 3)
    new = qs.with_embeddings(emb)
    assert qs.embeddings is None
    np.testing.assert_array_equal(new.embeddings, emb)
    np.testing.assert_array_equal(new[2].embedding, emb[2])
    assert new.ids == qs.ids
    with pytest.raises(InputError, match=r"shape \(4, 3\)"):
        qs.with_embeddings(emb[:4])
    bad = emb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="row 3"):
        qs.with_embeddings(bad)


def test_text_optional_when_embedding_given():
    qs = QuestionSet([Question("a", None, ["d1"], np.ones(4)),
                      Question("b", "", ["d2"], np.zeros(4) + 0.5)])
    assert qs.texts == [None, None]
    with pytest.raises(InputError, match="neither a text nor an embedding"):
        QuestionSet([Question("a", "   ", {"d1": 1})])


def test_from_pairs_accepts_dicts_and_lists():
    qs = QuestionSet.from_pairs([("how do delta wings stall?", {"12": 2, "40": 1}),
                                 ("what causes panel flutter?", ["7", "8"])])
    assert qs.ids == ["q0", "q1"]
    assert qs.relevance == [{"12": 2.0, "40": 1.0}, {"7": 1.0, "8": 1.0}]
    assert all(q.source == "human" for q in qs)


@pytest.mark.parametrize("relevant, message", [
    ({"12": "high"}, "grade 'high' is not a number"),
    ({"12": 0}, "must be a finite number > 0"),
    ({"12": float("nan")}, "must be a finite number > 0"),
    ({"12": True}, "is not a number"),
    ({}, "'relevant' is empty"),
    ("12", "must be a dict"),
])
def test_bad_relevance_is_named(relevant, message):
    with pytest.raises(InputError, match=message):
        QuestionSet([Question("q-7", "what is shock stall?", relevant)])


def test_empty_set_duplicate_ids_and_bad_source():
    with pytest.raises(InputError, match="empty"):
        QuestionSet([])
    with pytest.raises(InputError, match="id 'a' repeats question 0"):
        QuestionSet([Question("a", "one two three", ["1"]),
                     Question("a", "four five six", ["2"])])
    with pytest.raises(InputError, match="source 'crawled'"):
        QuestionSet([Question("a", "one two three", ["1"], None, {"source": "crawled"})])


def test_known_ids_and_relevance_rows(cranfield):
    qids = list(cranfield.qrels)[:20]
    qs = QuestionSet.from_pairs([(cranfield.queries[q], cranfield.qrels[q]) for q in qids],
                                known_ids=cranfield.corpus)
    doc_ids = list(cranfield.corpus)
    rows = qs.relevance_rows(doc_ids)
    for rel_rows, q in zip(rows, qids, strict=True):
        assert {doc_ids[r]: g for r, g in rel_rows.items()} == cranfield.qrels[q]
    with pytest.raises(InputError, match="not among the 1400 known ids"):
        QuestionSet.from_pairs([("what is lift?", ["99999"])], known_ids=cranfield.corpus)
    partial = doc_ids[:100]
    dropped = qs.relevance_rows(partial, unknown="drop")
    assert all(all(r < 100 for r in rel) for rel in dropped)
    with pytest.raises(InputError, match="not among the 100 known ids"):
        qs.relevance_rows(partial)


def test_slicing_and_concatenation(cranfield):
    qids = list(cranfield.qrels)[:10]
    qs = QuestionSet.from_pairs([(cranfield.queries[q], cranfield.qrels[q]) for q in qids])
    head, tail = qs[:4], qs[4:]
    assert len(head) == 4 and len(tail) == 6
    assert (head + tail).ids == qs.ids
    with pytest.raises(InputError, match="repeats"):
        head + head


def test_coerce_accepts_what_callers_hand_in(tmp_path, cranfield):
    qids = list(cranfield.qrels)[:8]
    pairs = [(cranfield.queries[q], cranfield.qrels[q]) for q in qids]
    qs = QuestionSet.from_pairs(pairs)
    assert QuestionSet.coerce(qs) is qs
    assert QuestionSet.coerce(pairs).relevance == qs.relevance
    assert QuestionSet.coerce(list(qs)).ids == qs.ids
    qs.to_jsonl(tmp_path / "q.jsonl")
    assert QuestionSet.coerce(tmp_path / "q.jsonl").texts == qs.texts
    with pytest.raises(InputError, match="train_questions must be a QuestionSet"):
        QuestionSet.coerce({"a": 1}, name="train_questions")
    with pytest.raises(InputError, match=r"pairs\[0\]: expected \(text, relevant\)"):
        QuestionSet.coerce(["just a string"])


def test_coerce_takes_embedded_pairs_and_dict_rows(cranfield):
    qids = list(cranfield.qrels)[:6]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    pairs = [(v, cranfield.qrels[q]) for v, q in zip(vectors, qids, strict=True)]
    fast = QuestionSet.coerce(pairs, "train_questions")
    np.testing.assert_array_equal(fast.embeddings, vectors)
    assert fast.relevance == [cranfield.qrels[q] for q in qids]
    assert fast.ids == [f"q{i}" for i in range(6)] and fast.texts == [None] * 6
    # lists of floats take the general path and give the same set
    slow = QuestionSet.coerce([(v.tolist(), r) for v, r in pairs])
    np.testing.assert_allclose(slow.embeddings, fast.embeddings)
    assert slow.relevance == fast.relevance
    vectors[0, 0] = 99.0  # the set holds its own copy
    assert fast.embeddings[0, 0] != 99.0
    rows = [{"question": cranfield.queries[q], "relevance": cranfield.qrels[q]} for q in qids]
    rows[0]["id"] = "first"
    from_rows = QuestionSet.coerce(rows)
    assert from_rows.ids[:2] == ["first", "q1"]
    assert from_rows.texts == [cranfield.queries[q] for q in qids]
    with pytest.raises(InputError, match="mixes|has no embedding while others do"):
        QuestionSet.coerce([pairs[0], (cranfield.queries[qids[1]], ["1"])])


@pytest.mark.parametrize("relevant", [{"a": 0, "b": 1}, {"a": -1.0, "b": 1}])
def test_a_zero_grade_is_refused_on_every_path(relevant):
    # issue 16: this became {'b': 1} through the finetuner's own reader and raised through
    # QuestionSet; now every path refuses it the same way, naming the record
    vector = np.ones(4)
    for given in ([("what is lift?", relevant)], [(vector, relevant)],
                  [{"question": "what is lift?", "relevant": relevant}]):
        with pytest.raises(InputError, match="record 'a'.*finite number > 0"):
            QuestionSet.coerce(given, "train_questions")


def test_one_id_check_and_one_error_type(cranfield):
    from nudge_rag.errors import MismatchError

    qs = QuestionSet.from_pairs([("what is lift?", ["1", "nope", "gone"])])
    with pytest.raises(MismatchError, match=r"'gone', 'nope' \(2 record ids\) are not among"):
        qs.validate(cranfield.corpus)
    # a store lookup: only the named ids are asked about
    asked = []

    def existing(ids):
        asked.append(list(ids))
        return [i for i in ids if i in cranfield.corpus]

    with pytest.raises(MismatchError, match="are not in the test store"):
        qs.validate(existing, "train_questions", "the test store")
    assert asked == [["1", "gone", "nope"]]
    with pytest.raises(MismatchError, match="another index"):
        QuestionSet.from_pairs([("x y z", ["a", "b"])]).validate(cranfield.corpus)
