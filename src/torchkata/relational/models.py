r"""Relation Networks (Santoro et al. 2017) and the CNN+MLP baseline (tip 4).

A Relation Network answers a question about a set of objects with

.. math::
    \text{RN}(O, q) = f_\phi\Big(\operatorname*{agg}_{i,j} g_\theta(o_i, o_j, q)\Big),

where :math:`g_\theta` (an MLP) sees every ordered pair of objects together with the
question, the aggregation is a sum in the paper (mean and max for claim 4.3), and
:math:`f_\phi` (an MLP) maps the result to answer logits. On pixels the objects are the
cells of a CNN's last feature map, each with its (x, y) coordinates in [-1, 1].

- :class:`ConvObjects`: the CNN (stride-2 conv, ReLU, BatchNorm, as in the paper's
  Sort-of-CLEVR model) that turns images into objects.
- :class:`RelationModule`: :math:`\operatorname{agg}_{i,j} g_\theta(o_i, o_j, q)`.
  ``factored=True`` computes g's first layer once per object,
  :math:`W[o_i; o_j; q] + b = W_a o_i + W_b o_j + (W_q q + b)`, and broadcast-sums it over
  the pairs: the same parameters and ``state_dict`` as ``factored=False``, equal outputs,
  P times fewer multiplications in that layer (P objects).
- :class:`RelationNetwork` (pixels) and :class:`StateRelationNetwork` (state
  descriptions: one vector per object): the module between an object encoder and f.
- :class:`CNNMLP` and :class:`StateMLP`: baselines of similar size that see all objects
  at once, flattened, without the pairwise structure.

Questions may come one per image, ``(N, Q_dim)``, or several per image,
``(N, K, Q_dim)``: then the CNN runs once per image and its objects are shared by the K
questions (the answers are ``(N, K, num_classes)``). Sort-of-CLEVR has 20 questions per
image, so sharing saves 19 of every 20 CNN passes.
"""

from __future__ import annotations

import itertools
from typing import Literal, get_args

import torch
from torch import Tensor, nn

__all__ = [
    "CNNMLP",
    "ConvObjects",
    "RelationModule",
    "RelationNetwork",
    "StateMLP",
    "StateRelationNetwork",
]

