r"""Generators, discriminators and their parts for GANs (tip 5).

- :class:`MLPGenerator` and :class:`MLPDiscriminator`: small fully connected networks for
  2-D toy distributions (rings and grids of Gaussians), the discriminator with PacGAN
  packing and optional spectral normalisation.
- :class:`DCGANGenerator` and :class:`DCGANDiscriminator`: the DCGAN of Radford et al.
  (2016) for square images of any power-of-two size from 8x8 up; at 64x64 they are
  exactly the ``Generator`` and ``Discriminator`` of pytorch/examples' ``dcgan/main.py``
  (layers, parameter names, initialisation), except that the discriminator returns
  logits rather than probabilities: put the sigmoid in the loss
  (``F.binary_cross_entropy_with_logits``), which is the same model, numerically safer.
- :class:`SelfAttention2d` (SAGAN) and :class:`MinibatchStdDev` (ProGAN): layers the
  discriminator can insert.
- :class:`EMA`: an exponential moving average of a generator's weights, the copy that
  is usually sampled from.

Discriminators return logits of shape :math:`(N,)`; the losses in ``torchkata.gan``
take them as they are.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

__all__ = [
    "EMA",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MinibatchStdDev",
    "SelfAttention2d",
]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")


def _check_image_size(image_size: int) -> int:
    """The number of stride-2 stages, log2(image_size / 4), of a valid image size."""
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or image_size < 8
        or image_size & (image_size - 1)
    ):
        raise ValueError(f"image_size: expected a power of two >= 8, got {image_size!r}")
    return int(math.log2(image_size)) - 2


def _check_images(x: Tensor, channels: int, image_size: int) -> None:
    expected = (channels, image_size, image_size)
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"x: expected shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
        )


def _weight(module: nn.Module) -> Tensor:
    """The trainable weight: the unnormalised one of a spectrally normalised layer."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


