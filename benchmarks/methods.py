"""Registry of the compared methods. Each one fits on the split's training (and validation)
questions and returns the record and test-question vectors to score by inner product."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nudge_rag.datasets import ArraySplit, BeirDataset

from .adaptor import AdaptorConfig, fit_adaptor
from .ptft import PtftConfig, fit_ptft


@dataclass
class BenchData:
    """One dataset ready to benchmark: texts (for PTFT), the split, the base model."""

    name: str
    data: BeirDataset
    split: ArraySplit
    model: str
    model_path: str
    source: str                       # where the base embeddings came from


@dataclass
class BenchConfig:
    adaptor: AdaptorConfig = field(default_factory=AdaptorConfig)
    ptft: PtftConfig = field(default_factory=PtftConfig)
    log: Callable = print


@dataclass
class MethodOutput:
    """What a method leaves to score: record and test-question vectors (by inner product),
    or, where it ranks the test questions itself (the query memory), their ranked rows."""

    doc_emb: np.ndarray
    test_q: np.ndarray
    fit_s: float
    info: dict = field(default_factory=dict)
    ranked: np.ndarray | None = None


@dataclass
class Method:
    name: str
    label: str
    family: str                       # "none", "nudge-rag", "nudge-ft", "baseline"
    run: Callable[[BenchData, BenchConfig], MethodOutput]
    needs: tuple[str, ...] = ()       # importable modules the method requires


def _no_finetune(bench: BenchData, cfg: BenchConfig) -> MethodOutput:
    return MethodOutput(bench.split.doc_emb, bench.split.test_q, 0.0)


#: the paper's protocol: γ on the validation questions alone, no refit, no query memory
PAPER_PROTOCOL = {"selection": "validation", "refit": False, "memory": False}
#: ranked rows kept per test question (the deepest metric the benchmarks report)
RANK_DEPTH = 10


def _nudge_rag(variant: str, params: dict):
    """A nudge-rag estimator with ``params``. Paper-protocol rows leave vectors to score;
    the others rank the test questions with ``top_k`` (the memory is not in the vectors)."""
    def run(bench: BenchData, cfg: BenchConfig) -> MethodOutput:
        import nudge_rag

        s = bench.split
        estimator_cls = nudge_rag.NudgeN if variant == "N" else nudge_rag.NudgeM
        start, cpu = time.perf_counter(), time.process_time()
        est = estimator_cls(**params).fit(s.doc_emb, s.train_q, s.train_rel, s.val_q,
                                          s.val_rel)
        ranked = None
        if params.get("memory", True) is False and not params.get("refit", True):
            docs = est.transform(s.doc_emb)
        else:  # the memory is not in the vectors: top_k ranks (query time, not fit time)
            docs = s.doc_emb
        fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        if docs is s.doc_emb:
            ranked = est.top_k(s.doc_emb, s.test_q, RANK_DEPTH)[0]
        info = {"gamma": float(est.gamma_), "alpha": float(est.alpha_), "fit_cpu_s": cpu_s,
                "n_moved": int(len(est.rows_)), "selection_metric": est.report_.get("metric"),
                "n_memory_questions": est.report_.get("n_memory_questions", 0)}
        return MethodOutput(docs, s.test_q, fit_s, info, ranked)
    return run


def _nudge_ft(variant: str):
    def run(bench: BenchData, cfg: BenchConfig) -> MethodOutput:
        import torch
        from nudge import NUDGEM, NUDGEN

        s = bench.split
        # nudge-ft takes answer lists (no grades) and fails on mixed dtypes
        train = {"q_embs": s.train_q.astype(np.float32), "q_ans_indx": [list(r) for r in
                                                                      s.train_rel]}
        val = {"q_embs": s.val_q.astype(np.float32), "q_ans_indx": [list(r) for r in s.val_rel]}
        finetuner = (NUDGEN if variant == "N" else NUDGEM)(device=torch.device("cpu"))
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):   # it prints progress lines
            docs = finetuner.finetune_embeddings(s.doc_emb.astype(np.float32), train, val)
        fit_s = time.perf_counter() - start
        return MethodOutput(np.asarray(docs, dtype=np.float32), s.test_q, fit_s)
    return run


def _adaptor(bench: BenchData, cfg: BenchConfig) -> MethodOutput:
    s = bench.split
    result = fit_adaptor(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel, cfg.adaptor)
    info = {"steps": result.steps, "best_step": result.best_step,
            "val_hit@1": result.best_val_hit1}
    return MethodOutput(s.doc_emb, (s.test_q @ result.matrix.T).astype(np.float32),
                        result.fit_s, info)


def _ptft(bench: BenchData, cfg: BenchConfig) -> MethodOutput:
    from .encode import encode_texts

    s = bench.split
    texts = bench.data.queries
    doc_texts = [bench.data.doc_text(d) for d in s.doc_ids]
    result = fit_ptft(bench.model_path, doc_texts, s.doc_emb,
                      [texts[q] for q in s.query_ids["train"]], s.train_rel,
                      [texts[q] for q in s.query_ids["val"]], s.val_q, s.val_rel,
                      cfg.ptft, log=cfg.log)
    # the fine-tuned model must embed the whole corpus again before it can be evaluated;
    # when validation kept the untouched base model, its embeddings are the split's own
    start = time.perf_counter()
    if result.best_step == 0:
        docs, test_q = s.doc_emb, s.test_q
    else:
        docs = encode_texts(result.model, doc_texts, batch_size=32)
        test_q = encode_texts(result.model, [texts[q] for q in s.query_ids["test"]],
                              batch_size=64)
    encode_s = time.perf_counter() - start
    info = {"steps": result.steps, "step_cap": cfg.ptft.max_steps,
            "time_cap_s": cfg.ptft.max_train_s, "stopped_by": result.stopped_by,
            "best_step": result.best_step, "pool_val_hit@1": result.best_val_hit1,
            "val_pool_size": result.pool_size, "history": result.history,
            "train_max_seq_len": cfg.ptft.train_max_seq_len, "batch_size": cfg.ptft.batch_size,
            "reencode_s": encode_s}
    return MethodOutput(docs, test_q, result.train_s, info)


_TORCH = ("torch",)
METHODS: dict[str, Method] = {m.name: m for m in [
    Method("none", "No fine-tuning", "none", _no_finetune),
    Method("nudge-m", "NudgeM (nudge-rag, paper protocol)", "nudge-rag",
           _nudge_rag("M", PAPER_PROTOCOL)),
    Method("nudge-n", "NudgeN (nudge-rag, paper protocol)", "nudge-rag",
           _nudge_rag("N", PAPER_PROTOCOL)),
    Method("nudge-m-compat", "NudgeM (nudge-rag, nudge-ft compat)", "nudge-rag",
           _nudge_rag("M", {**PAPER_PROTOCOL, "nudge_ft_compat": True})),
    Method("nudge-n-compat", "NudgeN (nudge-rag, nudge-ft compat)", "nudge-rag",
           _nudge_rag("N", {**PAPER_PROTOCOL, "nudge_ft_compat": True})),
    Method("nudge-n-default", "NudgeN (nudge-rag, default: CV + refit + memory)", "nudge-rag",
           _nudge_rag("N", {})),
    Method("nudge-n-nomem", "NudgeN (nudge-rag, default without memory)", "nudge-rag",
           _nudge_rag("N", {"memory": False})),
    Method("nudge-m-default", "NudgeM (nudge-rag, default: CV + refit + memory)", "nudge-rag",
           _nudge_rag("M", {})),
    Method("nudge-ft-m", "NUDGE-M (nudge-ft 0.1.2)", "nudge-ft", _nudge_ft("M"),
           ("nudge", "torch")),
    Method("nudge-ft-n", "NUDGE-N (nudge-ft 0.1.2)", "nudge-ft", _nudge_ft("N"),
           ("nudge", "torch")),
    Method("adaptor", "Adaptor (linear query map)", "baseline", _adaptor, _TORCH),
    Method("ptft", "PTFT (full fine-tuning)", "baseline", _ptft,
           ("torch", "sentence_transformers")),
]}


def missing_requirement(method: Method) -> str | None:
    """Name of the first module the method needs that cannot be imported, else None."""
    import importlib.util

    for module in method.needs:
        if importlib.util.find_spec(module) is None:
            return module
    if method.family == "nudge-rag":
        try:
            import nudge_rag

            nudge_rag.NudgeN  # noqa: B018 - the engine may be absent on an old branch
        except (ImportError, AttributeError):
            return "nudge_rag.core.estimators"
    return None
