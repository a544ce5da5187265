"""Markdown tables and requirement checks from a run's results."""

from __future__ import annotations

import math

#: the nudge-ft row each method is compared with (same variant; N for everything else)
NUDGE_FT_PEER = {"nudge-m": "nudge-ft-m", "nudge-m-compat": "nudge-ft-m",
                 "nudge-ft-m": "nudge-ft-m"}


def _ratio(a, b) -> float:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return float("nan")
    return a / b


def _fmt(x, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def dataset_table(rows: dict, labels: dict) -> str:
    """``rows[method] = {"ndcg@10", "recall@1", "recall@10", "fit_s", ...}``."""
    head = ("| method | NDCG@10 | R@1 | R@10 | fit s | NDCG ÷ nudge-ft | NDCG ÷ PTFT "
            "| fit speed-up vs nudge-ft | fit speed-up vs PTFT |")
    lines = [head, "|" + "---|" * 9]
    ptft = rows.get("ptft")
    for method, r in rows.items():
        if "error" in r or "skipped" in r:
            reason = r.get("error") or r.get("skipped")
            lines.append(f"| {labels.get(method, method)} | {reason} |" + " |" * 8)
            continue
        peer = rows.get(NUDGE_FT_PEER.get(method, "nudge-ft-n"))
        peer_ok = peer is not None and "ndcg@10" in peer
        ptft_ok = ptft is not None and "ndcg@10" in ptft
        fit = r["fit_s"]
        cells = [
            labels.get(method, method), _fmt(r["ndcg@10"], ".3f"), _fmt(r["recall@1"], ".3f"),
            _fmt(r["recall@10"], ".3f"), _fmt(fit, ".3f" if fit < 10 else ".0f"),
            _fmt(_ratio(r["ndcg@10"], peer["ndcg@10"]) if peer_ok else None, ".3f"),
            _fmt(_ratio(r["ndcg@10"], ptft["ndcg@10"]) if ptft_ok else None, ".3f"),
            _fmt(_ratio(peer["fit_s"], fit) if peer_ok and fit > 0 else None, ".2f"),
            _fmt(_ratio(ptft["fit_s"], fit) if ptft_ok and fit > 0 else None, ",.0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(dataset: str, rows: dict) -> list[tuple[str, bool | None]]:
    """The issue's acceptance checks that one dataset's rows can answer (None: not measured)."""
    def ndcg(m):
        return rows.get(m, {}).get("ndcg@10")

    out = []
    n, ft_n = ndcg("nudge-n"), ndcg("nudge-ft-n")
    if n is not None and ft_n is not None:
        out.append((f"{dataset}: NudgeN NDCG@10 {n:.4f} ≥ nudge-ft NUDGE-N {ft_n:.4f}",
                    n >= ft_n - 1e-9))
    for base in ("adaptor", "ptft"):
        b = ndcg(base)
        if n is not None and b is not None:
            out.append((f"{dataset}: NudgeN {n:.4f} > {base} {b:.4f}", n > b))
    ptft = rows.get("ptft", {})
    if n is not None and "fit_s" in ptft:
        speed = ptft["fit_s"] / max(rows["nudge-n"]["fit_s"], 1e-12)
        out.append((f"{dataset}: NudgeN fits {speed:,.0f}× faster than PTFT "
                    f"({rows['nudge-n']['fit_s']:.3f} s vs {ptft['fit_s']:.0f} s), "
                    "at equal or better NDCG@10", speed >= 1000 and n >= ptft["ndcg@10"]))
    order = ["nudge-n", "nudge-m", "adaptor", "none"]
    values = [ndcg(m) for m in order]
    if all(v is not None for v in values):
        held = values[0] > values[1] > values[2] > values[3]
        out.append((f"{dataset}: paper order NUDGE-N > NUDGE-M > Adaptor > none "
                    f"({' > '.join(f'{v:.3f}' for v in values)})", held))
    return out
