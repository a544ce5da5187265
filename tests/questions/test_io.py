import json
from datetime import datetime, timezone

import numpy as np
import pytest

from nudge_rag.datasets import read_qrels
from nudge_rag.errors import InputError
from nudge_rag.questions import Question, QuestionSet, read_llama_dataset


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- JSONL ------------------------------------------------------------------------------------
def test_jsonl_round_trip_keeps_everything(tmp_path, cranfield):
    qids = list(cranfield.qrels)[:25]
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((25, 6)).astype(np.float32)
    questions = [Question(q, cranfield.queries[q], cranfield.qrels[q], emb[i],
                          {"source": "logged", "timestamp": datetime(2026, 3, i + 1,
                                                                     tzinfo=timezone.utc),
                           "clicks": {"3": 2}})
                 for i, q in enumerate(qids)]
    qs = QuestionSet(questions)
    path = tmp_path / "q.jsonl"
    qs.to_jsonl(path)
    back = QuestionSet.from_jsonl(path)
    assert back.ids == qs.ids and back.texts == qs.texts and back.relevance == qs.relevance
    np.testing.assert_allclose(back.embeddings, emb)
    assert back[4].metadata == {"source": "logged", "timestamp": "2026-03-05T00:00:00+00:00",
                                "clicks": {"3": 2}}
    # the writer leaves no temporary files behind
    assert [p.name for p in tmp_path.iterdir()] == ["q.jsonl"]


def test_jsonl_reader_accepts_list_relevance_aliases_and_extra_keys(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"id": "a", "question": "why do swept wings tip stall?", "relevant": ["11", "12"]}\n'
        "\n"
        '{"id": 7, "text": "heat transfer at the stagnation point", "relevant": {"40": 3},'
        ' "team": "aero", "metadata": {"source": "synthetic"}}\n'
        '{"query": "buckling of cylinders", "relevant": {"9": "2"}}\n', encoding="utf-8")
    qs = QuestionSet.from_jsonl(path)
    assert qs.ids == ["a", "7", "line4"]
    assert qs.relevance == [{"11": 1.0, "12": 1.0}, {"40": 3.0}, {"9": 2.0}]
    assert qs.metadata[1] == {"team": "aero", "source": "synthetic"}
    assert qs.metadata[0]["source"] == "human"


@pytest.mark.parametrize("line, message", [
    ('{"id": "b", "question": "x y z", "relevant": {"1": 1}', r"q\.jsonl:2: not valid JSON"),
    ('["just", "a", "list"]', r"q\.jsonl:2: expected a JSON object"),
    ('{"id": "b", "question": "x y z"}', r"q\.jsonl:2: field 'relevant' is missing"),
    ('{"id": "b", "question": "x y z", "relevant": {"1": "lots"}}',
     r"q\.jsonl:2, record '1': grade 'lots' is not a number"),
    ('{"id": "b", "question": "x y z", "relevant": {"1": -1}}', r"q\.jsonl:2.*> 0"),
    ('{"id": "b", "relevant": ["1"]}', r"q\.jsonl:2: field 'question' is missing"),
    ('{"id": "a", "question": "x y z", "relevant": ["1"]}', r"q\.jsonl:2: id 'a' was already"),
    ('{"id": "b", "question": "x y z", "relevant": ["1"], "embedding": "fast"}',
     r"q\.jsonl:2: field 'embedding'"),
])
def test_jsonl_errors_name_line_and_field(tmp_path, line, message):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "what is lift", "relevant": ["1"]}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match=message):
        QuestionSet.from_jsonl(path)


def test_jsonl_unknown_ids_and_empty_file(tmp_path, cranfield):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "what is lift", "relevant": ["1", "77777"]}\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"q\.jsonl:1: relevant ids '77777'"):
        QuestionSet.from_jsonl(path, known_ids=cranfield.corpus)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no questions"):
        QuestionSet.from_jsonl(empty)


# -- BEIR ---------------------------------------------------------------------------------------
def test_beir_pools_every_qrels_file(scifact_dir):
    qs = QuestionSet.from_beir(scifact_dir)
    # README: 809 train + 300 test queries, 919 + 339 judged pairs
    assert len(qs) == 1109
    assert sum(len(r) for r in qs.relevance) == 919 + 339
    test = read_qrels(scifact_dir / "qrels" / "test.tsv")
    by_id = dict(zip(qs.ids, qs.relevance, strict=True))
    assert all(by_id[q] == rel for q, rel in test.items())
    splits = {m["split"] for m in qs.metadata}
    assert splits == {"train", "test"}


