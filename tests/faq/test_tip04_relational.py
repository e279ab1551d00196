"""Executable FAQ, tip 4 (Relation Networks): claims 4.1–4.3 of FAQ_CLAIMS.md.

4.1 is the document's pseudo-code filled in and checked against the model, plus why the
coordinates it leaves out are needed. 4.2 is measured at the scale of a unit test on
Sort-of-CLEVR's state descriptions given as sets (objects in random order, as a CNN or a
detector hands them over); the paper's pixel experiment is the recipe's full preset
(docs/tip04-relational.md has its numbers). 4.3 is measured on counting, where the three
aggregations differ; on Sort-of-CLEVR they do not (every object has its own colour), as
the recipe's ablation shows.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torchkata.data.sort_of_clevr import generate, question_type
from torchkata.relational import RelationNetwork, StateMLP, StateRelationNetwork


# ---------------------------------------------------------------- 4.1
def test_4_1_the_documents_pseudo_code_filled_in_is_the_model():
    """objects = cnn(x) (feature-map cells + coordinates); pairs = every ordered pair with
    the question; relations = g(pairs); output = f(relations.sum(dim=1))."""
    torch.manual_seed(0)
    model = RelationNetwork(conv_channels=8, g_hidden=16, f_hidden=16).double().eval()
    data = generate(3, seed=0)
    x, q = data.images.double() / 255, data.questions[:, 0].double()  # (3, 3, 75, 75), (3, 11)
    # 1. object extraction: 5 x 5 cells of 8 channels, each with its (x, y) in [-1, 1]
    objects = model.encoder(x)
    assert objects.shape == (3, 25, 8 + 2)
    # 2. pairs: [o_i; o_j; q] for all 25 x 25 ordered pairs
    i, j = torch.meshgrid(torch.arange(25), torch.arange(25), indexing="ij")
    qs = q[:, None].expand(-1, 625, -1)
    pairs = torch.cat([objects[:, i.flatten()], objects[:, j.flatten()], qs], dim=2)
    # 3. g on every pair, 4. sum over pairs, then f
    relations = model.relation.g(pairs)  # (3, 625, 16)
    output = model.f(relations.sum(dim=1))
    torch.testing.assert_close(model(x, q), output, rtol=1e-12, atol=1e-12)


def test_4_1_without_coordinates_the_rn_cannot_tell_where_an_object_is():
    """g sees a set of pairs and the sum forgets their order: without the (x, y) of each
    cell, moving the picture's contents between cells cannot change the answer to "is it
    on the left?". With the coordinates it does."""
    torch.manual_seed(1)
    model = StateRelationNetwork(object_dim=4, g_hidden=16, f_hidden=16).double()
    cells = torch.randn(1, 25, 2).double()  # cell contents
    grid = torch.linspace(-1, 1, 5, dtype=torch.float64)
    coords = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).reshape(1, 25, 2)
    moved = cells[:, torch.randperm(25)]  # the same contents in other cells
    q = torch.randn(1, 11).double()
    zeros = torch.zeros_like(coords)
    blind = model(torch.cat([cells, zeros], 2), q), model(torch.cat([moved, zeros], 2), q)
    torch.testing.assert_close(blind[0], blind[1])  # no position information at all
    seeing = model(torch.cat([cells, coords], 2), q), model(torch.cat([moved, coords], 2), q)
    assert not torch.allclose(seeing[0], seeing[1])


