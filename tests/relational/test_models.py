"""Relation Networks: the factored g equals the naive one, the module equals the paper's
formula written as loops, shared CNN features equal one call per question, and the
baselines have the public reference's layer sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkata.relational import (
    CNNMLP,
    ConvObjects,
    RelationModule,
    RelationNetwork,
    StateMLP,
    StateRelationNetwork,
)

AGGREGATIONS = ("sum", "mean", "max", "sum+max")


def _pair(seed: int, **kwargs) -> tuple[RelationModule, RelationModule]:
    """A naive and a factored module with the same (random) parameters, in float64."""
    torch.manual_seed(seed)
    naive = RelationModule(factored=False, **kwargs).double()
    factored = RelationModule(factored=True, **kwargs).double()
    factored.load_state_dict(naive.state_dict())
    return naive, factored


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("pair_geometry", [False, True])
def test_factored_equals_naive_values_and_gradients(
    seed: int, aggregation: str, pair_geometry: bool
) -> None:
    gen = torch.Generator().manual_seed(seed)
    N, P, D, Q, K = (int(v) for v in torch.randint(1, 6, (5,), generator=gen))
    D = max(D, 2) if pair_geometry else D  # the last two features are (x, y)
    hidden, layers = int(torch.randint(2, 9, (1,), generator=gen)), seed % 3 + 1
    naive, factored = _pair(seed, object_dim=D, question_dim=Q, hidden=hidden,
                            num_layers=layers, aggregation=aggregation,
                            pair_geometry=pair_geometry)  # fmt: skip
    objects = torch.randn(N, P, D, dtype=torch.float64, generator=gen)
    questions = torch.randn(N, K, Q, dtype=torch.float64, generator=gen)
    width = 2 * hidden if aggregation == "sum+max" else hidden
    grad_out = torch.randn(N, K, width, dtype=torch.float64, generator=gen)
    results = []
    for module in (naive, factored):
        o, q = objects.clone().requires_grad_(), questions.clone().requires_grad_()
        out = module(o, q)
        out.backward(grad_out)
        results.append((out, o.grad, q.grad, [p.grad for p in module.parameters()]))
    (a, ao, aq, ap), (b, bo, bq, bp) = results
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bo, ao, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bq, aq, rtol=1e-12, atol=1e-12)
    for gb, ga in zip(bp, ap, strict=True):
        torch.testing.assert_close(gb, ga, rtol=1e-12, atol=1e-12)
    assert list(naive.state_dict()) == list(factored.state_dict())


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("pair_geometry", [False, True])
def test_module_is_the_papers_formula(
    aggregation: str, factored: bool, pair_geometry: bool
) -> None:
    """agg over all ordered pairs (i, j), i = j included, of g([o_i; o_j; q]), by loops;
    with ``pair_geometry`` g's input also has p_j - p_i and |p_j - p_i|, p = (x, y) the
    last two features."""
    torch.manual_seed(1)
    module = RelationModule(4, 3, hidden=5, num_layers=3, aggregation=aggregation,
                            factored=factored, pair_geometry=pair_geometry).double()  # fmt: skip
    objects, questions = torch.randn(2, 4, 4).double(), torch.randn(2, 2, 3).double()
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]

    def g(x):
        for layer in layers:
            x = torch.relu(x @ layer.weight.T + layer.bias)
        return x

    def pair(n, k, i, j):  # g's input for objects i, j of scene n and its question k
        offset = objects[n, j, 2:] - objects[n, i, 2:]
        geometry = [offset, offset.norm()[None]] if pair_geometry else []
        return torch.cat([objects[n, i], objects[n, j], questions[n, k], *geometry])

    expected = torch.empty(2, 2, 10 if aggregation == "sum+max" else 5, dtype=torch.float64)
    for n in range(2):
        for k in range(2):
            outs = torch.stack([g(pair(n, k, i, j)) for i in range(4) for j in range(4)])
            reduce = {"sum": outs.sum(0), "mean": outs.mean(0), "max": outs.amax(0),
                      "sum+max": torch.cat([outs.sum(0), outs.amax(0)])}  # fmt: skip
            expected[n, k] = reduce[aggregation]
    torch.testing.assert_close(module(objects, questions), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_module_is_invariant_to_object_order(aggregation: str) -> None:
    torch.manual_seed(2)
    module = RelationModule(3, 2, hidden=8, aggregation=aggregation).double()
    objects, questions = torch.randn(3, 5, 3).double(), torch.randn(3, 1, 2).double()
    shuffled = objects[:, torch.randperm(5)]
    torch.testing.assert_close(module(shuffled, questions), module(objects, questions))


def test_pair_geometry_sees_distances_not_places() -> None:
    """With only the geometry's weights of g's first layer left, the relations are the
    same wherever the scene is moved, and with the offsets' weights zeroed too, however it
    is turned; they change when one object moves relative to the others."""
    torch.manual_seed(3)
    module = RelationModule(4, 3, hidden=16, pair_geometry=True).double()
    with torch.no_grad():
        module.g[0].weight[:, : 2 * 4 + 3].zero_()  # o_i, o_j and q: ignored
    objects, questions = torch.randn(2, 5, 4).double(), torch.randn(2, 3, 3).double()
    moved = objects.clone()
    moved[..., 2:] += torch.tensor([0.7, -0.3]).double()
    out = module(objects, questions)
    assert out.abs().amax() > 0
    torch.testing.assert_close(module(moved, questions), out)
    one_moved = objects.clone()
    one_moved[:, 0, 2:] += 0.5
    assert (module(one_moved, questions) - out).abs().amax() > 1e-3
    with torch.no_grad():
        module.g[0].weight[:, -3:-1].zero_()  # the offsets too: the distance alone
    out = module(objects, questions)
    turn = torch.tensor([[0.6, -0.8], [0.8, 0.6]]).double()  # a rotation
    turned = torch.cat([objects[..., :2], objects[..., 2:] @ turn.T], -1)
    torch.testing.assert_close(module(turned, questions), out)


def test_refine_positions_moves_cells_within_one_cell() -> None:
    torch.manual_seed(4)
    cnn = ConvObjects(channels=8, refine_positions=True)
    images = torch.rand(2, 3, 75, 75)
    grid = ConvObjects(channels=8)(images)[..., -2:]  # the cells' centres
    torch.testing.assert_close(cnn(images)[..., -2:], grid)  # the offsets start at zero
    with torch.no_grad():
        cnn.offset.weight.normal_(std=100.0)  # saturate the tanh
    xy = cnn(images)[..., -2:]
    cell = 0.5  # 5 cells over [-1, 1]: 0.5 apart
    assert (xy - grid).abs().amax() <= cell + 1e-6
    assert (xy - grid).abs().amax() > 0.9 * cell
    # the offsets learn: a loss on the positions reaches the offset layer
    cnn(images)[..., -2:].sum().backward()
    assert cnn.offset.weight.grad.abs().amax() > 0


def test_conv_objects_coordinates_and_layers() -> None:
    cnn = ConvObjects()
    objects = cnn(torch.rand(2, 3, 75, 75))
    assert objects.shape == (2, 25, 26)
    coords = objects[0, :, 24:]  # row-major cells: x varies fastest, y top to bottom
    grid = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch.testing.assert_close(coords[:, 0], grid.repeat(5))
    torch.testing.assert_close(coords[:, 1], grid.repeat_interleave(5))
    # the paper's CNN: 4 x (conv 3x3 stride 2 of 24 channels, ReLU, BatchNorm)
    kinds = [type(m).__name__ for m in cnn.conv]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d"] * 4
    assert [cnn.feature_size(s) for s in (75, 64, 8)] == [5, 4, 1]


def test_coord_conv_feeds_each_pixels_position_to_the_first_conv() -> None:
    cnn = ConvObjects(coord_conv=True).double()
    assert cnn.conv[0].weight.shape == (24, 5, 3, 3)  # RGB + (x, y)
    with torch.no_grad():  # unit 0 reads x at the kernel's centre, unit 1 reads y; the
        # other units keep their random colour weights and ignore the coordinates
        cnn.conv[0].weight[:2].zero_()
        cnn.conv[0].bias[:2].zero_()
        cnn.conv[0].weight[2:, 3:].zero_()
        cnn.conv[0].weight[0, 3, 1, 1] = 1.0
        cnn.conv[0].weight[1, 4, 1, 1] = 1.0
    images = torch.rand(2, 3, 75, 75).double()
    first = cnn.conv[0](torch.cat([images, torch.zeros(2, 2, 75, 75).double()], 1))
    captured = {}
    cnn.conv[0].register_forward_hook(
        lambda _, __, out: captured.update(out=out.clone())
    )  # before ReLU(inplace)
    assert cnn(images).shape == (2, 25, 26)
    pixel = torch.linspace(-1, 1, 75).double()[0::2]  # stride 2: centres at pixels 0, 2, ...
    torch.testing.assert_close(captured["out"][:, 0], pixel.expand(2, 38, 38))  # x: columns
    torch.testing.assert_close(captured["out"][:, 1], pixel[:, None].expand(2, 38, 38))  # y: rows
    # the colour channels' weights act on the image exactly as without coordinates
    assert first[:, 2:].abs().amax() > 0.1
    torch.testing.assert_close(captured["out"][:, 2:], first[:, 2:])


def test_batchnorm_first_ends_each_block_with_relu() -> None:
    torch.manual_seed(5)
    images = torch.rand(4, 3, 75, 75)
    paper, usual = ConvObjects(), ConvObjects(batchnorm_first=True)
    cells_paper, cells_usual = paper(images)[..., :24], usual(images)[..., :24]
    assert cells_usual.min() == 0  # ReLU last: non-negative, some cells exactly zero
    assert cells_paper.min() < 0  # BatchNorm last: centred, so negative values
    x = images
    for conv, norm in zip(usual.conv[0::3], usual.conv[1::3], strict=True):
        x = torch.relu(norm(conv(x)))
    torch.testing.assert_close(cells_usual, x.flatten(2).transpose(1, 2))


def test_relation_norm_normalises_the_aggregate_over_the_batch() -> None:
    torch.manual_seed(6)
    model = RelationNetwork(conv_channels=4, g_hidden=8, f_hidden=16, relation_norm=True).double()
    images, questions = torch.rand(6, 3, 75, 75).double(), torch.rand(6, 3, 11).double()
    model.train()
    inputs = {}
    model.f.register_forward_pre_hook(lambda _, args: inputs.update(x=args[0]))
    model(images, questions)
    x = inputs["x"]  # (N K, g_hidden): what f sees
    assert x.shape == (18, 8)
    torch.testing.assert_close(x.mean(0), torch.zeros(8, dtype=torch.float64))
    relations = model.relation(model.encoder(images), questions).flatten(0, 1)
    expected = (relations - relations.mean(0)) / (relations.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(x, expected)
    assert "relation_norm.running_mean" in model.state_dict()
    assert "relation_norm.running_mean" not in RelationNetwork(g_hidden=8).state_dict()


def test_reference_layer_sizes() -> None:
    """The public reference's sizes: g (2 x 26 + 11) -> 256 x 4; f 256-256-256-10;
    CNN+MLP 5*5*24 + 11 -> 256 -> 256 -> 10."""
    rn = RelationNetwork()
    g = [(m.in_features, m.out_features) for m in rn.relation.g if isinstance(m, nn.Linear)]
    f = [(m.in_features, m.out_features) for m in rn.f if isinstance(m, nn.Linear)]
    assert g == [(63, 256)] + [(256, 256)] * 3
    assert f == [(256, 256), (256, 256), (256, 10)]
    mlp = CNNMLP()
    sizes = [(m.in_features, m.out_features) for m in mlp.mlp if isinstance(m, nn.Linear)]
    assert sizes == [(611, 256), (256, 256), (256, 10)]
    assert [type(m) for m in rn.f].index(nn.Dropout) == len(rn.f) - 2  # before the last


@pytest.mark.parametrize("make", [
    lambda: RelationNetwork(conv_channels=4, g_hidden=16, f_hidden=16),
    lambda: CNNMLP(conv_channels=4, f_hidden=16),
])  # fmt: skip
def test_shared_cnn_features_equal_one_call_per_question(make) -> None:
    torch.manual_seed(3)
    model = make().double().eval()
    images, questions = torch.rand(3, 3, 75, 75).double(), torch.rand(3, 4, 11).double()
    shared = model(images, questions)
    assert shared.shape == (3, 4, 10)
    for k in range(4):
        torch.testing.assert_close(shared[:, k], model(images, questions[:, k]))


def test_dropout_only_in_training() -> None:
    torch.manual_seed(4)
    model = RelationNetwork(conv_channels=4, g_hidden=16, f_hidden=16)
    images, questions = torch.rand(4, 3, 75, 75), torch.rand(4, 11)
    model.eval()
    torch.testing.assert_close(model(images, questions), model(images, questions))
    model.train()
    assert not torch.equal(model(images, questions), model(images, questions))


def test_state_models_shapes_and_question_batches() -> None:
    torch.manual_seed(5)
    states, questions = torch.rand(4, 6, 9), torch.rand(4, 20, 11)
    for model in (StateRelationNetwork(g_hidden=16, f_hidden=16).eval(), StateMLP(hidden=16)):
        out = model(states, questions)
        assert out.shape == (4, 20, 10)
        torch.testing.assert_close(out[:, 7], model(states, questions[:, 7]))


def test_bad_inputs_name_the_argument() -> None:
    model = RelationNetwork(conv_channels=4, g_hidden=8, f_hidden=8)
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 3, H, W\)"):
        model(torch.rand(2, 1, 75, 75), torch.rand(2, 11))
    with pytest.raises(ValueError, match=r"questions: expected shape \(2, 11\)"):
        model(torch.rand(2, 3, 75, 75), torch.rand(2, 10))
    with pytest.raises(ValueError, match=r"questions: expected shape \(2, 11\)"):
        model(torch.rand(2, 3, 75, 75), torch.rand(3, 11))
    with pytest.raises(ValueError, match="aggregation: expected one of"):
        RelationModule(3, 2, aggregation="avg")
    with pytest.raises(ValueError, match="hidden: expected a positive int, got 0"):
        RelationModule(3, 2, hidden=0)
    with pytest.raises(ValueError, match="object_dim: expected >= 2 with pair_geometry"):
        RelationModule(1, 2, pair_geometry=True)
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 3, 75, 75\)"):
        CNNMLP()(torch.rand(2, 3, 64, 64), torch.rand(2, 11))
    with pytest.raises(ValueError, match=r"objects: expected shape \(N, 6, 9\)"):
        StateMLP()(torch.rand(2, 5, 9), torch.rand(2, 11))
    with pytest.raises(ValueError, match=r"objects: expected shape \(N, P, 9\)"):
        StateRelationNetwork()(torch.rand(2, 6, 8), torch.rand(2, 11))
