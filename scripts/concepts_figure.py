"""Draw docs/img/nudge.png: records on the unit circle moving toward their questions.

Run: python scripts/concepts_figure.py (needs matplotlib).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def unit(angle):
    return np.array([np.cos(angle), np.sin(angle)])


OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "nudge.png"


def main(out=OUT):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    gamma_n, gamma_m = 0.35, 0.45
    for ax, method in zip(axes, ("NUDGE-N", "NUDGE-M")):
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), color="0.85", lw=1)
        # records that no training question names: they stay where they are
        for a in (2.3, 2.8, 3.6, 4.4, 5.3):
            ax.plot(*unit(a), "o", color="0.6", ms=7)
        # one record and the training questions that it answers
        e = unit(0.55)
        questions = [0.9 * unit(1.35), 0.75 * unit(1.55), 0.85 * unit(1.15)]
        for q in questions:
            ax.plot(*q, "^", color="tab:orange", ms=9)
        g = np.sum(questions, axis=0)
        g_hat = g / np.linalg.norm(g)
        if method == "NUDGE-N":
            # along the circle: the largest step with |e' - e|^2 <= gamma
            u = g_hat - (g_hat @ e) * e
            u /= np.linalg.norm(u)
            new = (1 - gamma_n / 2) * e + np.sqrt(gamma_n * (4 - gamma_n)) / 2 * u
            a0, a1 = np.arctan2(e[1], e[0]), np.arctan2(new[1], new[0])
            arc = np.linspace(a0, a1, 50)
            ax.plot(np.cos(arc), np.sin(arc), color="tab:blue", lw=2.5)
            ax.set_title("NUDGE-N: moves along the sphere, stays unit-norm")
        else:
            new = e + gamma_m * g_hat
            ax.plot([e[0], new[0]], [e[1], new[1]], color="tab:blue", lw=2.5)
            ax.set_title("NUDGE-M: e′ = e + γ·G/|G| (leaves the sphere)")
        ax.annotate("", xy=new, xytext=new - 0.05 * (new - e) / np.linalg.norm(new - e),
                    arrowprops={"arrowstyle": "-|>", "color": "tab:blue", "lw": 2})
        ax.plot(*e, "o", color="tab:blue", ms=9, alpha=0.35)
        ax.plot(*new, "o", color="tab:blue", ms=9)
        ax.text(*(e * 1.12 + [0.02, -0.08]), "record e", color="tab:blue")
        ax.text(*(new * 1.08 + [0.05, 0.02]), "nudged e′", color="tab:blue")
        ax.text(-1.3, 1.15, "▲ training questions that name the record", color="tab:orange")
        ax.text(-1.1, -1.3, "grey: records no question names (never move)", color="0.4",
                fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-1.4, 1.6)
        ax.set_ylim(-1.4, 1.4)
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
