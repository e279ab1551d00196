"""Self-supervised objectives that learn from two augmented views: SimCLR and VICReg.

Both train an encoder without labels: each sample is augmented twice, both views are
encoded and projected, and the loss pulls the two views of a sample together. SimCLR
(Chen et al. 2020) also pushes the other samples of the batch away (NT-Xent, from
:class:`torchkata.losses.NTXentLoss`); VICReg (Bardes, Ponce & LeCun 2022) instead keeps
every embedding dimension's variance above a threshold and decorrelates the dimensions,
so it needs no negatives and no large batches. After pretraining, the projection head is
thrown away and the encoder's features are used (:mod:`torchkata.ssl.evaluation`).

Augmentations are written with torch ops (no torchvision), on a batch at a time:
:func:`augment_signal` for 1-D signals ``(N, L)`` and :func:`augment_image` for small
images ``(N, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.losses import NTXentLoss

__all__ = ["SimCLR", "VICReg", "augment_image", "augment_signal", "vicreg_loss"]


def _projection(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _features(encoder: nn.Module, example: Tensor) -> int:
    with torch.no_grad():
        return int(encoder(example).shape[-1])


class SimCLR(nn.Module):
    """An encoder, a projection head and the NT-Xent loss between two views.

    Args:
        encoder: maps a batch to features ``(N, F)``.
        feature_dim: ``F``, the encoder's output width.
        projection_dim: output width of the projection head (Linear-ReLU-Linear).
            Default: ``64``
        hidden_dim: the head's hidden width. Default: ``feature_dim``
        temperature: NT-Xent's :math:`\\tau`. Default: ``0.5``

    Shape:
        - view_a, view_b: two augmentations of the same batch, the encoder's input shape.
        - Output: scalar loss.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = SimCLR(nn.Linear(40, 16), feature_dim=16, projection_dim=8)
        >>> x = torch.randn(32, 40)
        >>> loss = model(augment_signal(x), augment_signal(x))
        >>> loss.shape, bool(loss > 0)
        (torch.Size([]), True)
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 64,
        hidden_dim: int | None = None,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (("feature_dim", feature_dim), ("projection_dim", projection_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.encoder = encoder
        self.projector = _projection(feature_dim, hidden_dim or feature_dim, projection_dim)
        self.loss_fn = NTXentLoss(temperature=temperature)
        self.feature_dim, self.projection_dim = feature_dim, projection_dim

    def forward(self, view_a: Tensor, view_b: Tensor) -> Tensor:
        z_a = self.projector(self.encoder(view_a))  # (N, P)
        z_b = self.projector(self.encoder(view_b))  # (N, P)
        return self.loss_fn(z_a, z_b)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, projection_dim={self.projection_dim}"


def vicreg_loss(
    z_a: Tensor,
    z_b: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    r"""VICReg's loss: invariance + variance + covariance terms (Bardes et al. 2022).

    .. math::
        \lambda \tfrac{1}{ND} \sum_i \lVert z^a_i - z^b_i \rVert^2
        + \mu \sum_{z} \tfrac{1}{D} \sum_d \max\bigl(0, 1 - \sqrt{\mathrm{Var}(z_{:,d})
        + \epsilon}\bigr) + \nu \sum_{z} \tfrac{1}{D} \sum_{d \ne d'} C(z)_{d d'}^2

    with :math:`C(z)` the covariance matrix of the batch (unbiased); the coefficients are
    the paper's :math:`\lambda = \mu = 25, \nu = 1`.

    Shape:
        - z_a, z_b: :math:`(N, D)`, :math:`N \ge 2`. Output: scalar.
    """
    if z_a.dim() != 2 or z_a.shape != z_b.shape or z_a.shape[0] < 2:
        raise ValueError(
            f"z_a, z_b: expected two (N, D) tensors with N >= 2, got {tuple(z_a.shape)} and "
            f"{tuple(z_b.shape)}"
        )
    N, D = z_a.shape
    invariance = F.mse_loss(z_a, z_b)  # mean over N and D
    variance = z_a.new_zeros(())
    covariance = z_a.new_zeros(())
    for z in (z_a, z_b):
        z = z - z.mean(0)  # (N, D)
        std = torch.sqrt(z.var(0) + eps)  # (D,)
        variance = variance + F.relu(1 - std).mean()
        cov = (z.T @ z) / (N - 1)  # (D, D)
        off_diagonal = cov - torch.diag(torch.diagonal(cov))
        covariance = covariance + off_diagonal.pow(2).sum() / D
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance


class VICReg(nn.Module):
    """An encoder, an expander head and VICReg's loss between two views.

    Args:
        encoder: maps a batch to features ``(N, F)``.
        feature_dim: ``F``.
        projection_dim: width of the expander (Linear-ReLU-Linear). Default: ``256``
        sim_coeff, std_coeff, cov_coeff: the loss's weights. Default: ``25, 25, 1``

    Shape:
        - view_a, view_b: two augmentations of the same batch. Output: scalar loss.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = VICReg(nn.Linear(40, 16), feature_dim=16, projection_dim=32)
        >>> x = torch.randn(32, 40)
        >>> model(augment_signal(x), augment_signal(x)).shape
        torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 256,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = _projection(feature_dim, projection_dim, projection_dim)
        self.feature_dim, self.projection_dim = feature_dim, projection_dim
        self.coeffs = (sim_coeff, std_coeff, cov_coeff)

    def forward(self, view_a: Tensor, view_b: Tensor) -> Tensor:
        z_a = self.projector(self.encoder(view_a))
        z_b = self.projector(self.encoder(view_b))
        return vicreg_loss(z_a, z_b, *self.coeffs)

    def extra_repr(self) -> str:
        return (
            f"feature_dim={self.feature_dim}, projection_dim={self.projection_dim}, "
            f"coeffs={self.coeffs}"
        )


def augment_signal(
    x: Tensor,
    *,
    max_shift: float = 10.0,
    max_stretch: float = 0.2,
    scale: tuple[float, float] = (0.8, 1.2),
    max_shear: float = 0.3,
    noise_std: float = 0.1,
    smooth_noise_std: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random view of each 1-D signal: shift and stretch in time, scale, shear, noise.

    The transformations that MNIST-1D's generator itself applies to its templates
    (Greydanus 2020), so a view keeps its class: the signal is resampled (linear
    interpolation, edge values held) at positions stretched by up to ``max_stretch``
    around the centre and shifted by up to ``max_shift`` samples, its amplitude scaled, a
    linear trend added, then white and smoothed (correlated) Gaussian noise.

    Args:
        x: signals, :math:`(N, L)`.
        max_shift: largest shift in samples, either way. Default: ``10.0``
        max_stretch: largest relative change of the time scale. Default: ``0.2``
        scale: range of the amplitude factor. Default: ``(0.8, 1.2)``
        max_shear: largest slope of the added trend over the whole signal. Default: ``0.3``
        noise_std: white noise. Default: ``0.1``
        smooth_noise_std: noise smoothed over 7 samples. Default: ``0.2``
        generator: random number generator. Default: torch's global one

    Returns:
        Tensor: :math:`(N, L)`, a new tensor (``x`` is not changed).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> augment_signal(torch.randn(3, 40), generator=g).shape
        torch.Size([3, 40])
    """
    if x.dim() != 2:
        raise ValueError(f"x: expected signals of shape (N, L), got {tuple(x.shape)}")
    N, L = x.shape
    kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
    stretch = 1 + max_stretch * (2 * torch.rand(N, 1, **kw) - 1)  # (N, 1)
    shift = max_shift * (2 * torch.rand(N, 1, **kw) - 1)  # (N, 1)
    t = torch.arange(L, device=x.device, dtype=x.dtype) - (L - 1) / 2  # centred, (L,)
    source = t / stretch + (L - 1) / 2 - shift  # where each output sample reads, (N, L)
    grid = torch.stack([2 * source / (L - 1) - 1, torch.zeros_like(source)], -1)  # (N, L, 2)
    out = F.grid_sample(
        x.view(N, 1, 1, L), grid.unsqueeze(1), align_corners=True, padding_mode="border"
    ).view(N, L)
    low, high = scale
    out = out * (low + (high - low) * torch.rand(N, 1, **kw))
    ramp = torch.linspace(-0.5, 0.5, L, device=x.device, dtype=x.dtype)  # (L,)
    out = out + max_shear * (2 * torch.rand(N, 1, **kw) - 1) * ramp
    smooth = F.avg_pool1d(F.pad(torch.randn(N, 1, L, **kw), (3, 3), mode="replicate"), 7, 1)
    return out + noise_std * torch.randn(N, L, **kw) + smooth_noise_std * smooth.view(N, L)


def augment_image(
    x: Tensor,
    *,
    max_translate: int = 1,
    max_rotation: float = 15.0,
    noise_std: float = 0.05,
    cutout: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random view of each small image: rotation + translation, noise, cutout.

    Args:
        x: images, :math:`(N, C, H, W)`.
        max_translate: largest shift in pixels. Default: ``1``
        max_rotation: largest rotation in degrees, either way. Default: ``15.0``
        noise_std: Gaussian noise. Default: ``0.05``
        cutout: side of a square set to 0 at a random place (0: none). Default: ``2``
        generator: random number generator. Default: torch's global one

    Returns:
        Tensor: :math:`(N, C, H, W)`.
    """
    if x.dim() != 4:
        raise ValueError(f"x: expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    N, C, H, W = x.shape
    kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
    angle = (2 * torch.rand(N, **kw) - 1) * math.radians(max_rotation)  # (N,)
    shift = torch.randint(-max_translate, max_translate + 1, (N, 2), generator=generator)
    theta = torch.zeros(N, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = angle.cos(), -angle.sin()
    theta[:, 1, 0], theta[:, 1, 1] = angle.sin(), angle.cos()
    theta[:, 0, 2] = 2 * shift[:, 0].to(x) / W  # normalised coordinates span 2
    theta[:, 1, 2] = 2 * shift[:, 1].to(x) / H
    grid = F.affine_grid(theta, (N, C, H, W), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    out = out + noise_std * torch.randn(N, C, H, W, **kw)
    if cutout:
        ys = torch.randint(0, H - cutout + 1, (N,), generator=generator)
        xs = torch.randint(0, W - cutout + 1, (N,), generator=generator)
        rows = torch.arange(H).view(1, H, 1)
        cols = torch.arange(W).view(1, 1, W)
        hole = (
            (rows >= ys.view(N, 1, 1))
            & (rows < (ys + cutout).view(N, 1, 1))
            & (cols >= xs.view(N, 1, 1))
            & (cols < (xs + cutout).view(N, 1, 1))
        )  # (N, H, W)
        out = out.masked_fill(hole.unsqueeze(1).to(x.device), 0.0)
    return out
