import re

import pytest

from nudge_rag.errors import InputError
from nudge_rag.questions import generate_questions, offline_questions
from nudge_rag.questions.offline import STOP_WORDS


@pytest.fixture(scope="module")
def cranfield_texts(cranfield):
    return {d: cranfield.doc_text(d) for d in cranfield.corpus}


@pytest.fixture(scope="module")
def cranfield_questions(cranfield_texts):
    return offline_questions(cranfield_texts)


def _words(text):
    return {w.casefold() for w in re.findall(r"[^\W_][\w\-]*", text)}


def test_every_question_comes_from_its_chunk(cranfield_questions, cranfield_texts):
    qs = cranfield_questions
    assert len(qs) > 1.9 * len(cranfield_texts)
    styles = {q.metadata["style"] for q in qs}
    assert styles == {"sentence", "keywords"}
    for q in qs:
        assert q.source == "synthetic" and q.metadata["generator"] == "offline"
        chunk = q.metadata["chunk_id"]
        assert chunk in q.relevant and set(q.relevant.values()) == {1.0}
        text = cranfield_texts[chunk]
        if q.metadata["style"] == "sentence":
            assert q.text in " ".join(text.split())
            assert 4 <= len(q.text.split()) <= 24
        else:
            words = q.text.casefold().split()
            assert set(words) <= _words(text)
            assert not set(words) & STOP_WORDS
            assert 1 <= len(words) <= 8


def test_keyword_questions_point_back_to_their_chunk(cranfield_questions, cranfield_texts):
    # a keyword question should single out its chunk: among all chunks, its own shares the
    # largest fraction of the question's words (ties count against us)
    ids = list(cranfield_texts)
    vocab = [_words(cranfield_texts[d]) for d in ids]
    keyword_qs = [q for q in cranfield_questions if q.metadata["style"] == "keywords"][::7]
    hits = 0
    for q in keyword_qs:
        words = set(q.text.casefold().split())
        overlap = [len(words & v) for v in vocab]
        own = overlap[ids.index(q.metadata["chunk_id"])]
        hits += own == len(words) and sum(o == own for o in overlap) == 1
    assert hits / len(keyword_qs) > 0.9


def test_deterministic_and_order_independent(cranfield_texts):
    some = dict(list(cranfield_texts.items())[:300])
    a = offline_questions(some)
    b = offline_questions(some)
    assert a.ids == b.ids and a.texts == b.texts
    reversed_corpus = dict(reversed(list(some.items())))
    c = offline_questions(reversed_corpus)
    assert dict(zip(a.ids, a.texts, strict=True)) == dict(zip(c.ids, c.texts, strict=True))


def test_styles_and_counts(cranfield_texts):
    some = dict(list(cranfield_texts.items())[:50])
    sentences = offline_questions(some, questions_per_chunk=1, style="sentence")
    assert {q.metadata["style"] for q in sentences} == {"sentence"}
    assert len(sentences) <= 50
    keywords = offline_questions(some, 3, style="keywords", keywords=5)
    assert all(len(q.text.split()) <= 5 for q in keywords)
    assert len(keywords) > 100


def test_accepts_every_document_kind(cranfield_texts):
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from langchain_core.documents import Document as LCDocument
    from llama_index.core import Document as LIDocument
    from llama_index.core.schema import TextNode

    some = dict(list(cranfield_texts.items())[:20])
    reference = offline_questions(some)
    kinds = [
        list(some.items()),
        [LIDocument(text=t, id_=d) for d, t in some.items()],
        [TextNode(text=t, id_=d) for d, t in some.items()],
        [LCDocument(page_content=t, id=d) for d, t in some.items()],
        [LCDocument(page_content=t, metadata={"id": d}) for d, t in some.items()],
    ]
    for docs in kinds:
        got = offline_questions(docs)
        assert got.ids == reference.ids and got.texts == reference.texts
    assert generate_questions(some).texts == reference.texts  # no llm: offline is the default
    with pytest.warns(UserWarning, match="prompt= and cache= are ignored"):
        generate_questions(some, prompt="Ask about {context}")


def test_identical_chunks_share_their_questions():
    text = ("Panel flutter of thin skin panels was measured in a supersonic wind tunnel. "
            "The flutter boundary depends on the dynamic pressure and the panel aspect ratio.")
    qs = offline_questions({"a": text, "b": text, "c": "Heat transfer to a blunt nose cone "
                            "was measured at hypersonic speeds in a shock tunnel."})
    shared = [q for q in qs if q.metadata["chunk_id"] == "a"]
    assert shared and all(q.relevant == {"a": 1.0, "b": 1.0} for q in shared)


@pytest.mark.parametrize("documents, kwargs, message", [
    ({}, {}, "documents is empty"),
    ([("a", "lift of wings"), ("a", "drag of bodies")], {}, "id 'a' appears twice"),
    ([("a", None)], {}, "text must be a string"),
    ([42], {}, "cannot read int"),
    ({"a": "   "}, {}, "no chunk has text"),
    ({"a": "lift of wings"}, {"style": "poetic"}, "style='poetic'"),
    ({"a": "lift of wings"}, {"questions_per_chunk": 0}, "questions_per_chunk=0"),
])
def test_bad_input(documents, kwargs, message):
    with pytest.raises(InputError, match=message):
        offline_questions(documents, **kwargs)


def test_langchain_document_without_id():
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from langchain_core.documents import Document

    with pytest.raises(InputError, match=r"documents\[0\]: LangChain Document has no id"):
        offline_questions([Document(page_content="supersonic flutter of panels")])
