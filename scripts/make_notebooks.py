# ruff: noqa: E501  (the strings are notebook cells, kept as a reader would type them)
"""Write the notebooks in notebooks/ and execute them in place, so that their committed
outputs come from a real run. Needs nbformat, nbclient and ipykernel.

Run: PYTHONPATH=. python scripts/make_notebooks.py [NAME ...]
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"

SETUP = """import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import warnings
warnings.filterwarnings("ignore", category=UserWarning)"""

CORPUS = """from pydoc_data.topics import topics                     # ships with CPython
from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

names = sorted(topics)[:{n_topics}]
docs = [Document(text=topics[name], id_=name, metadata={{"source": name}}) for name in names]
nodes = SentenceSplitter(chunk_size=256, chunk_overlap=20).get_nodes_from_documents(docs)
nodes = nodes[:{max_chunks}]
for k, node in enumerate(nodes):                          # stable ids: reruns repeat exactly
    node.id_ = f"{{node.metadata['source']}}#{{k}}"
len(docs), len(nodes)"""

QUICKSTART = [
    ("md", "# Quickstart: NUDGE on a LlamaIndex index\n\n"
           "Build a small index with the offline all-MiniLM-L6-v2 model, make synthetic "
           "questions, fit NUDGE-N, compare before and after on held-out questions, look at "
           "how the validation metric depends on γ, and query through the nudged retriever. "
           "No network, no API key."),
    ("code", SETUP),
    ("code", CORPUS.format(n_topics=20, max_chunks=60)),
    ("md", "## An index with the offline model"),
    ("code", """from llama_index.core import VectorStoreIndex
from nudge_rag.local import llama_index_embedding

embed_model = llama_index_embedding()
index = VectorStoreIndex(nodes, embed_model=embed_model)"""),
    ("md", "## Synthetic questions, split group-aware\n\nThe offline generator needs no LLM. "
           "Each question points at the chunk it came from."),
    ("code", """from nudge_rag.questions import generate_questions

qs = generate_questions(nodes, questions_per_chunk=4, progress=False)
train, val, test = qs.split(train=0.6, val=0.2, test=0.2, seed=0)
print(len(qs), "questions:", len(train), "train,", len(val), "validation,", len(test), "test")
print(qs[0].text, "->", qs[0].relevant)"""),
    ("md", "## Fit NUDGE-N, then evaluate on the test questions"),
    ("code", """from nudge_rag import EmbeddingFinetuner

ft = EmbeddingFinetuner(index, show_progress=False)
delta = ft.fit(train, val)
print(delta.report())"""),
    ("code", """result = ft.evaluate(test, delta)
for name in result["before"]:
    print(f"{name:<10} {result['before'][name]:.3f} -> {result['after'][name]:.3f}")"""),
    ("md", "## How the validation metric depends on γ\n\nγ = 0 is the index as it is. The fit "
           "picks the γ with the best validation NDCG@10 (ties to the smaller γ)."),
    ("code", """import matplotlib.pyplot as plt

gammas = [0.0, 0.03, 0.06, 0.1, 0.2, 0.4]
train_q = train.with_embeddings(embed_model.embed_queries(list(train.texts)))
val_q = val.with_embeddings(embed_model.embed_queries(list(val.texts)))
test_q = test.with_embeddings(embed_model.embed_queries(list(test.texts)))
curve_val, curve_test = [], []
for g in gammas:
    fixed = EmbeddingFinetuner(index, gamma=g, show_progress=False).fit(train_q)
    curve_val.append(ft.evaluate(val_q, fixed)["after"]["ndcg@10"])
    curve_test.append(ft.evaluate(test_q, fixed)["after"]["ndcg@10"])
plt.figure(figsize=(5, 3))
plt.plot(gammas, curve_val, "o-", label="validation")
plt.plot(gammas, curve_test, "s--", label="test")
plt.axvline(delta.gamma, color="grey", lw=1, label=f"chosen γ = {delta.gamma:.3g}")
plt.xlabel("γ"); plt.ylabel("NDCG@10"); plt.legend(); plt.tight_layout()"""),
    ("md", "## A query engine over the nudged retriever\n\nThe overlay retriever writes "
           "nothing: it rescores the moved records at query time. `MockLLM` stands in for a "
           "real LLM here."),
    ("code", """from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

retriever = delta.as_retriever(index, similarity_top_k=3)
engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
question = test[0].text
response = engine.query(question)
print("question:", question)
for hit in response.source_nodes:
    print(f"{hit.score:.3f}", hit.node.node_id, "(relevant)" if hit.node.node_id in test[0].relevant else "")"""),
    ("md", "## Keep it\n\n`delta.save(dir)` stores the delta (JSON + npz, no pickle); "
           "`delta.apply(index)` writes a nudged copy of the index."),
    ("code", """import tempfile
