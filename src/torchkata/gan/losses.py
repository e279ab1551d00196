r"""GAN losses, written as functions of the discriminator's outputs, and gradient penalties.

The losses take what the discriminator returns (a logit, or a critic value for
``"wgan"``), never probabilities, and average over all elements of each batch:

- ``"ns"``: discriminator :math:`\mathrm{sp}(-D(x)) + \mathrm{sp}(D(G(z)))`, generator
  :math:`\mathrm{sp}(-D(G(z)))`;
- ``"minimax"``: discriminator as ``"ns"``, generator :math:`-\mathrm{sp}(D(G(z)))`;
- ``"hinge"``: discriminator :math:`[1 - D(x)]_+ + [1 + D(G(z))]_+`, generator
  :math:`-D(G(z))`;
- ``"wgan"``: critic :math:`D(G(z)) - D(x)`, generator :math:`-D(G(z))`;

with :math:`\mathrm{sp}(t) = \log(1 + e^t)` (softplus), so that
:math:`-\log \sigma(t) = \mathrm{sp}(-t)` and :math:`-\log(1 - \sigma(t)) = \mathrm{sp}(t)`:
the ``ns`` discriminator loss is binary cross-entropy with targets 1 (real) and 0 (fake).

- ``minimax`` is the game of Goodfellow et al., "Generative Adversarial Nets", NeurIPS
  2014: the generator minimises :math:`\log(1 - \sigma(D(G(z))))`. Its gradient
  :math:`-\sigma(D(G(z)))` vanishes when the discriminator confidently rejects the fakes,
  which is the case early in training.
- ``ns`` (non-saturating) is the fix from the same paper: maximise
  :math:`\log \sigma(D(G(z)))` instead; the gradient :math:`-\sigma(-D(G(z)))` tends to
  :math:`-1` there. The default, and the one to use.
- ``hinge``: Lim and Ye, "Geometric GAN", 2017; Miyato et al., "Spectral Normalization for
  GANs", ICLR 2018.
- ``wgan``: Arjovsky et al., "Wasserstein GAN", ICML 2017. The critic must be kept
  1-Lipschitz, e.g. with :func:`gradient_penalty`.

Every form is numerically stable: softplus, never ``log(sigmoid(x))``, so values and
gradients stay finite at logits of :math:`\pm 10^4`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KINDS", "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty"]

KINDS: tuple[str, ...] = ("ns", "minimax", "hinge", "wgan")
"""The loss kinds that :func:`discriminator_loss` and :func:`generator_loss` accept."""


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        names = ", ".join(repr(k) for k in KINDS)
        raise ValueError(f"kind: expected one of {names}, got {kind!r}")
    return kind


def _check_outputs(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {tuple(x.shape)}")
    return x


def _check_batch(name: str, x: object) -> Tensor:
    """A non-empty floating-point batch of shape (N, *) with N >= 1."""
    x = _check_outputs(name, x)
    if x.dim() == 0:
        raise ValueError(f"{name}: expected a batch of shape (N, *), got a scalar")
    return x


def _check_target(target: object) -> float:
    if isinstance(target, numbers.Real) and not isinstance(target, bool):
        t = float(target)
        if math.isfinite(t) and t >= 0:
            return t
    raise ValueError(f"target: expected a finite real number >= 0, got {target!r}")


def discriminator_loss(real: Tensor, fake: Tensor, kind: str = "ns") -> Tensor:
    r"""The discriminator's (or critic's) loss, from its outputs on real and fake samples.

    See the module docstring for the formula of each ``kind``. The two terms are averaged
    separately, so ``real`` and ``fake`` may hold different numbers of samples.

    Args:
        real: discriminator outputs :math:`D(x)` on real samples (logits, or critic values
            for ``"wgan"``).
        fake: discriminator outputs :math:`D(G(z))` on generated samples; detach the
            generator's output before the discriminator (``D(G(z).detach())``) so that the
            discriminator's step does not backpropagate into the generator.
        kind: one of :data:`KINDS`: ``"ns"``, ``"minimax"``, ``"hinge"`` or ``"wgan"``.
            Default: ``"ns"``

    Shape:
        - real: :math:`(*)`, any non-empty shape, e.g. :math:`(N,)` or :math:`(N, 1)`.
        - fake: :math:`(*)`, any non-empty shape, e.g. :math:`(M,)` or :math:`(M, 1)`.
        - Output: scalar.

    Examples:
        >>> real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
        >>> round(discriminator_loss(real, fake).item(), 4)  # BCE with targets 1 and 0
        0.7314
        >>> discriminator_loss(real, fake, "hinge").item()  # mean(0, 0) + mean(0, 1.5)
        0.75
        >>> discriminator_loss(real, fake, "wgan").item()  # -0.25 - 2.5
        -2.75
    """
    kind = _check_kind(kind)
    real = _check_outputs("real", real)
    fake = _check_outputs("fake", fake)
    if kind in ("ns", "minimax"):
        # -log sigmoid(real) - log(1 - sigmoid(fake)), without computing a sigmoid
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()  # wgan


def generator_loss(fake: Tensor, kind: str = "ns") -> Tensor:
    r"""The generator's loss, from the discriminator's outputs on generated samples.

    See the module docstring for the formula of each ``kind``. With ``"minimax"`` the loss
    is :math:`\log(1 - \sigma(D(G(z))))` itself, so it is negative, and its gradient
    vanishes where the discriminator rejects the fakes confidently; ``"ns"`` does not.

    Args:
        fake: discriminator outputs :math:`D(G(z))` on generated samples, not detached
            (the loss must backpropagate through the discriminator into the generator).
        kind: one of :data:`KINDS`: ``"ns"``, ``"minimax"``, ``"hinge"`` or ``"wgan"``.
            Default: ``"ns"``

    Shape:
        - fake: :math:`(*)`, any non-empty shape, e.g. :math:`(N,)` or :math:`(N, 1)`.
        - Output: scalar.

    Examples:
        >>> fake = torch.tensor([-8.0], requires_grad=True)  # D is sure it is fake
        >>> for kind in ("ns", "minimax"):
        ...     (grad,) = torch.autograd.grad(generator_loss(fake, kind), fake)
        ...     print(kind, f"{grad.item():.4f}")
        ns -0.9997
        minimax -0.0003
    """
    kind = _check_kind(kind)
    fake = _check_outputs("fake", fake)
    if kind == "ns":
        return F.softplus(-fake).mean()  # -log sigmoid(fake)
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(fake))
    return -fake.mean()  # hinge, wgan


def _check_pack(pack: object, n: int) -> int:
    if not isinstance(pack, numbers.Integral) or isinstance(pack, bool) or pack < 1:
        raise ValueError(f"pack: expected an int >= 1, got {pack!r}")
    if n % pack:
        raise ValueError(f"pack: expected a divisor of the batch size {n}, got {pack}")
    return int(pack)


def _per_pack_output(out: object, n_out: int, pack: int) -> Tensor:
    """The discriminator's output: one value per pack, shape (n_out,) or (n_out, 1)."""
    if not isinstance(out, Tensor) or out.numel() != n_out or (out.dim() and out.shape[0] != n_out):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        per = "sample" if pack == 1 else f"pack of {pack} samples"
        raise ValueError(
            f"discriminator: expected one output per {per}, of shape ({n_out},) or "
            f"({n_out}, 1), got {shape} (a packed discriminator needs pack=...)"
        )
    return out


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    generator: torch.Generator | None = None,
    target: float = 1.0,
    pack: int = 1,
) -> Tensor:
    r"""The WGAN-GP gradient penalty on points between real and fake samples.

    From Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017:

    .. math::
        \hat{x}_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde{x}_i, \quad
        \epsilon_i \sim \mathcal{U}[0, 1], \qquad
        \text{GP} = \frac{1}{N} \sum_i \bigl(\lVert \nabla_{\hat{x}} D(\hat{x}_i) \rVert_2
        - t\bigr)^2

    with one :math:`\epsilon_i` per sample and the norm over all of a sample's
    coordinates. The gradient is taken with ``create_graph=True``, so that
    ``(lambda_gp * gradient_penalty(...)).backward()`` trains the discriminator (the paper
    uses :math:`\lambda = 10`).

    ``real`` and ``fake`` are detached here: the penalty constrains the discriminator
    only, so it must not backpropagate into the generator (nor into whatever made
    ``real``); passing ``G(z)`` without ``.detach()`` is therefore safe.

    Each output of ``discriminator`` must depend on its own sample only (no batch
    normalization; the paper uses layer normalization in the critic), since the gradient
    of the summed outputs is taken as each sample's gradient. A PacGAN discriminator that
    judges ``pack`` consecutive samples together is penalised on packs: one
    :math:`\epsilon` per pack, and the norm of the gradient with respect to the whole
    pack, averaged over the :math:`N / P` packs.

    Args:
        discriminator: the critic :math:`D`, e.g. an ``nn.Module``, mapping a batch to one
            value per sample (per pack of ``pack`` consecutive samples).
        real: real samples :math:`x`.
        fake: generated samples :math:`\tilde{x}`, as many as ``real``.
        generator: source of randomness for :math:`\epsilon`, on the device of ``real``;
            ``None`` uses PyTorch's global generator. Default: ``None``
        target: the gradient norm :math:`t` to pull towards. Default: ``1.0``
        pack: samples :math:`P` per discriminator output, a divisor of :math:`N`.
            Default: ``1``

    Shape:
        - real: :math:`(N, *)`, floating point.
        - fake: :math:`(N, *)`, the shape of ``real``.
        - Output: scalar.

    Examples:
        >>> w = torch.tensor([3.0, 4.0], requires_grad=True)
        >>> critic = lambda x: x @ w  # gradient w everywhere, norm 5
        >>> real, fake = torch.randn(16, 2), torch.randn(16, 2)
        >>> gp = gradient_penalty(critic, real, fake)
        >>> gp.item()  # (5 - 1) ** 2
        16.0
        >>> gp.backward()
        >>> w.grad  # 2 (|w| - 1) w / |w|
        tensor([4.8000, 6.4000])
    """
    real = _check_batch("real", real)
    fake = _check_batch("fake", fake)
    if fake.shape != real.shape:
        raise ValueError(
            f"fake: expected the shape of real, {tuple(real.shape)}, got {tuple(fake.shape)}"
        )
    t = _check_target(target)
    N = real.shape[0]
    P = _check_pack(pack, N)
    eps_shape = (N // P,) + (1,) * (real.dim() - 1)  # (N / P, 1, 1, ...)
    eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype, device=real.device)
    eps = eps.repeat_interleave(P, dim=0)  # (N, 1, ...): consecutive samples share one
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()  # (N, *)
    x_hat.requires_grad_(True)
    out = _per_pack_output(discriminator(x_hat), N // P, P)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)  # (N, *)
    norms = torch.linalg.vector_norm(grad.reshape(N // P, -1), dim=1)  # (N / P,)
    return ((norms - t) ** 2).mean()


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor, *, pack: int = 1) -> Tensor:
    r"""The R1 penalty: the squared gradient norm of the discriminator at real samples.

    From Mescheder et al., "Which Training Methods for GANs do actually Converge?",
    ICML 2018:

    .. math::
        R_1 = \frac{1}{N} \sum_i \lVert \nabla_x D(x_i) \rVert_2^2

    on the discriminator's logits. The paper's regularizer is
    :math:`\frac{\gamma}{2} R_1`: the caller scales by :math:`\gamma / 2` and adds it to
    the discriminator loss. The gradient is taken with ``create_graph=True``, so the
    penalty trains the discriminator; ``real`` is detached here. As for
    :func:`gradient_penalty`, each output must depend on its own sample (pack) only; with
    ``pack`` :math:`P > 1` the mean is over the :math:`N / P` packs.

    Args:
        discriminator: the discriminator :math:`D`, mapping a batch to one logit per
            sample (per pack of ``pack`` consecutive samples).
        real: real samples :math:`x`.
        pack: samples :math:`P` per discriminator output, a divisor of :math:`N`.
            Default: ``1``

    Shape:
        - real: :math:`(N, *)`, floating point.
        - Output: scalar.

    Examples:
        >>> w = torch.tensor([3.0, 4.0], requires_grad=True)
        >>> r1_penalty(lambda x: x @ w, torch.randn(8, 2)).item()  # |w|^2
        25.0
    """
    real = _check_batch("real", real)
    N = real.shape[0]
    P = _check_pack(pack, N)
    x = real.detach().requires_grad_(True)  # (N, *)
    out = _per_pack_output(discriminator(x), N // P, P)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)  # (N, *)
    return grad.reshape(N // P, -1).pow(2).sum(dim=1).mean()