@torch.no_grad()
def _dcgan_init(module: nn.Module) -> None:
    """pytorch/examples' ``weights_init``, visiting the layers in the same order."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, SelfAttention2d):
            m.gamma.zero_()


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


class SelfAttention2d(nn.Module):
    r"""Self-attention over the positions of a feature map, as in SAGAN.

    From "Self-Attention Generative Adversarial Networks" (Zhang et al., 2019). With the
    :math:`L = H W` positions :math:`x_i \in \mathbb{R}^C` and 1x1 convolutions
    :math:`f, g` (to :math:`C' = \lfloor C / \text{reduction} \rfloor` channels) and
    :math:`h` (to C channels):

    .. math::
        \beta_{j,i} = \frac{\exp(f(x_i)^\top g(x_j))}{\sum_{k=1}^{L} \exp(f(x_k)^\top g(x_j))},
        \qquad o_j = \sum_{i=1}^{L} \beta_{j,i}\, h(x_i), \qquad y_j = x_j + \gamma\, o_j

    :math:`\gamma` starts at 0, so the layer starts as the identity and learns how much
    attention to mix in. This is the formulation of the paper's equations (1)-(3) with
    :math:`h` mapping to C channels directly (no extra output convolution).

    Args:
        channels: C, channels of the input. Default: none, required.
        reduction: C / C', the channel reduction of :math:`f` and :math:`g`.
            Default: ``8``.

    Attributes:
        f, g: ``nn.Conv2d(C, C', 1)``.
        h: ``nn.Conv2d(C, C, 1)``.
        gamma: the scalar :math:`\gamma`, initialised to 0.

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W), the same shape.
        - :meth:`attention`: (N, L, L) with :math:`L = H W`; entry ``[n, j, i]`` is
          :math:`\beta_{j,i}`, so each row sums to 1.

    Examples:
        >>> attn = SelfAttention2d(16)
        >>> x = torch.randn(2, 16, 8, 8)
        >>> attn(x).shape
        torch.Size([2, 16, 8, 8])
        >>> torch.equal(attn(x), x)  # gamma = 0 at initialisation
        True
        >>> attn.attention(x).shape
        torch.Size([2, 64, 64])
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        _check_positive(channels=channels, reduction=reduction)
        if reduction > channels:
            raise ValueError(
                f"reduction: expected at most channels={channels} (so that f and g keep "
                f"at least one channel), got {reduction}"
            )
        self.channels, self.reduction = channels, reduction
        self.f = nn.Conv2d(channels, channels // reduction, 1)
        self.g = nn.Conv2d(channels, channels // reduction, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def reset_parameters(self) -> None:
        for conv in (self.f, self.g, self.h):
            conv.reset_parameters()
        with torch.no_grad():
            self.gamma.zero_()

    def attention(self, x: Tensor) -> Tensor:
        """The attention weights :math:`\\beta`, (N, L, L), rows summing to 1."""
        f = self.f(x).flatten(2)  # (N, C', L)
        g = self.g(x).flatten(2)  # (N, C', L)
        scores = g.transpose(1, 2) @ f  # (N, L, L): [j, i] = g(x_j)·f(x_i)
        return scores.softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x: expected shape (N, {self.channels}, H, W), got {tuple(x.shape)}")
        N, C, H, W = x.shape
        beta = self.attention(x)  # (N, L, L)
        h = self.h(x).flatten(2)  # (N, C, L)
        o = h @ beta.transpose(1, 2)  # (N, C, L): o_j = sum_i beta[j, i] h_i
        return x + self.gamma * o.view(N, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class MinibatchStdDev(nn.Module):
    r"""Appends the minibatch standard deviation as one more feature map, as in ProGAN.

    From "Progressive Growing of GANs for Improved Quality, Stability, and Variation"
    (Karras et al., 2018), section 3. The batch is split into groups of
    :math:`G = \min(\text{group\_size}, N)` samples; within each group, the standard
    deviation of every feature at every position is taken over the G samples, the
    results are averaged over features and positions into one number per group, and that
    number is appended as a constant feature map to each sample of the group. A
    discriminator can then see how varied a batch is, which penalises mode collapse.

    Grouping follows ProGAN's code: the batch is viewed as :math:`(G, M, C, H, W)` with
    :math:`M = N / G`, so sample n belongs to group :math:`n \bmod M`. With
    :math:`x_{g,m}` the g-th sample of group m:

    .. math::
        s_m = \frac{1}{C H W} \sum_{c,h,w}
        \sqrt{\frac{1}{G} \sum_{g=1}^{G} \left(x_{g,m,c,h,w} - \bar{x}_{m,c,h,w}\right)^2
        + 10^{-8}}

    (the biased variance, and :math:`10^{-8}` under the root as in ProGAN).

    Only 4-D inputs (feature maps) are supported.

    Args:
        group_size: the largest group size. Default: ``4``.

    Shape:
        - Input: (N, C, H, W), with N divisible by :math:`\min(\text{group\_size}, N)`.
        - Output: (N, C + 1, H, W), the input followed by the statistic's feature map.

    Examples:
        >>> layer = MinibatchStdDev(group_size=4)
        >>> layer(torch.randn(8, 16, 4, 4)).shape
        torch.Size([8, 17, 4, 4])
        >>> layer(torch.ones(2, 3, 4, 4))[:, -1].max()  # identical samples: sqrt(1e-8)
        tensor(1.0000e-04)
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        _check_positive(group_size=group_size)
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"x: expected shape (N, C, H, W), got {tuple(x.shape)}")
        N, C, H, W = x.shape
        G = min(self.group_size, N)
        if N % G:
            raise ValueError(
                f"x: expected a batch size divisible by min(group_size={self.group_size}, "
                f"N) = {G}, got N={N}"
            )
        M = N // G
        y = x.reshape(G, M, C, H, W)  # (G, M, C, H, W): sample g·M + m is in group m
        y = y - y.mean(dim=0)  # (G, M, C, H, W)
        std = (y.square().mean(dim=0) + 1e-8).sqrt()  # (M, C, H, W)
        s = std.mean(dim=(1, 2, 3))  # (M,)
        s = s.view(1, M, 1, 1, 1).expand(G, M, 1, H, W).reshape(N, 1, H, W)  # (N, 1, H, W)
        return torch.cat([x, s], dim=1)  # (N, C + 1, H, W)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


# ---------------------------------------------------------------------------------------
# Fully connected models for 2-D toy data
# ---------------------------------------------------------------------------------------


class MLPGenerator(nn.Module):
    r"""A fully connected generator: ``num_layers`` Linear-ReLU layers, then a Linear.

    .. math::
        h_1 = \operatorname{ReLU}(W_1 z + b_1), \quad
        h_k = \operatorname{ReLU}(W_k h_{k-1} + b_k), \quad
        x = W_{\text{out}} h_{\text{num\_layers}} + b_{\text{out}}

    The output is linear (unbounded), which suits toy data such as a ring of Gaussians.

    Args:
        latent_dim: Z, the size of the noise vector. Default: ``2``.
        hidden: H, units of each hidden layer. Default: ``128``.
        out_dim: D, the size of a generated sample. Default: ``2``.
        num_layers: hidden Linear layers (each followed by ReLU). Default: ``3``.

    Attributes:
        net: ``nn.Sequential`` of the Linear and ReLU layers (Z → H, H → H, ..., H → D).

    Shape:
        - Input: (N, Z) noise.
        - Output: (N, D) samples.

    Examples:
        >>> G = MLPGenerator()
        >>> G(torch.randn(16, 2)).shape
        torch.Size([16, 2])
        >>> G
        MLPGenerator(
          latent_dim=2, hidden=128, out_dim=2, num_layers=3
          (net): Sequential(
            (0): Linear(in_features=2, out_features=128, bias=True)
            ...
            (6): Linear(in_features=128, out_features=2, bias=True)
          )
        )
    """

    def __init__(
        self, latent_dim: int = 2, hidden: int = 128, out_dim: int = 2, num_layers: int = 3
    ) -> None:
        super().__init__()
        _check_positive(
            latent_dim=latent_dim, hidden=hidden, out_dim=out_dim, num_layers=num_layers
        )
        self.latent_dim, self.hidden = latent_dim, hidden
        self.out_dim, self.num_layers = out_dim, num_layers
        layers: list[nn.Module] = []
        for k in range(num_layers):
            layers += [nn.Linear(latent_dim if k == 0 else hidden, hidden), nn.ReLU()]
        layers.append(nn.Linear(hidden, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z)  # (N, D)

    def extra_repr(self) -> str:
        return (
            f"latent_dim={self.latent_dim}, hidden={self.hidden}, out_dim={self.out_dim}, "
            f"num_layers={self.num_layers}"
        )


class MLPDiscriminator(nn.Module):
    r"""A fully connected discriminator with PacGAN packing and optional spectral norm.

    PacGAN ("PacGAN: The power of two samples in generative adversarial networks", Lin et
    al., 2018) judges ``pack`` samples at once: the input :math:`(N, D)` is viewed as
    :math:`(N / \text{pack}, \text{pack} \cdot D)`, consecutive samples side by side, and
    the network returns one logit per pack. Seeing several samples together lets the
    discriminator notice a lack of diversity, which reduces mode collapse. Real and fake
    batches are packed separately, so each pack is all real or all fake.

    With ``spectral_norm=True`` every Linear layer is wrapped with
    :func:`torch.nn.utils.parametrizations.spectral_norm` ("Spectral Normalization for
    Generative Adversarial Networks", Miyato et al., 2018): its weight is divided by an
    estimate of its largest singular value, refined by one power iteration per forward
    pass in training mode, which bounds the network's Lipschitz constant.

    Args:
        in_dim: D, the size of one sample. Default: ``2``.
        hidden: H, units of each hidden layer. Default: ``128``.
        num_layers: hidden Linear layers (each followed by the activation). Default: ``3``.
        pack: P, samples judged together. Default: ``1`` (no packing).
        spectral_norm: wrap every Linear layer with spectral normalisation.
            Default: ``False``.
        activation: ``"leaky_relu"`` (slope 0.2) or ``"relu"``. Default: ``"leaky_relu"``.

    Attributes:
        net: ``nn.Sequential`` of the Linear and activation layers
            (P·D → H, H → H, ..., H → 1).

    Shape:
        - Input: (N, D), with N divisible by P.
        - Output: (N / P,) logits.

    Examples:
        >>> D = MLPDiscriminator(pack=4, spectral_norm=True)
        >>> D(torch.randn(16, 2)).shape
        torch.Size([4])
        >>> D.net[0].weight.shape  # the packed input: 4 samples of 2 values
        torch.Size([128, 8])
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: int = 128,
        num_layers: int = 3,
        pack: int = 1,
        spectral_norm: bool = False,
        activation: Literal["relu", "leaky_relu"] = "leaky_relu",
    ) -> None:
        super().__init__()
        _check_positive(in_dim=in_dim, hidden=hidden, num_layers=num_layers, pack=pack)
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"activation: expected 'relu' or 'leaky_relu', got {activation!r}")
        self.in_dim, self.hidden, self.num_layers, self.pack = in_dim, hidden, num_layers, pack
        self.spectral_norm, self.activation = bool(spectral_norm), activation
        layers: list[nn.Module] = []
        for k in range(num_layers):
            layers.append(nn.Linear(pack * in_dim if k == 0 else hidden, hidden))
            layers.append(nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2))
        layers.append(nn.Linear(hidden, 1))
        if spectral_norm:
            layers = [_spectral_norm(m) if isinstance(m, nn.Linear) else m for m in layers]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"x: expected shape (N, {self.in_dim}), got {tuple(x.shape)}")
        N, D = x.shape
        if N % self.pack:
            raise ValueError(f"x: expected a batch size divisible by pack={self.pack}, got N={N}")
        x = x.reshape(N // self.pack, self.pack * D)  # (N / P, P·D), consecutive samples
        return self.net(x).squeeze(1)  # (N / P,)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden}, num_layers={self.num_layers}, "
            f"pack={self.pack}, spectral_norm={self.spectral_norm}, "
            f"activation={self.activation!r}"
        )