Aggregation = Literal["sum", "mean", "max", "sum+max"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")


def _mlp(sizes: list[int], dropout: float = 0.0, final_relu: bool = False) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them; dropout before the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        if last and dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if not last or final_relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _split_questions(questions: Tensor, num_images: int, question_dim: int) -> tuple[Tensor, bool]:
    """Questions as (N, K, Q_dim), and whether they came as (N, Q_dim)."""
    single = questions.dim() == 2
    if (
        questions.dim() not in (2, 3)
        or questions.shape[0] != num_images
        or (questions.shape[-1] != question_dim)
    ):
        raise ValueError(
            f"questions: expected shape ({num_images}, {question_dim}) or "
            f"({num_images}, K, {question_dim}), got {tuple(questions.shape)}"
        )
    return (questions.unsqueeze(1) if single else questions), single


def _grid(height: int, width: int, like: Tensor) -> Tensor:
    """(height, width, 2): each position's (x, y) in [-1, 1], x left to right, y top down."""
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


class ConvObjects(nn.Module):
    r"""A CNN whose last feature map's cells, with their coordinates, are the objects.

    ``num_layers`` blocks of ``Conv2d(kernel 3, stride 2, padding 1) → ReLU →
    BatchNorm2d`` (the order of the paper's reference model); each of the H' x W' cells of
    the last map becomes an object: its C channels and its (x, y) position, both in
    [-1, 1] (x left to right, y top to bottom).

    Args:
        in_channels: image channels. Default: ``3``.
        channels: channels of every conv layer. Default: ``24`` (the paper's).
        num_layers: conv blocks; each halves the size (75 → 38 → 19 → 10 → 5). Default: ``4``.
        batchnorm_first: ``Conv2d → BatchNorm2d → ReLU`` instead (the usual order; it learns
            faster here, see the tip 4 guide). Default: ``False``.
        coord_conv: append each pixel's (x, y) in [-1, 1] to the image as two more input
            channels (CoordConv, Liu et al. 2018), so a cell can say precisely where an
            object lies within its receptive field, not only which cell it is in.
            Default: ``False``.
        refine_positions: each cell's (x, y) is its centre plus an offset of at most one
            cell each way, predicted from its features (``Linear → tanh``, starting at
            zero), so that a cell can place the object it sees between grid points, even
            one centred in the next cell whose edge it sees.
            Default: ``False`` (the cell's centre).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` float images.
        - Output: :math:`(N, P, C + 2)` with :math:`P = H' W'` objects in row-major order.

    Examples:
        >>> cnn = ConvObjects()
        >>> cnn(torch.rand(2, 3, 75, 75)).shape
        torch.Size([2, 25, 26])
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 24,
        num_layers: int = 4,
        batchnorm_first: bool = False,
        coord_conv: bool = False,
        refine_positions: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, channels=channels, num_layers=num_layers)
        self.in_channels, self.channels, self.num_layers = in_channels, channels, num_layers
        self.batchnorm_first, self.coord_conv = batchnorm_first, coord_conv
        self.refine_positions = refine_positions
        first_in = in_channels + 2 if coord_conv else in_channels
        layers: list[nn.Module] = []
        for i in range(num_layers):
            conv = nn.Conv2d(first_in if i == 0 else channels, channels, 3, stride=2, padding=1)
            relu, norm = nn.ReLU(inplace=True), nn.BatchNorm2d(channels)
            layers += [conv, norm, relu] if batchnorm_first else [conv, relu, norm]
        self.conv = nn.Sequential(*layers)
        self.offset = nn.Linear(channels, 2) if refine_positions else None
        if self.offset is not None:
            nn.init.zeros_(self.offset.weight)
            nn.init.zeros_(self.offset.bias)

    @property
    def object_dim(self) -> int:
        return self.channels + 2

    def feature_size(self, image_size: int) -> int:
        """Side of the last feature map for a square image of side ``image_size``."""
        for _ in range(self.num_layers):
            image_size = (image_size + 1) // 2
        return image_size

    def feature_map(self, images: Tensor) -> Tensor:
        """The last conv block's output, :math:`(N, C, H', W')`."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images: expected shape (N, {self.in_channels}, H, W), got {tuple(images.shape)}"
            )
        if self.coord_conv:
            N, _, H, W = images.shape
            grid = _grid(H, W, images).movedim(-1, 0)  # (2, H, W)
            images = torch.cat([images, grid.expand(N, -1, -1, -1)], dim=1)
        return self.conv(images)

    def forward(self, images: Tensor) -> Tensor:
        x = self.feature_map(images)
        N, _, H, W = x.shape  # (N, C, H', W')
        cells = x.flatten(2).transpose(1, 2)  # (N, P, C)
        xy = _grid(H, W, x).reshape(1, H * W, 2).expand(N, -1, -1)  # (N, P, 2)
        if self.offset is not None:
            cell = torch.tensor([2 / max(W - 1, 1), 2 / max(H - 1, 1)], device=x.device)
            xy = xy + cell * torch.tanh(self.offset(cells))
        return torch.cat([cells, xy.to(cells.dtype)], dim=2)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, channels={self.channels}, "
            f"num_layers={self.num_layers}, batchnorm_first={self.batchnorm_first}, "
            f"coord_conv={self.coord_conv}, refine_positions={self.refine_positions}"
        )


