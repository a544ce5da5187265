"""Issue 16: one question type (``QuestionSet``), one way in (``QuestionSet.coerce``) and one
id check, whatever door the questions come through: the API, the finetuner or the CLI."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import nudge_rag
from nudge_rag.errors import InputError, MismatchError
from nudge_rag.questions import QuestionSet

ROOT = Path(nudge_rag.__file__).parent
#: a class that holds questions by name; anything else about questions is named otherwise
_QUESTION_TYPE = re.compile(r"(Question|Questions|QuestionSet)$")
#: functions that turn what a caller hands in into questions
_COERCION = re.compile(r"^_?(coerce|(as|to)_?(question|questions|question_set))$")


def _definitions():
    """``(module, qualified name, node)`` of every class and function in the package."""
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        todo = [(tree, "")]
        while todo:
            node, prefix = todo.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    yield module, name, child
                    todo.append((child, f"{name}."))
                else:
                    todo.append((child, prefix))


def test_one_question_class_and_one_coercion_entry_point():
    defs = list(_definitions())
    types = {f"{m}.{n}" for m, n, node in defs
             if isinstance(node, ast.ClassDef) and _QUESTION_TYPE.search(node.name)}
    assert types == {"nudge_rag.questions.question.Question",
                     "nudge_rag.questions.question_set.QuestionSet"}
    coercions = {f"{m}.{n}" for m, n, node in defs
                 if not isinstance(node, ast.ClassDef) and _COERCION.match(node.name)}
    # coerce's own helpers stay private, beside it
    public = {c for c in coercions if not c.startswith("nudge_rag.questions.question_set._")}
    assert public == {"nudge_rag.questions.question_set.QuestionSet.coerce"}
    assert not (ROOT / "question_input.py").exists()


def test_the_finetuner_takes_questions_only_through_coerce():
    tree = ast.parse((ROOT / "finetuner.py").read_text(encoding="utf-8"))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "QuestionSet"}
    assert used == {"coerce"}
    made = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name) and node.func.id in ("Question", "QuestionSet")]
    assert not made


@pytest.fixture(scope="module")
def store(cranfield):
    """A LangChain in-memory store over 40 Cranfield abstracts (hashed-word embeddings)."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from tests.fakes import CountingLangChainEmbeddings

    ids = sorted(cranfield.corpus, key=int)[:40]
    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=64))
    store.add_documents([Document(id=i, page_content=cranfield.doc_text(i)) for i in ids],
                        ids=ids)
    return store


def _doors(store, tmp_path):
    """Every way questions come in, each a function of ``{id: grade}`` that reads one
    question naming those records."""
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.cli.fit_cmd import read_questions
    from nudge_rag.cli.indexes import Loaded

    text = "pressure distribution on a slender body of revolution"
    known = list(store.store)

    def jsonl(relevant):
        path = tmp_path / "q.jsonl"
        path.write_text(json.dumps({"id": "q0", "question": text, "relevant": relevant}) + "\n")
        return path

    return {
        "coerce": lambda rel: QuestionSet.coerce([(text, rel)]).validate(known),
        "rows": lambda rel: QuestionSet.coerce([{"question": text, "relevant": rel}])
        .validate(known),
        "jsonl": lambda rel: QuestionSet.from_jsonl(jsonl(rel), known_ids=known),
        "finetuner": lambda rel: EmbeddingFinetuner(store, gamma=0.1, memory=False,
                                                    show_progress=False).fit([(text, rel)]),
        "cli": lambda rel: read_questions(jsonl(rel), Loaded(store, "langchain",
                                                             tmp_path / "index", None)),
    }


DOORS = ("coerce", "rows", "jsonl", "finetuner", "cli")


@pytest.mark.parametrize("door", DOORS)
def test_every_door_refuses_a_zero_grade_the_same_way(store, tmp_path, door):
    # issue 16: {'a': 0, 'b': 1} became {'b': 1} through one reader and raised through another
    read = _doors(store, tmp_path)[door]
    with pytest.raises(InputError, match=r"record '1'.*finite number > 0") as caught:
        read({"1": 0, "2": 1})
    assert type(caught.value) is InputError


@pytest.mark.parametrize("door", DOORS)
def test_every_door_checks_ids_with_one_error(store, tmp_path, door):
    read = _doors(store, tmp_path)[door]
    with pytest.raises(MismatchError, match=r"relevant ids 'zzz' \(1 record id\) are not"):
        read({"1": 1, "zzz": 1})
    read({"1": 1, "2": 2})  # ids the store holds pass


def test_the_id_check_is_written_once():
    # the message of the id check is composed in one function; any other place that builds
    # it is a second id check
    owners = set()
    for module, name, node in _definitions():
        if isinstance(node, ast.ClassDef):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                    and "relevant ids" in sub.value:
                owners.add(f"{module}.{name}")
    assert owners == {"nudge_rag.questions.question.check_known_ids"}