# ---------------------------------------------------------------------------------------
# DCGAN for images
# ---------------------------------------------------------------------------------------


class DCGANGenerator(nn.Module):
    r"""The DCGAN generator for :math:`S \times S` images, S a power of two >= 8.

    From "Unsupervised Representation Learning with Deep Convolutional Generative
    Adversarial Networks" (Radford et al., 2016), as written in pytorch/examples'
    ``dcgan/main.py``. With :math:`k = \log_2(S / 4)` upsampling stages and width w:

    - ``ConvTranspose2d(Z, w·2^(k-1), 4, 1, 0)``, BatchNorm, ReLU: the noise becomes a
      4x4 map;
    - k - 1 times ``ConvTranspose2d(c, c/2, 4, 2, 1)``, BatchNorm, ReLU: each doubles the
      resolution and halves the channels, down to w;
    - ``ConvTranspose2d(w, C, 4, 2, 1)``, Tanh: the last doubling, to C channels in
      [-1, 1].

    The channel multipliers are thus :math:`2^{k-1}, \dots, 2, 1`: 8, 4, 2, 1 at S = 64
    (exactly pytorch/examples' ``Generator``, with ``nz, ngf, nc = Z, w, C`` and the same
    ``main`` parameter names), 4, 2, 1 at 32, 2, 1 at 16 and 1 at 8. No convolution has a
    bias (BatchNorm supplies the shift). :meth:`reset_parameters` applies
    pytorch/examples' ``weights_init``: convolution weights :math:`\mathcal{N}(0, 0.02^2)`,
    BatchNorm weights :math:`\mathcal{N}(1, 0.02^2)` and biases 0; under the same seed the
    weights equal pytorch/examples' after ``netG.apply(weights_init)``.

    Args:
        latent_dim: Z, the size of the noise vector (``nz``). Default: ``100``.
        image_size: S, the side of the generated images. Default: ``64``.
        channels: C, channels of the images (``nc``). Default: ``3``.
        width: w, channels of the last hidden map (``ngf``). Default: ``64``.

    Attributes:
        main: the ``nn.Sequential`` of layers above.

    Shape:
        - Input: (N, Z) or (N, Z, 1, 1) noise.
        - Output: (N, C, S, S) images in [-1, 1].

    Examples:
        >>> G = DCGANGenerator()
        >>> G(torch.randn(2, 100)).shape
        torch.Size([2, 3, 64, 64])
        >>> sum(p.numel() for p in G.parameters())  # as pytorch/examples' netG
        3576704
        >>> DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)(
        ...     torch.randn(2, 8, 1, 1)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self, latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64
    ) -> None:
        super().__init__()
        _check_positive(latent_dim=latent_dim, channels=channels, width=width)
        stages = _check_image_size(image_size)
        self.latent_dim, self.image_size = latent_dim, image_size
        self.channels, self.width = channels, width
        c = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False),  # (N, c, 4, 4)
            nn.BatchNorm2d(c),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):  # each: (N, c, s, s) -> (N, c / 2, 2s, 2s)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(True),
            ]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        N = z.shape[0]
        if z.shape[1:] not in ((self.latent_dim,), (self.latent_dim, 1, 1)):
            raise ValueError(
                f"z: expected shape (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        return self.main(z.reshape(N, self.latent_dim, 1, 1))  # (N, C, S, S)

    def extra_repr(self) -> str:
        return (
            f"latent_dim={self.latent_dim}, image_size={self.image_size}, "
            f"channels={self.channels}, width={self.width}"
        )


class DCGANDiscriminator(nn.Module):
    r"""The DCGAN discriminator for :math:`S \times S` images, returning logits.

    The mirror of :class:`DCGANGenerator`, as in pytorch/examples' ``dcgan/main.py``.
    With :math:`k = \log_2(S / 4)` downsampling stages and width w:

    - ``Conv2d(C, w, 4, 2, 1)``, LeakyReLU(0.2): halves the resolution;
    - k - 1 times ``Conv2d(c, 2c, 4, 2, 1)``, BatchNorm, LeakyReLU(0.2), down to a 4x4
      map of :math:`w \cdot 2^{k-1}` channels;
    - ``Conv2d(w·2^(k-1), 1, 4, 1, 0)``: one logit per image.

    At S = 64 (channels w, 2w, 4w, 8w) this is exactly pytorch/examples'
    ``Discriminator`` (``nc, ndf = C, w``, the same ``main`` parameter names and
    initialisation, see :class:`DCGANGenerator`) without its final Sigmoid:
    ``torch.sigmoid`` of the output is their output, and
    ``F.binary_cross_entropy_with_logits`` on it is their ``BCELoss`` on the
    probabilities.

    Options, each off by default (leaving the DCGAN above):

    - ``spectral_norm``: every convolution (those of the self-attention layer too) is
      wrapped with :func:`torch.nn.utils.parametrizations.spectral_norm` and the
      BatchNorm layers are dropped, as in SN-GAN (Miyato et al., 2018), where spectral
      normalisation replaces batch statistics in the discriminator; with nothing else to
      supply a shift, every convolution then has a bias. :meth:`reset_parameters`
      re-draws the unnormalised weights; the power-iteration vectors then re-converge
      during training (one step per forward pass in training mode).
    - ``self_attention``: a :class:`SelfAttention2d` (reduction 8, or c if the map has
      c < 8 channels) after the stage whose output is 16x16 (S >= 32), else after the
      first stage.
    - ``minibatch_std``: a :class:`MinibatchStdDev` (group size 4) before the last
      convolution, whose input then has one more channel; the batch size must then be
      divisible by min(4, N).

    Args:
        image_size: S, the side of the input images. Default: ``64``.
        channels: C, channels of the images (``nc``). Default: ``3``.
        width: w, channels of the first feature map (``ndf``). Default: ``64``.
        spectral_norm: spectral normalisation instead of BatchNorm. Default: ``False``.
        self_attention: insert a SAGAN self-attention layer. Default: ``False``.
        minibatch_std: append ProGAN's minibatch standard deviation. Default: ``False``.

    Attributes:
        main: the ``nn.Sequential`` of layers above.

    Shape:
        - Input: (N, C, S, S) images.
        - Output: (N,) logits.

    Examples:
        >>> D = DCGANDiscriminator()
        >>> D(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2])
        >>> sum(p.numel() for p in D.parameters())  # as pytorch/examples' netD
        2765568
        >>> D = DCGANDiscriminator(image_size=32, width=8, spectral_norm=True,
        ...                        self_attention=True, minibatch_std=True)
        >>> D(torch.randn(4, 3, 32, 32)).shape
        torch.Size([4])
        >>> type(D.main[2]).__name__, D.main[-2]  # after the 16x16 stage; before the last conv
        ('SelfAttention2d', MinibatchStdDev(group_size=4))
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        spectral_norm: bool = False,
        self_attention: bool = False,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(channels=channels, width=width)
        stages = _check_image_size(image_size)
        self.image_size, self.channels, self.width = image_size, channels, width
        self.spectral_norm = bool(spectral_norm)
        self.self_attention, self.minibatch_std = bool(self_attention), bool(minibatch_std)
        bias = self.spectral_norm
        attention_after = stages - 3 if stages >= 3 else 0  # the stage whose output is 16x16

        def attention(c: int) -> list[nn.Module]:
            return [SelfAttention2d(c, reduction=min(8, c))] if self_attention else []

        c = width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, c, 4, 2, 1, bias=bias),  # (N, w, S/2, S/2)
            nn.LeakyReLU(0.2, inplace=True),
        ]
        if attention_after == 0:
            layers += attention(c)
        for stage in range(1, stages):  # each: (N, c, s, s) -> (N, 2c, s/2, s/2)
            layers.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=bias))
            if not self.spectral_norm:
                layers.append(nn.BatchNorm2d(2 * c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c *= 2
            if stage == attention_after:
                layers += attention(c)
        if minibatch_std:
            layers.append(MinibatchStdDev(group_size=4))  # (N, c + 1, 4, 4)
        layers.append(nn.Conv2d(c + int(self.minibatch_std), 1, 4, 1, 0, bias=bias))  # (N, 1, 1, 1)
        self.main = nn.Sequential(*layers)
        self.reset_parameters()
        if self.spectral_norm:  # after the initialisation, so the power iteration starts on it
            for m in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
                _spectral_norm(m)

    def reset_parameters(self) -> None:
        _dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, self.channels, self.image_size)
        return self.main(x).view(x.shape[0])  # (N, 1, 1, 1) -> (N,)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, channels={self.channels}, width={self.width}, "
            f"spectral_norm={self.spectral_norm}, self_attention={self.self_attention}, "
            f"minibatch_std={self.minibatch_std}"
        )


