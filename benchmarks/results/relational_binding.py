"""Can the pixel RN bind a colour to its object? One question family at a time.

    python benchmarks/results/relational_binding.py --subtypes 1      # "is <colour> on the left?"
    python benchmarks/results/relational_binding.py --subtypes 1,2    # left or top
    python benchmarks/results/relational_binding.py --subtypes 1,2 --fp32          # no bf16
    python benchmarks/results/relational_binding.py --subtypes 1,2 --g-hidden 256  # wider g

Trains the recipe's RelationNetwork (g 4 x 128, batchnorm_first, relation_norm, bf16; see
the options) on Sort-of-CLEVR images with questions about a random colour of the chosen
non-relational subtypes only (0 shape, 1 left, 2 top), 64 images x 1 question per step,
Adam, one thread, and prints the test accuracy on 1,000 such questions every 250 steps.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from torchkata.data import SortOfClevr, load_sort_of_clevr
from torchkata.data.sort_of_clevr import answer_questions
from torchkata.relational import RelationNetwork
from torchkata.runs import bf16_autocast


def questions(data: SortOfClevr, subtypes: list[int], n: int, gen: torch.Generator):
    """n random (image, question, answer) triples of the given non-relational subtypes."""
    image = torch.randint(len(data), (n,), generator=gen)
    color = torch.randint(6, (n,), generator=gen)
    subtype = torch.tensor(subtypes)[torch.randint(len(subtypes), (n,), generator=gen)]
    q = torch.zeros(n, 11)
    q[torch.arange(n), color] = 1
    q[:, 6] = 1  # non-relational
    q[torch.arange(n), 8 + subtype] = 1
    answer = answer_questions(q[:, None], data.shapes[image], data.centers[image])[:, 0]
    return data.images[image].float() / 255, q, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subtypes", default="1", help="comma-separated: 0 shape, 1 left, 2 top")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--g-hidden", type=int, default=128, help="width of g's 4 layers")
    parser.add_argument("--fp32", action="store_true", help="float32 instead of bf16 autocast")
    args = parser.parse_args()
    subtypes = [int(s) for s in args.subtypes.split(",")]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, test = load_sort_of_clevr()
    model = RelationNetwork(
        g_hidden=args.g_hidden, f_hidden=256, batchnorm_first=True, relation_norm=True
    )
    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    autocast = bf16_autocast(torch.device("cpu"), not args.fp32)
    gen, test_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    x_test, q_test, y_test = questions(test, subtypes, 1000, test_gen)
    for step in range(1, args.steps + 1):
        x, q, y = questions(train, subtypes, 64, gen)
        with autocast():
            logits = model(x, q)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 250 == 0:
            model.eval()
            with torch.no_grad(), autocast():
                pred = torch.cat(
                    [model(x_test[i : i + 100], q_test[i : i + 100]) for i in range(0, 1000, 100)]
                )
            model.train()
            accuracy = (pred.argmax(1) == y_test).float().mean().item()
            print(f"step {step}: train loss {loss.item():.3f}, test accuracy {100 * accuracy:.1f}%")


if __name__ == "__main__":
    main()