class RelationModule(nn.Module):
    r"""The relational core :math:`\operatorname{agg}_{i,j} g_\theta(o_i, o_j, q)`.

    g is an MLP of ``num_layers`` Linear+ReLU layers applied to :math:`[o_i; o_j; q]`
    for all :math:`P^2` ordered pairs (i = j included, as in the paper); the results are
    summed, averaged or max-pooled over the pairs.

    Args:
        object_dim: features per object, :math:`D`.
        question_dim: features of the question, :math:`Q_{dim}`.
        hidden: width of every layer of g. Default: ``256``.
        num_layers: layers of g. Default: ``4``.
        aggregation: ``"sum"`` (the paper), ``"mean"``, ``"max"``, or ``"sum+max"``: both,
            concatenated (:math:`2 \cdot \text{hidden}` features: the sum counts, the max
            picks out a single pair, such as the closest). Default: ``"sum"``.
        factored: compute g's first layer per object and broadcast it over the pairs
            (same parameters, equal outputs, less work). Default: ``True``.
        pair_geometry: append to each pair's input where o_j lies from o_i and how far,
            :math:`[p_j - p_i; \lVert p_j - p_i \rVert]`, with :math:`p` an object's last two
            features (its (x, y) from :class:`ConvObjects` or a state description). An
            MLP on :math:`[p_i; p_j]` must otherwise learn the Euclidean norm itself.
            Default: ``False`` (the paper).

    Shape:
        - objects: :math:`(N, P, D)`.
        - questions: :math:`(N, K, Q_{dim})`: K questions about each set of objects.
        - Output: :math:`(N, K, \text{out\_features})`: ``hidden`` features, twice that
          with ``"sum+max"``.

    Examples:
        >>> rn = RelationModule(object_dim=9, question_dim=11, hidden=32, num_layers=2)
        >>> rn(torch.randn(4, 6, 9), torch.randn(4, 3, 11)).shape
        torch.Size([4, 3, 32])
    """

    def __init__(
        self,
        object_dim: int,
        question_dim: int,
        hidden: int = 256,
        num_layers: int = 4,
        aggregation: Aggregation = "sum",
        factored: bool = True,
        pair_geometry: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(
            object_dim=object_dim, question_dim=question_dim, hidden=hidden, num_layers=num_layers
        )
        if pair_geometry and object_dim < 2:
            raise ValueError(
                f"object_dim: expected >= 2 with pair_geometry (the last two are x, y), "
                f"got {object_dim}"
            )
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: expected one of {AGGREGATIONS}, got {aggregation!r}")
        self.object_dim, self.question_dim = object_dim, question_dim
        self.hidden, self.num_layers = hidden, num_layers
        self.aggregation, self.factored = aggregation, factored
        self.pair_geometry = pair_geometry
        # g[0] is the first Linear over [o_i; o_j; q (; p_j - p_i; |p_j - p_i|)]; the
        # factored path slices its weight
        geometry_dim = 3 if pair_geometry else 0
        self.g = _mlp(
            [2 * object_dim + question_dim + geometry_dim] + [hidden] * num_layers,
            final_relu=True,
        )

    @property
    def out_features(self) -> int:
        return 2 * self.hidden if self.aggregation == "sum+max" else self.hidden

    def forward(self, objects: Tensor, questions: Tensor) -> Tensor:
        if objects.dim() != 3 or objects.shape[2] != self.object_dim:
            raise ValueError(
                f"objects: expected shape (N, P, {self.object_dim}), got {tuple(objects.shape)}"
            )
        N, P, D = objects.shape
        if (
            questions.dim() != 3
            or questions.shape[0] != N
            or questions.shape[2] != self.question_dim
        ):
            raise ValueError(
                f"questions: expected shape ({N}, K, {self.question_dim}), "
                f"got {tuple(questions.shape)}"
            )
        K = questions.shape[1]
        first = self.g[0]
        if self.pair_geometry:
            xy = objects[..., -2:]
            offsets = xy[:, None, :, :] - xy[:, :, None, :]  # (N, P, P, 2): p_j - p_i at [i, j]
            squared = offsets.pow(2).sum(-1, keepdim=True)  # (N, P, P, 1)
            # the root's gradient is 0/0 at distance 0 (i == j): take it as 0 there
            nonzero = squared > 0
            distances = torch.where(nonzero, torch.where(nonzero, squared, 1).sqrt(), 0)
        if self.factored:
            sizes = [D, D, self.question_dim] + ([2, 1] if self.pair_geometry else [])
            w_i, w_j, w_q, *w_geometry = first.weight.split(sizes, dim=1)
            a_i = objects @ w_i.T  # (N, P, H): o_i's share of every pair (i, .)
            a_j = objects @ w_j.T  # (N, P, H)
            a_q = torch.nn.functional.linear(questions, w_q, first.bias)  # (N, K, H)
            if self.pair_geometry:  # W_xy (p_j - p_i) = W_xy p_j - W_xy p_i: per object too
                w_xy, w_distance = w_geometry
                a_xy = xy @ w_xy.T  # (N, P, H)
                a_i, a_j = a_i - a_xy, a_j + a_xy
            pairs = a_i[:, :, None] + a_j[:, None, :]  # (N, P, P, H): once per image
            if self.pair_geometry:
                pairs = pairs + distances @ w_distance.T
            pairs = pairs[:, None] + a_q[:, :, None, None]  # (N, K, P, P, H)
            x = self.g[1:](pairs.reshape(N * K * P * P, -1))  # (N K P P, H)
        else:
            o_i = objects[:, None, :, None].expand(N, K, P, P, D)
            o_j = objects[:, None, None, :].expand(N, K, P, P, D)
            q = questions[:, :, None, None].expand(N, K, P, P, self.question_dim)
            parts = [o_i, o_j, q]
            if self.pair_geometry:
                parts.append(torch.cat([offsets, distances], -1)[:, None].expand(N, K, P, P, 3))
            x = self.g(torch.cat(parts, dim=-1).reshape(N * K * P * P, -1))
        x = x.reshape(N, K, P * P, self.hidden)
        # Accumulate in float32 at least: in bfloat16 (8 bits of mantissa) a sum of 625
        # pairs in the hundreds is rounded to steps of 1-4, which drowns the few pairs
        # that hold the answer.
        dtype = torch.promote_types(x.dtype, torch.float32)
        if self.aggregation == "sum":
            return x.sum(2, dtype=dtype)
        if self.aggregation == "sum+max":
            return torch.cat([x.sum(2, dtype=dtype), x.amax(2).to(dtype)], dim=-1)
        if self.aggregation == "mean":
            return x.mean(2, dtype=dtype)
        return x.amax(2).to(dtype)

    def extra_repr(self) -> str:
        return (
            f"object_dim={self.object_dim}, question_dim={self.question_dim}, "
            f"hidden={self.hidden}, num_layers={self.num_layers}, "
            f"aggregation={self.aggregation!r}, factored={self.factored}, "
            f"pair_geometry={self.pair_geometry}"
        )


class _QuestionAnswering(nn.Module):
    """Shared forward: encode objects, relate them per question, answer with f."""

    encoder: nn.Module | None
    relation: nn.Module
    relation_norm: nn.Module
    f: nn.Module
    question_dim: int

    def _objects(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, inputs: Tensor, questions: Tensor) -> Tensor:
        objects = self._objects(inputs)  # (N, P, D)
        q, single = _split_questions(questions, objects.shape[0], self.question_dim)
        relations = self.relation(objects, q)  # (N, K, g_hidden), float32 or wider
        with torch.autocast(relations.device.type, enabled=False):  # f is cheap: keep it exact
            logits = self.f(self.relation_norm(relations.flatten(0, 1)))  # (N K, num_classes)
        logits = logits.unflatten(0, relations.shape[:2])  # (N, K, num_classes)
        return logits.squeeze(1) if single else logits


class RelationNetwork(_QuestionAnswering):
    r"""A Relation Network on images: :class:`ConvObjects` → :class:`RelationModule` → f.

    Santoro et al. (2017), "A simple neural network module for relational reasoning".
    The defaults are the paper's Sort-of-CLEVR model: 4 conv layers of 24 channels, g of
    4 x 256, f of 256-256-``num_classes`` with dropout 0.5 before the last layer (active
    in training only: the public reference also drops out in eval).

    Args:
        num_classes: answer classes. Default: ``10``.
        question_dim: question features. Default: ``11`` (Sort-of-CLEVR).
        in_channels: image channels. Default: ``3``.
        conv_channels: channels of each conv layer. Default: ``24``.
        conv_layers: stride-2 conv blocks. Default: ``4``.
        g_hidden: width of g. Default: ``256``.
        g_layers: layers of g. Default: ``4``.
        f_hidden: width of f's hidden layers. Default: ``256``.
        f_layers: layers of f (Linear count). Default: ``3``.
        dropout: dropout before f's last layer. Default: ``0.5``.
        aggregation: ``"sum"``, ``"mean"``, ``"max"`` or ``"sum+max"`` over pairs, see
            :class:`RelationModule`. Default: ``"sum"``.
        factored: factor g's first layer over objects. Default: ``True``.
        batchnorm_first: the CNN's order, see :class:`ConvObjects`. Default: ``False``.
        relation_norm: ``BatchNorm1d`` on the aggregated relations before f. The sum over
            P² pairs is large and nearly the same for every image at first (most cells are
            background); normalising it over the batch lets f see the differences.
            Default: ``False`` (the paper).
        coord_conv: coordinate channels at the CNN's input, see :class:`ConvObjects`.
            Default: ``False`` (the paper).
        refine_positions: learned sub-cell positions, see :class:`ConvObjects`.
            Default: ``False`` (the paper).
        pair_geometry: each pair's offset and distance as g's input too, see
            :class:`RelationModule`. Default: ``False`` (the paper).

    Shape:
        - images: :math:`(N, C_{in}, H, W)`, floats in [0, 1].
        - questions: :math:`(N, Q_{dim})`, or :math:`(N, K, Q_{dim})` for K questions
          per image (the CNN runs once per image).
        - Output: logits :math:`(N, \text{num\_classes})` or
          :math:`(N, K, \text{num\_classes})`.

    Examples:
        >>> model = RelationNetwork()
        >>> model(torch.rand(2, 3, 75, 75), torch.rand(2, 11)).shape
        torch.Size([2, 10])
        >>> model(torch.rand(2, 3, 75, 75), torch.rand(2, 20, 11)).shape
        torch.Size([2, 20, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        question_dim: int = 11,
        in_channels: int = 3,
        conv_channels: int = 24,
        conv_layers: int = 4,
        g_hidden: int = 256,
        g_layers: int = 4,
        f_hidden: int = 256,
        f_layers: int = 3,
        dropout: float = 0.5,
        aggregation: Aggregation = "sum",
        factored: bool = True,
        batchnorm_first: bool = False,
        relation_norm: bool = False,
        coord_conv: bool = False,
        refine_positions: bool = False,
        pair_geometry: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(num_classes=num_classes, f_hidden=f_hidden, f_layers=f_layers)
        self.num_classes, self.question_dim = num_classes, question_dim
        self.encoder = ConvObjects(
            in_channels,
            conv_channels,
            conv_layers,
            batchnorm_first=batchnorm_first,
            coord_conv=coord_conv,
            refine_positions=refine_positions,
        )
        self.relation = RelationModule(
            self.encoder.object_dim,
            question_dim,
            g_hidden,
            g_layers,
            aggregation=aggregation,
            factored=factored,
            pair_geometry=pair_geometry,
        )
        width = self.relation.out_features
        self.relation_norm = nn.BatchNorm1d(width) if relation_norm else nn.Identity()
        self.f = _mlp([width] + [f_hidden] * (f_layers - 1) + [num_classes], dropout)

    def _objects(self, images: Tensor) -> Tensor:
        return self.encoder(images)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, question_dim={self.question_dim}, "
            f"aggregation={self.relation.aggregation!r}, factored={self.relation.factored}"
        )


class StateRelationNetwork(_QuestionAnswering):
    r"""A Relation Network on state descriptions: each object is already a vector.

    The paper's state-description experiment: :class:`RelationModule` on the objects as
    given (for Sort-of-CLEVR colour one-hot, shape, x, y), then f.

    Args:
        object_dim: features per object. Default: ``9`` (Sort-of-CLEVR's state vectors).
        num_classes: answer classes. Default: ``10``.
        question_dim: question features. Default: ``11``.
        g_hidden: width of g. Default: ``256``.
        g_layers: layers of g. Default: ``4``.
        f_hidden: width of f's hidden layers. Default: ``256``.
        f_layers: layers of f. Default: ``3``.
        dropout: dropout before f's last layer. Default: ``0.0``.
        aggregation: ``"sum"``, ``"mean"``, ``"max"`` or ``"sum+max"``, see
            :class:`RelationModule`. Default: ``"sum"``.
        factored: factor g's first layer over objects. Default: ``True``.
        pair_geometry: each pair's offset and distance as g's input too (the objects' last
            two features are x, y), see :class:`RelationModule`. Default: ``False``.

    Shape:
        - objects: :math:`(N, P, \text{object\_dim})`.
        - questions: :math:`(N, Q_{dim})` or :math:`(N, K, Q_{dim})`.
        - Output: :math:`(N, \text{num\_classes})` or :math:`(N, K, \text{num\_classes})`.

    Examples:
        >>> model = StateRelationNetwork(g_hidden=64, f_hidden=64)
        >>> model(torch.rand(5, 6, 9), torch.rand(5, 11)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        object_dim: int = 9,
        num_classes: int = 10,
        question_dim: int = 11,
        g_hidden: int = 256,
        g_layers: int = 4,
        f_hidden: int = 256,
        f_layers: int = 3,
        dropout: float = 0.0,
        aggregation: Aggregation = "sum",
        factored: bool = True,
        pair_geometry: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(num_classes=num_classes, f_hidden=f_hidden, f_layers=f_layers)
        self.num_classes, self.question_dim = num_classes, question_dim
        self.encoder = None
        self.relation = RelationModule(
            object_dim,
            question_dim,
            g_hidden,
            g_layers,
            aggregation=aggregation,
            factored=factored,
            pair_geometry=pair_geometry,
        )
        self.relation_norm = nn.Identity()
        width = self.relation.out_features
        self.f = _mlp([width] + [f_hidden] * (f_layers - 1) + [num_classes], dropout)

    def _objects(self, objects: Tensor) -> Tensor:
        return objects

    def extra_repr(self) -> str:
        return (
            f"object_dim={self.relation.object_dim}, num_classes={self.num_classes}, "
            f"question_dim={self.question_dim}, aggregation={self.relation.aggregation!r}"
        )


class _FlatQuestionAnswering(nn.Module):
    """Baseline forward: flatten all objects, append the question, one MLP."""

    question_dim: int
    mlp: nn.Module

    def _flat(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, inputs: Tensor, questions: Tensor) -> Tensor:
        flat = self._flat(inputs)  # (N, F)
        q, single = _split_questions(questions, flat.shape[0], self.question_dim)
        N, K, _ = q.shape
        x = torch.cat([flat[:, None].expand(N, K, -1), q], dim=2)  # (N, K, F + Q_dim)
        logits = self.mlp(x)
        return logits.squeeze(1) if single else logits


class CNNMLP(_FlatQuestionAnswering):
    r"""The paper's baseline: the same CNN, its whole feature map flattened with the
    question, then an MLP (no pairwise structure).

    As in the public reference: ``C·H'·W' + Q_dim`` → ``f_hidden`` → ``f_hidden`` →
    ``num_classes`` with ReLUs, dropout before the last layer.

    Args:
        image_size: side of the (square) input images; fixes the flattened size.
            Default: ``75``.
        num_classes, question_dim, in_channels, conv_channels, conv_layers, f_hidden,
        dropout: as in :class:`RelationNetwork`.
        f_layers: Linear layers. Default: ``3``.

    Shape:
        - images: :math:`(N, C_{in}, \text{image\_size}, \text{image\_size})`.
        - questions: :math:`(N, Q_{dim})` or :math:`(N, K, Q_{dim})`.
        - Output: :math:`(N, \text{num\_classes})` or :math:`(N, K, \text{num\_classes})`.

    Examples:
        >>> model = CNNMLP()
        >>> model(torch.rand(2, 3, 75, 75), torch.rand(2, 11)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        image_size: int = 75,
        num_classes: int = 10,
        question_dim: int = 11,
        in_channels: int = 3,
        conv_channels: int = 24,
        conv_layers: int = 4,
        f_hidden: int = 256,
        f_layers: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        _check_positive(image_size=image_size, num_classes=num_classes, f_layers=f_layers)
        self.image_size, self.num_classes, self.question_dim = image_size, num_classes, question_dim
        self.encoder = ConvObjects(in_channels, conv_channels, conv_layers)
        side = self.encoder.feature_size(image_size)
        sizes = [conv_channels * side * side + question_dim] + [f_hidden] * (f_layers - 1)
        self.mlp = _mlp([*sizes, num_classes], dropout)

    def _flat(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or tuple(images.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images: expected shape (N, {self.encoder.in_channels}, {self.image_size}, "
                f"{self.image_size}), got {tuple(images.shape)}"
            )
        return self.encoder.feature_map(images).flatten(1)  # (N, C H' W')

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, num_classes={self.num_classes}"


class StateMLP(_FlatQuestionAnswering):
    r"""The state-description baseline: all object vectors flattened with the question,
    then an MLP.

    Args:
        num_objects: objects per scene. Default: ``6``.
        object_dim: features per object. Default: ``9``.
        num_classes: answer classes. Default: ``10``.
        question_dim: question features. Default: ``11``.
        hidden: width of the hidden layers. Default: ``256``.
        num_layers: Linear layers. Default: ``4``.

    Shape:
        - objects: :math:`(N, \text{num\_objects}, \text{object\_dim})`.
        - questions: :math:`(N, Q_{dim})` or :math:`(N, K, Q_{dim})`.
        - Output: :math:`(N, \text{num\_classes})` or :math:`(N, K, \text{num\_classes})`.

    Examples:
        >>> model = StateMLP(hidden=64)
        >>> model(torch.rand(5, 6, 9), torch.rand(5, 20, 11)).shape
        torch.Size([5, 20, 10])
    """

    def __init__(
        self,
        num_objects: int = 6,
        object_dim: int = 9,
        num_classes: int = 10,
        question_dim: int = 11,
        hidden: int = 256,
        num_layers: int = 4,
    ) -> None:
        super().__init__()
        _check_positive(
            num_objects=num_objects, object_dim=object_dim, num_classes=num_classes,
            question_dim=question_dim, hidden=hidden, num_layers=num_layers,
        )  # fmt: skip
        self.num_objects, self.object_dim = num_objects, object_dim
        self.num_classes, self.question_dim = num_classes, question_dim
        sizes = [num_objects * object_dim + question_dim] + [hidden] * (num_layers - 1)
        self.mlp = _mlp([*sizes, num_classes])

    def _flat(self, objects: Tensor) -> Tensor:
        expected = (self.num_objects, self.object_dim)
        if objects.dim() != 3 or tuple(objects.shape[1:]) != expected:
            raise ValueError(
                f"objects: expected shape (N, {self.num_objects}, {self.object_dim}), "
                f"got {tuple(objects.shape)}"
            )
        return objects.flatten(1)

    def extra_repr(self) -> str:
        return (
            f"num_objects={self.num_objects}, object_dim={self.object_dim}, "
            f"num_classes={self.num_classes}"
        )