# ---------------------------------------------------------------- 4.2
def test_4_2_the_rn_answers_relational_questions_an_mlp_of_similar_size_cannot():
    """State descriptions as sets (random object order), same data and steps for both:
    the RN (23k parameters) learns to count and to find the asked object; an MLP with
    twice its parameters, which must learn every order of the 6 objects, does not."""
    train, test = generate(9800, seed=0), generate(200, seed=1)
    gen = torch.Generator().manual_seed(0)

    def shuffled(states: torch.Tensor) -> torch.Tensor:  # (N, 6, 9) in random object order
        order = torch.rand(states.shape[:2], generator=gen).argsort(1)
        return states.gather(1, order[..., None].expand(-1, -1, states.shape[2]))

    def train_and_score(model: torch.nn.Module, steps: int = 1000) -> dict[str, float]:
        torch.manual_seed(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
        states = train.state_descriptions()
        for step in range(steps):
            for group in optimizer.param_groups:  # warm-up, then cosine decay
                group["lr"] = (
                    5e-3
                    * min(1, (step + 1) / 100)
                    * 0.5
                    * (1 + torch.cos(torch.tensor(step / steps * torch.pi)).item())
                )
            image = torch.randint(0, len(train), (256,), generator=gen)
            k = torch.randint(0, 20, (256,), generator=gen)
            logits = model(shuffled(states[image]), train.questions[image, k])
            loss = F.cross_entropy(logits, train.answers[image, k])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            right = model.eval()(shuffled(test.state_descriptions()), test.questions)
            right = (right.argmax(-1) == test.answers).float()
        kinds = question_type(test.questions)
        return {"non-relational": 100 * right[kinds < 3].mean().item(),
                "relational": 100 * right[kinds >= 3].mean().item(),
                "count": 100 * right[kinds == 5].mean().item()}  # fmt: skip

    rn = StateRelationNetwork(g_hidden=64, f_hidden=64)
    mlp = StateMLP(hidden=128)
    sizes = [sum(p.numel() for p in m.parameters()) for m in (rn, mlp)]
    assert sizes == [23370, 42762]  # the MLP gets more parameters than the RN
    ours, baseline = train_and_score(rn), train_and_score(mlp)
    # measured on the development machine: RN 99.3 / 79.8 (count 99.6), MLP 61.0 / 73.5
    # (count 82.0); both are still below 75% on closest / furthest at this budget
    assert ours["count"] > 95 and baseline["count"] < 90
    assert ours["relational"] > baseline["relational"] + 4
    assert ours["non-relational"] > 95 and baseline["non-relational"] < 75


# ---------------------------------------------------------------- 4.3
def _counting_batch(n: int, size: int, gen: torch.Generator):
    """Sets of ``size`` objects of 3 colours (duplicates allowed), a colour asked about,
    and the answer: how many objects have it."""
    colours = torch.randint(0, 3, (n, size), generator=gen)
    asked = torch.randint(0, 3, (n,), generator=gen)
    objects, question = F.one_hot(colours, 3).float(), F.one_hot(asked, 3).float()
    return objects, question, (colours == asked[:, None]).sum(1)


@pytest.fixture(scope="module")
def counting_accuracy() -> dict[str, list[float]]:
    """Accuracy per set size (2..6) after the same training, for each aggregation."""
    sizes, result = range(2, 7), {}
    for aggregation in ("sum", "mean", "max"):
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = StateRelationNetwork(object_dim=3, num_classes=7, question_dim=3, g_hidden=32,
                                     g_layers=2, f_hidden=32, aggregation=aggregation)  # fmt: skip
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(1200):
            size = int(torch.randint(2, 7, (1,), generator=gen))  # one set size per batch
            objects, question, count = _counting_batch(128, size, gen)
            loss = F.cross_entropy(model(objects, question), count)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = []
            for size in sizes:
                objects, question, count = _counting_batch(500, size, gen)
                accuracy.append((model(objects, question).argmax(1) == count).float().mean().item())
        result[aggregation] = accuracy
    return result


def test_4_3_only_the_sum_counts_in_sets_of_varying_size(counting_accuracy):
    """ "How many objects are blue?" in sets of 2 to 6 objects with repeated colours. The sum
    over pairs can carry count² (g = [o_i blue]·[o_j blue]); the mean only carries the
    fraction (count/size)², which is the same for 1 of 2 and 3 of 6; the max only says
    whether there is one. Measured: sum ≥ 97% at every size; mean and max fail on some."""
    assert min(counting_accuracy["sum"]) > 0.95
    assert min(counting_accuracy["mean"]) < 0.7
    assert min(counting_accuracy["max"]) < 0.7
    assert counting_accuracy["max"][0] > 0.9  # with 2 objects "is there one" nearly suffices