from nudge_rag import NudgeDelta

folder = tempfile.mkdtemp()
delta.save(f"{folder}/delta")
nudged = NudgeDelta.load(f"{folder}/delta").apply(index)
nudged.storage_context.persist(f"{folder}/index-nudged")
sorted(os.listdir(folder))"""),
]

LANGCHAIN = [
    ("md", "# NUDGE with LangChain\n\nAn `InMemoryVectorStore` with the offline model, a fit, "
           "and an LCEL chain that retrieves through the nudged retriever."),
    ("code", SETUP),
    ("code", """from pydoc_data.topics import topics
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter
from nudge_rag.local import langchain_embeddings

splitter = RecursiveCharacterTextSplitter(chunk_size=900, chunk_overlap=0)
docs = []
for name in sorted(topics)[:20]:
    for k, text in enumerate(splitter.split_text(topics[name])):
        docs.append(Document(page_content=text, id=f"{name}#{k}", metadata={"source": name}))
docs = docs[:60]
store = InMemoryVectorStore(langchain_embeddings())
store.add_documents(docs, ids=[d.id for d in docs])
len(docs)"""),
    ("code", """from nudge_rag import EmbeddingFinetuner
from nudge_rag.questions import generate_questions

qs = generate_questions(docs, questions_per_chunk=4, progress=False)
train, val, test = qs.split(train=0.6, val=0.2, test=0.2, seed=0)
ft = EmbeddingFinetuner(store, show_progress=False)
delta = ft.fit(train, val)
print(delta.report())
result = ft.evaluate(test, delta)
{name: (round(result["before"][name], 3), round(result["after"][name], 3))
 for name in result["before"]}"""),
    ("md", "## An LCEL chain with the nudged retriever\n\nA stand-in LLM (a `RunnableLambda`) "
           "shows the prompt that a real chat model would get."),
    ("code", """from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

retriever = delta.as_retriever(store, k=2)
prompt = ChatPromptTemplate.from_template("Answer from the context.\\n{context}\\nQuestion: {question}")
fake_llm = RunnableLambda(lambda p: f"[an LLM would answer from {len(p.to_string())} characters of prompt]")
chain = ({"context": retriever | (lambda ds: "\\n".join(d.id for d in ds)),
          "question": RunnablePassthrough()} | prompt | fake_llm)
question = test[0].text
print(question)
print(chain.invoke(question))
[d.id for d in retriever.invoke(question)], list(test[0].relevant)"""),
    ("md", "## Write the vectors and undo\n\n`apply` returns a new store; `inplace=True` "
           "changes this one and `revert` restores it."),
    ("code", """import numpy as np

rid = delta.ids[0]
before = np.array(store.store[rid]["vector"])
delta.apply(store, inplace=True)
moved = np.array(store.store[rid]["vector"])
delta.revert(store)
restored = np.array(store.store[rid]["vector"])
float(np.abs(moved - before).max()) > 0, bool(np.allclose(restored, before))"""),
]

LOGS = [
    ("md", "# Logged questions: import, split by time, fit, evaluate\n\nA small query log "
           "(written here for the example) with what was shown, what was clicked and a "
           "thumbs rating. Real logs work the same way: rename the fields to match yours."),
    ("code", SETUP),
    ("code", CORPUS.format(n_topics=20, max_chunks=60)),
    ("code", """from llama_index.core import VectorStoreIndex
from nudge_rag.local import llama_index_embedding

index = VectorStoreIndex(nodes, embed_model=llama_index_embedding())"""),
    ("md", "## A log\n\nThe \"users\" here ask the offline generator's questions, in random "
           "order, over three weeks; they click the chunk that answered them and sometimes "
           "rate it."),
    ("code", """import json, tempfile
import numpy as np
from datetime import datetime, timedelta, timezone
from nudge_rag.questions import offline_questions

asked = offline_questions(nodes, 3)
order = np.random.default_rng(0).permutation(len(asked))  # questions come in random order
start = datetime(2025, 1, 1, tzinfo=timezone.utc)
rows = []
for k, i in enumerate(order):
    q = asked[int(i)]
    answer = next(iter(q.relevant))
    rows.append({"q": q.text, "retrieved": [answer], "opened": [answer],
                 "rating": "up" if k % 3 == 0 else "", "ts": (start + timedelta(hours=3 * k)).isoformat()})
log = tempfile.mktemp(suffix=".jsonl")
with open(log, "w") as fh:
    fh.writelines(json.dumps(r) + "\\n" for r in rows)