def test_beir_named_split_and_known_ids(cranfield_dir, cranfield):
    test = QuestionSet.from_beir(cranfield_dir, splits=["test"], known_ids=cranfield.corpus)
    assert len(test) == 90
    assert all(m["split"] == "test" and m["source"] == "human" for m in test.metadata)
    assert all(q.text == cranfield.queries[q.id] for q in test)
    everything = QuestionSet.from_beir(cranfield_dir)  # all.tsv pools the others
    assert len(everything) == 225 and sum(len(r) for r in everything.relevance) == 1612
    with pytest.raises(InputError, match="dev.tsv does not exist"):
        QuestionSet.from_beir(cranfield_dir, splits="dev")


def test_beir_round_trip(tmp_path, cranfield_dir):
    qs = QuestionSet.from_beir(cranfield_dir, splits=["train"])
    out = tmp_path / "beir"
    qs.to_beir(out, split="train")
    back = QuestionSet.from_beir(out)
    assert back.ids == qs.ids and back.texts == qs.texts and back.relevance == qs.relevance
    assert (out / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[0] == \
        "query-id\tcorpus-id\tscore"
    with pytest.raises(InputError, match="exists; pass overwrite=True"):
        qs.to_beir(out, split="train")
    qs[:5].to_beir(out, split="train", overwrite=True)
    assert len(QuestionSet.from_beir(out)) == 5


def test_beir_errors(tmp_path):
    with pytest.raises(InputError, match="no queries.jsonl"):
        QuestionSet.from_beir(tmp_path)
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "what is lift"}\n',
                                            encoding="utf-8")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t5\t1\n"
                                                 "2\t6\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"query ids \['2'\]"):
        QuestionSet.from_beir(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t5\tyes\n",
                                                 encoding="utf-8")
    with pytest.raises(InputError, match=r"test\.tsv:2: score 'yes' is not a number"):
        QuestionSet.from_beir(tmp_path)


# -- LlamaIndex EmbeddingQAFinetuneDataset -------------------------------------------------------
def test_llama_dataset_round_trip(tmp_path, cranfield):
    qids = list(cranfield.qrels)[:30]
    qs = QuestionSet.from_pairs([(cranfield.queries[q], cranfield.qrels[q]) for q in qids])
    corpus = {d: cranfield.doc_text(d) for d in qs.record_ids}
    path = tmp_path / "train_dataset.json"
    data = qs.to_llama_dataset(path, corpus=corpus)
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk == data
    assert set(on_disk) == {"queries", "corpus", "relevant_docs", "mode"}
    assert on_disk["mode"] == "text"
    # best grade first, since the format has no grades
    first = on_disk["relevant_docs"]["q0"]
    grades = [cranfield.qrels[qids[0]][d] for d in first]
    assert grades == sorted(grades, reverse=True)
    back, back_corpus = read_llama_dataset(path)
    assert back.texts == qs.texts
    assert [set(r) for r in back.relevance] == [set(r) for r in qs.relevance]
    assert all(g == 1.0 for r in back.relevance for g in r.values())
    assert back_corpus == corpus
    assert QuestionSet.from_llama_dataset(on_disk).ids == back.ids


def test_llama_dataset_as_llama_index_writes_it(tmp_path):
    # the exact shape EmbeddingQAFinetuneDataset.save_json produces (uuid keys, one node each)
    data = {
        "queries": {"5e1c": "What limits the lift of a slender delta wing at high incidence?",
                    "9ab0": "How is boundary layer transition detected in flight?"},
        "corpus": {"node-1": "Slender delta wings shed leading-edge vortices...",
                   "node-2": "Transition was detected with surface hot films..."},
        "relevant_docs": {"5e1c": ["node-1"], "9ab0": ["node-2"]},
        "mode": "text",
    }
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    qs = QuestionSet.from_llama_dataset(path)
    assert qs.ids == ["5e1c", "9ab0"]
    assert qs.relevance == [{"node-1": 1.0}, {"node-2": 1.0}]
    assert all(q.source == "synthetic" for q in qs)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("queries"), "field 'queries' is missing"),
    (lambda d: d["relevant_docs"].pop("a"), r"relevant_docs\['a'\] is missing"),
    (lambda d: d["relevant_docs"].update(a=["node-9"]), r"relevant_docs\['a'\]: relevant ids "
                                                        "'node-9'"),
    (lambda d: d["relevant_docs"].update(a=[]), r"relevant_docs\['a'\]: 'relevant' is empty"),
])
def test_llama_dataset_errors_name_the_field(mutate, message):
    data = {"queries": {"a": "what is flutter"}, "corpus": {"node-1": "flutter is..."},
            "relevant_docs": {"a": ["node-1"]}, "mode": "text"}
    mutate(data)
    with pytest.raises(InputError, match=message):
        QuestionSet.from_llama_dataset(data)


def test_llama_dataset_needs_texts():
    qs = QuestionSet([Question("a", None, ["1"], np.ones(3))])
    with pytest.raises(InputError, match="has no text"):
        qs.to_llama_dataset()
