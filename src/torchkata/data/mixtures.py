r"""2-D Gaussian mixtures: the ring and grid benchmarks of mode collapse in GANs.

From VEEGAN (Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using Implicit
Variational Learning", NeurIPS 2017) and PacGAN (Lin et al., "PacGAN: The power of two
samples in generative adversarial networks", NeurIPS 2018, section 4.1):

- **2D-ring**: eight Gaussians with means :math:`(\cos(2\pi k/8), \sin(2\pi k/8))`,
  :math:`k = 0, \dots, 7`, and standard deviation 0.01 in each coordinate
  (:func:`ring8`);
- **2D-grid**: twenty-five Gaussians with means :math:`(-4 + 2i, -4 + 2j)`,
  :math:`i, j = 0, \dots, 4`, and standard deviation 0.05 (:func:`grid25`).

Each mode has weight :math:`1/K`. Samples are scored with
:func:`torchkata.gan.metrics.mode_coverage` (modes covered, fraction of high-quality
samples, KL of the mode histogram to uniform).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Mixture", "grid25", "grid_centers", "ring8", "ring_centers", "sample_mixture"]


def _check_positive_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


def _check_real(name: str, value: object, *, strict: bool) -> float:
    """A finite real number ``> 0`` (``strict``) or ``>= 0``, not a bool."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        if math.isfinite(v) and (v > 0 or (not strict and v == 0)):
            return v
    bound = "> 0" if strict else ">= 0"
    raise ValueError(f"{name}: expected a finite real number {bound}, got {value!r}")


class Mixture(NamedTuple):
    """The means of an equal-weight isotropic Gaussian mixture and its standard deviation.

    Unpacks as ``centers, std = ring8()``; pass both to :func:`sample_mixture` and to
    :func:`torchkata.gan.metrics.mode_coverage`.
    """

    centers: Tensor
    """``(K, D)`` means of the K modes."""
    std: float
    """Standard deviation of every mode, in each coordinate."""


def ring_centers(n_modes: int = 8, radius: float = 1.0) -> Tensor:
    r"""Means of ``n_modes`` Gaussians spaced evenly on a circle.

    .. math::
        c_k = r\,\bigl(\cos(2\pi k / n), \sin(2\pi k / n)\bigr), \qquad k = 0, \dots, n - 1.

    The ``n`` means are distinct: several public implementations build the angles with
    ``linspace(0, 2 * pi, 8)``, which includes both :math:`0` and :math:`2\pi`, so they
    get only 7 distinct modes (the first one twice, with double weight) while their
    metrics count 8.

    Args:
        n_modes: number of modes :math:`n`. Default: ``8``
        radius: radius :math:`r` of the circle. Default: ``1.0``

    Shape:
        - Output: :math:`(n, 2)`, in the default floating-point dtype.

    Examples:
        >>> c = ring_centers(4, radius=2.0)
        >>> c.shape
        torch.Size([4, 2])
        >>> (c.round(decimals=6) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
        [[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]]
    """
    n = _check_positive_int("n_modes", n_modes, 1)
    r = _check_real("radius", radius, strict=True)
    # float64 angles, then the default dtype: cos(pi/2) rounds to 6e-17, not 4e-8.
    angles = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n  # (n,)
    centers = r * torch.stack((angles.cos(), angles.sin()), dim=1)  # (n, 2)
    return centers.to(torch.get_default_dtype())


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    r"""Means of ``side * side`` Gaussians on a square grid centred at the origin.

    The coordinates are :math:`\{(i - (s - 1)/2)\, h : i = 0, \dots, s - 1\}` in each
    dimension, :math:`\{-4, -2, 0, 2, 4\}` by default; rows are ordered with the first
    coordinate varying slowest.

    Args:
        side: number of modes :math:`s` along each axis. Default: ``5``
        spacing: distance :math:`h` between neighbouring modes. Default: ``2.0``

    Shape:
        - Output: :math:`(s^2, 2)`, in the default floating-point dtype.

    Examples:
        >>> c = grid_centers()
        >>> c.shape
        torch.Size([25, 2])
        >>> c[:3].tolist()
        [[-4.0, -4.0], [-4.0, -2.0], [-4.0, 0.0]]
    """
    s = _check_positive_int("side", side, 1)
    h = _check_real("spacing", spacing, strict=True)
    coords = (torch.arange(s, dtype=torch.float64) - (s - 1) / 2) * h  # (s,)
    xs, ys = torch.meshgrid(coords, coords, indexing="ij")  # (s, s) each
    centers = torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1)  # (s * s, 2)
    return centers.to(torch.get_default_dtype())


def ring8() -> Mixture:
    """The 2D-ring of VEEGAN and PacGAN: 8 modes on the unit circle, standard deviation 0.01.

    Examples:
        >>> centers, std = ring8()
        >>> centers.shape, std
        (torch.Size([8, 2]), 0.01)
    """
    return Mixture(ring_centers(8, 1.0), 0.01)


def grid25() -> Mixture:
    """The 2D-grid of VEEGAN and PacGAN: 25 modes at {-4, -2, 0, 2, 4}², standard deviation 0.05.

    Examples:
        >>> centers, std = grid25()
        >>> centers.shape, std
        (torch.Size([25, 2]), 0.05)
    """
    return Mixture(grid_centers(5, 2.0), 0.05)


def sample_mixture(
    centers: Tensor, std: float, n: int, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Draw ``n`` samples from the equal-weight mixture of :math:`\mathcal{N}(c_k, \sigma^2 I)`.

    Each sample picks a mode uniformly at random, then adds isotropic Gaussian noise:
    :math:`x = c_k + \sigma z`, :math:`k \sim \mathcal{U}\{0, \dots, K - 1\}`,
    :math:`z \sim \mathcal{N}(0, I)`.

    Args:
        centers: means :math:`c_k` of the K modes, e.g. from :func:`ring_centers`.
        std: standard deviation :math:`\sigma` of every mode (``0`` gives the centers).
        n: number of samples.
        generator: source of randomness, on the device of ``centers``; ``None`` uses
            PyTorch's global generator. Default: ``None``

    Shape:
        - centers: :math:`(K, D)`, floating point.
        - Output: :math:`(n, D)`, the dtype and device of ``centers``.

    Examples:
        >>> centers, std = grid25()
        >>> x = sample_mixture(centers, std, 2500, generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([2500, 2])
        >>> bool(((x - x.round()).abs() < 0.3).all())  # all near the even-integer grid
        True
    """
    if not isinstance(centers, Tensor):
        raise TypeError(f"centers: expected a torch.Tensor, got {type(centers).__name__}")
    if centers.dim() != 2 or centers.shape[0] == 0 or not centers.is_floating_point():
        raise ValueError(
            "centers: expected a floating-point tensor of shape (K, D) with K >= 1, got "
            f"shape {tuple(centers.shape)} and dtype {centers.dtype}"
        )
    sigma = _check_real("std", std, strict=False)
    n = _check_positive_int("n", n, 0)
    K, D = centers.shape
    modes = torch.randint(0, K, (n,), generator=generator, device=centers.device)  # (n,)
    noise = torch.randn(
        (n, D), generator=generator, dtype=centers.dtype, device=centers.device
    )  # (n, D)
    return centers[modes] + sigma * noise