print(len(rows), "log rows from", rows[0]["ts"][:10], "to", rows[-1]["ts"][:10])"""),
    ("code", """from nudge_rag.questions import import_logs

qs, report = import_logs(log, fields={"query": "q", "shown": "retrieved", "clicked": "opened",
                                      "feedback": "rating", "timestamp": "ts"},
                         known_ids=index.vector_store.data.embedding_dict.keys())
print(report.summary())
print(qs[0].text, qs[0].relevant, qs[0].metadata["timestamp"])"""),
    ("md", "## Split by time\n\nFit on the past, choose γ on the recent past, test on the "
           "newest questions."),
    ("code", """times = sorted(q.metadata["timestamp"] for q in qs)
val_start, test_start = times[int(0.6 * len(times))], times[int(0.8 * len(times))]
train, val, test = qs.split_by_time(val_start=val_start, test_start=test_start, drop_leaked=True)
print(len(train), "train,", len(val), "validation,", len(test), "test; test from", test_start[:10])"""),
    ("code", """from nudge_rag import EmbeddingFinetuner

ft = EmbeddingFinetuner(index, show_progress=False)
delta = ft.fit(train, val)
print(delta.report())
result = ft.evaluate(test, delta)
{name: (round(result["before"][name], 3), round(result["after"][name], 3))
 for name in result["before"]}"""),
]

SCIFACT = [
    ("md", "# SciFact benchmark walk-through\n\nThe paper's protocol on BEIR SciFact: pool the "
           "labelled queries, split 70/10/20 with seed 0, fit on all-MiniLM-L6-v2 embeddings, "
           "report test NDCG@10. `fetch` downloads SciFact from BEIR's public mirror once "
           "(the zip is checked against its published md5), caches it and encodes it with the "
           "offline model (a few minutes on a laptop CPU); later runs read the cache. "
           "`nudge-rag datasets get scifact` does the same from a shell."),
    ("code", SETUP),
    ("code", """from nudge_rag.datasets import fetch, load_split

s = load_split(fetch("scifact"))
print(s.doc_emb.shape[0], "abstracts;", len(s.train_rel), "train,", len(s.val_rel),
      "validation,", len(s.test_rel), "test questions")"""),
    ("code", """import numpy as np
from nudge_rag import NudgeM, NudgeN
from nudge_rag.core.metrics import evaluate_topk
from nudge_rag.core.topk import topk_scan

def test_ndcg(doc_emb):                     # inner product: right for NudgeM's output too
    _, rows = topk_scan(doc_emb, s.test_q, 10)
    return evaluate_topk(rows, s.test_rel, ("ndcg@10",), n_rows=len(doc_emb))["ndcg@10"]

unit = s.doc_emb / np.linalg.norm(s.doc_emb, axis=1, keepdims=True)
print(f"no fine-tuning: test NDCG@10 {test_ndcg(unit):.3f}")
for est in (NudgeN(), NudgeM()):
    est.fit(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel)
    print(f"{type(est).__name__}: gamma={est.gamma_:.3g}, {len(est.rows_)} abstracts moved, "
          f"test NDCG@10 {test_ndcg(est.transform(s.doc_emb)):.3f}")"""),
]

NOTEBOOKS = {"01_quickstart_llama_index": QUICKSTART, "02_langchain": LANGCHAIN,
             "03_logged_questions": LOGS, "04_scifact_benchmark": SCIFACT}


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, src in NOTEBOOKS[name]:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else \
            nbformat.v4.new_code_cell(src)
        nb.cells.append(cell)
    return nb


def offline_scifact_cache() -> None:
    """Point ``fetch`` at a cache that already holds SciFact (the repository's shared copy, if
    any), so that executing the notebooks never downloads."""
    import os
    import tempfile

    from nudge_rag.datasets import CACHE_ENV, data_root

    root = data_root()
    if root is None or not (root / "scifact" / "corpus.jsonl").is_file():
        return  # notebook 04 will download SciFact
    cache = Path(tempfile.mkdtemp(prefix="nudge-rag-cache-"))
    (cache / "datasets").mkdir()
    (cache / "datasets" / "scifact").symlink_to(root / "scifact")
    os.environ[CACHE_ENV] = str(cache)


def main(names) -> None:
    NB.mkdir(exist_ok=True)
    offline_scifact_cache()
    for name in names or NOTEBOOKS:
        nb = build(name)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NB)}}).execute()
        for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
            cell["id"] = f"cell-{i}"
        nbformat.write(nb, NB / f"{name}.ipynb")
        print("wrote", NB / f"{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
