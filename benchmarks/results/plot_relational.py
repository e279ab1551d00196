"""Plot the pixel learning curves of the kept relational runs.

    python benchmarks/results/plot_relational.py

Reads every ``relational-*/metrics.jsonl`` beside this file and writes
``relational_pixels_curves.png``: test accuracy per epoch, relational and non-relational.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for folder in sorted(HERE.glob("relational-*/")):
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        records = [r for r in records if r.get("part") == "pixels" and "relational" in r]
        for ax, kind in zip(axes, ("non-relational", "relational"), strict=True):
            # Epoch 0 (after a curriculum of "left" questions) has no relational answers.
            shown = [r for r in records if kind == "non-relational" or r["epoch"] > 0]
            ax.plot([r["epoch"] for r in shown], [r[kind] for r in shown], marker="o", ms=3,
                    label=folder.name)  # fmt: skip
    for ax, kind in zip(axes, ("non-relational", "relational"), strict=True):
        ax.axhline(94, color="k", ls="--", lw=1, label="RN, paper (> 94)")
        if kind == "relational":
            ax.axhline(63, color="gray", ls=":", lw=1, label="CNN+MLP, paper (63)")
        ax.set(title=f"{kind} questions (test)", xlabel="epoch (196,000 questions)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "relational_pixels_curves.png", dpi=110)


if __name__ == "__main__":
    main()
