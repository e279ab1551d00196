"""How precisely must positions be known to answer "closest" and "furthest"?

    python benchmarks/results/relational_position_precision.py

On the recipe's Sort-of-CLEVR split (seed 0; 9,800 training, 200 test images), scores
answerers that never learn anything: the majority shape of the other five objects, and
the true answer recomputed from centres moved by Gaussian noise (σ in pixels, one seeded
draw) or rounded to the centre of the 15-px cell of a 5x5 grid (the RN's feature map).
"""

from __future__ import annotations

import torch

from torchkata.data.sort_of_clevr import QUESTION_TYPES, load_sort_of_clevr, question_type


def scores(data, kind: str) -> dict[str, float]:
    """Accuracy (%) of each answerer on the ``kind`` ("closest" or "furthest") questions."""
    image, slot = (question_type(data.questions) == QUESTION_TYPES.index(kind)).nonzero(
        as_tuple=True
    )
    rows = torch.arange(len(image))
    reference = data.questions[image, slot, :6].argmax(-1)  # (M,)
    answers = data.answers[image, slot]  # 2 square, 3 circle
    shapes = data.shapes[image]  # (M, 6): 0 square, 1 circle
    centers = data.centers[image].float()  # (M, 6, 2)
    others = torch.ones_like(shapes, dtype=torch.bool)
    others[rows, reference] = False
    circles = (shapes * others).sum(1)
    result = {"majority of the other five": torch.where(2 * circles > 5, 3, 2)}

    def answer_from(positions: torch.Tensor) -> torch.Tensor:
        distance = (positions - positions[rows, reference][:, None]).norm(dim=-1)  # (M, 6)
        distance[rows, reference] = float("inf") if kind == "closest" else -1.0
        pick = distance.argmin(1) if kind == "closest" else distance.argmax(1)
        return 2 + shapes[rows, pick]

    gen = torch.Generator().manual_seed(0)
    for sigma in (1, 2, 4, 7.5, 15):
        noise = torch.randn(centers.shape, generator=gen)
        result[f"centres + noise, sigma {sigma} px"] = answer_from(centers + sigma * noise)
    result["centre of the 15-px cell"] = answer_from((centers // 15) * 15 + 7)
    return {name: 100 * (pred == answers).float().mean().item() for name, pred in result.items()}


def main() -> None:
    train, test = load_sort_of_clevr(9800, 200, seed=0)
    for split, data in (("train", train), ("test", test)):
        table = {kind: scores(data, kind) for kind in ("closest", "furthest")}
        print(f"\n{split} ({len(data)} images) | closest | furthest")
        for name in table["closest"]:
            print(f"{name} | {table['closest'][name]:.1f} | {table['furthest'][name]:.1f}")


if __name__ == "__main__":
    main()