# ---------------------------------------------------------------------------------------
# Weight averaging
# ---------------------------------------------------------------------------------------


class EMA:
    r"""An exponential moving average of a model's parameters, kept in a copy.

    Sampling from an average of the generator's recent weights rather than from the
    latest ones gives smoother, usually better samples (Yazıcı et al., "The Unusual
    Effectiveness of Averaging in GAN Training", 2019; used by ProGAN and StyleGAN).
    Each :meth:`update` does, for every parameter,

    .. math::
        \theta_{\text{ema}} \leftarrow d \, \theta_{\text{ema}} + (1 - d)\, \theta

    and copies every buffer (BatchNorm's running statistics, spectral normalisation's
    power-iteration vectors) as it is.

    ``EMA`` is deliberately not an ``nn.Module``: it would otherwise register the copy
    as a submodule of whatever holds it, and its parameters would reach optimizers and
    ``.parameters()`` loops. The averaged copy is :attr:`module`, an ordinary module in
    eval mode whose parameters do not require gradients; call it to sample, and move it
    with ``ema.module.to(device)``.

    Args:
        model: the model to average; a deep copy of it starts the average.
        decay: d, in [0, 1]: 0 copies the model at each update, 1 freezes the copy.
            Default: ``0.999``.
        warmup: use :math:`\min(d, (1 + n) / (10 + n))` at the n-th update (as
            TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so that a
            short run is not dominated by the initial weights. Default: ``False``.

    Attributes:
        module: the averaged copy.
        decay: d.

    Shape:
        - :attr:`module` takes and returns what ``model`` does.

    Examples:
        >>> G = MLPGenerator(hidden=8)
        >>> ema = EMA(G, decay=0.9)
        >>> with torch.no_grad():
        ...     _ = G.net[0].bias.add_(1.0)  # a training step
        >>> ema.update(G)
        >>> round((G.net[0].bias - ema.module.net[0].bias).mean().item(), 4)  # 0.9 behind
        0.9
        >>> ema.module(torch.randn(4, 2)).shape
        torch.Size([4, 2])
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay <= 1:
            raise ValueError(f"decay: expected a float in [0, 1], got {decay!r}")
        self.decay = float(decay)
        self.warmup = warmup
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s parameters; copy its buffers."""
        ours = dict(self.module.named_parameters())
        theirs = dict(model.named_parameters())
        if ours.keys() != theirs.keys():
            raise ValueError(
                "model: expected the parameters of the averaged model, "
                f"{sorted(ours)}, got {sorted(theirs)}"
            )
        self.updates += 1
        n = self.updates
        d = min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay
        for name, p in theirs.items():
            ema = ours[name]
            ema.mul_(d).add_((1 - d) * p)  # d·ema + (1-d)·p, in that order
        ours_b, theirs_b = dict(self.module.named_buffers()), dict(model.named_buffers())
        if ours_b.keys() != theirs_b.keys():
            raise ValueError(
                "model: expected the buffers of the averaged model, "
                f"{sorted(ours_b)}, got {sorted(theirs_b)}"
            )
        for name, b in theirs_b.items():
            ours_b[name].copy_(b)

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged copy's ``state_dict``."""
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Load an averaged copy's ``state_dict`` (strictly)."""
        self.module.load_state_dict(state_dict)

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, module={type(self.module).__name__})"
