"""How an online learner computes: a forward pass, then one update from dL/d(output).

Both engines take the gradient of the loss with respect to the module's output, computed
by the learner, so that they share the loss and differ only in how they backpropagate:

* :class:`AutogradEngine`: any module and any ``torch.optim`` optimizer. ``forward`` keeps
  the autograd graph; ``step`` calls ``output.backward(grad)`` and ``optimizer.step()``.
* :class:`NumpyMLPEngine`: an ``nn.Sequential`` of ``Linear`` and element-wise activations
  on the CPU, with Adam or SGD. At batch size 1 eager PyTorch spends its time in per-op
  overhead (~5 µs a call here, ~20 calls for the backward and the optimizer), so this
  engine runs the same arithmetic as NumPy calls (~1 µs each) on arrays that *share memory*
  with the module's parameters: the module is trained in place and stays an ordinary
  ``nn.Module``. Its gradients and updates equal autograd's and ``torch.optim``'s (tested
  in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["AutogradEngine", "NumpyMLPEngine"]

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]

_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)
_FAST_OPTIONS = {"adam": {"betas", "eps", "weight_decay"}, "sgd": {"momentum", "weight_decay"}}


class AutogradEngine:
    """Autograd and a ``torch.optim`` optimizer: works for every module.

    Args:
        module: the model; it stays in training mode.
        optimizer: ``(params) -> torch.optim.Optimizer``.
    """

    kind = "autograd"

    def __init__(self, module: nn.Module, optimizer: OptimizerFactory) -> None:
        self.module = module
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = optimizer(self.params)
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer: expected a callable returning a torch.optim.Optimizer, got one "
                f"returning {type(self.optimizer).__name__}"
            )
        self.dtype = self.params[0].dtype if self.params else torch.float32
        self.device = self.params[0].device if self.params else torch.device("cpu")
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """``x`` (N, F) float64 → (outputs (N, C) as float64 NumPy, the graph's output)."""
        out = self.module(torch.from_numpy(x).to(self.device, self.dtype))
        return out.detach().to("cpu", torch.float64).numpy(), out

    def step(self, cache: torch.Tensor, grad_out: np.ndarray) -> None:
        """Backpropagate ``grad_out`` = dL/d(output), (N, C), and take an optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        cache.backward(torch.from_numpy(grad_out).to(self.device, self.dtype))
        self.optimizer.step()

    def scale_lr(self, factor: float) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = lr * factor

    def reset_state(self) -> None:
        self.optimizer.state.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class NumpyMLPEngine:
    """NumPy arithmetic on the parameters of an ``nn.Sequential`` MLP, in place.

    Supported: ``Linear`` (with or without bias), ``ReLU``, ``Tanh``, ``Sigmoid``,
    ``Identity``, nested ``Sequential``; float32 or float64 parameters on the CPU, all
    trainable; Adam (``betas``, ``eps``, ``weight_decay``) or SGD (``momentum``,
    ``weight_decay``) with the formulas of ``torch.optim``. :meth:`supports` says whether
    a module and optimizer qualify.

    The parameters are moved into one contiguous buffer (each ``Parameter`` becomes a view
    of it), so that the optimizer updates them all with a handful of NumPy calls.
    """

    kind = "numpy"

    @staticmethod
    def layers_of(module: nn.Module) -> list[nn.Module] | None:
        """The flat list of layers of a supported Sequential, or ``None``."""
        if type(module) is not nn.Sequential:
            return None
        layers: list[nn.Module] = []
        for child in module:
            if type(child) is nn.Sequential:
                inner = NumpyMLPEngine.layers_of(child)
                if inner is None:
                    return None
                layers += inner
            elif type(child) is nn.Linear or type(child) in _ACTIVATIONS:
                layers.append(child)
            else:
                return None
        return layers

    @staticmethod
    def supports(module: nn.Module, optimizer: str, options: dict[str, Any]) -> bool:
        layers = NumpyMLPEngine.layers_of(module)
        if not layers or optimizer not in _FAST_OPTIONS:
            return False
        if set(options) - _FAST_OPTIONS[optimizer]:
            return False
        params = list(module.parameters())
        dtypes = {p.dtype for p in params}
        return (
            bool(params)
            and all(p.requires_grad and p.device.type == "cpu" for p in params)
            and len(dtypes) == 1
            and dtypes <= {torch.float32, torch.float64}
            and not module._forward_hooks
            and not module._forward_pre_hooks
        )

    def __init__(self, module: nn.Module, optimizer: str, lr: float, options: dict) -> None:
        layers = self.layers_of(module)
        if layers is None or not self.supports(module, optimizer, options):
            raise ValueError("module: not a Sequential MLP that NumpyMLPEngine supports")
        self.module = module
        self.optimizer = optimizer
        self.base_lr = self.lr = float(lr)
        self.options = dict(options)
        params = list(module.parameters())
        self.dtype = params[0].dtype
        total = sum(p.numel() for p in params)
        buffer = torch.empty(total, dtype=self.dtype)
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                buffer[offset : offset + n].copy_(p.reshape(-1))
                p.data = buffer[offset : offset + n].view_as(p)  # the module now reads the buffer
                offset += n
        self.flat = buffer.numpy()  # shares memory with every parameter
        self.grad = np.zeros_like(self.flat)
        # One entry per layer: ("linear", W, b, gW, gb) with views, or (activation name,).
        self.plan: list[tuple] = []
        offset = 0
        for layer in layers:
            if isinstance(layer, nn.Linear):
                views = []
                for p in (layer.weight, layer.bias):
                    if p is None:
                        views += [None, None]
                        continue
                    n = p.numel()
                    views += [
                        self.flat[offset : offset + n].reshape(p.shape),
                        self.grad[offset : offset + n].reshape(p.shape),
                    ]
                    offset += n
                weight, grad_weight, bias, grad_bias = views
                self.plan.append(("linear", weight, bias, grad_weight, grad_bias))
            elif not isinstance(layer, nn.Identity):
                self.plan.append((type(layer).__name__.lower(),))
        self.reset_state()

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``x`` (N, F) float64 → (outputs (N, C) float64, every layer's input and output)."""
        h = x.astype(self.flat.dtype, copy=False)
        acts = [h]
        for op in self.plan:
            if op[0] == "linear":
                h = h @ op[1].T  # (N, out)
                if op[2] is not None:
                    h = h + op[2]
            elif op[0] == "relu":
                h = np.maximum(h, 0)
            elif op[0] == "tanh":
                h = np.tanh(h)
            else:  # sigmoid
                h = 1.0 / (1.0 + np.exp(-h))
            acts.append(h)
        return h.astype(np.float64, copy=False), acts

    def step(self, acts: list[np.ndarray], grad_out: np.ndarray) -> None:
        """Backpropagate dL/d(output) (N, C) through the plan, then update the parameters."""
        g = grad_out.astype(self.flat.dtype, copy=False)
        for i in range(len(self.plan) - 1, -1, -1):
            op, h_in, h_out = self.plan[i], acts[i], acts[i + 1]
            if op[0] == "linear":
                _, weight, bias, grad_weight, grad_bias = op
                np.matmul(g.T, h_in, out=grad_weight)  # (out, in)
                if bias is not None:
                    np.sum(g, axis=0, out=grad_bias)
                if i:
                    g = g @ weight  # (N, in)
            elif op[0] == "relu":
                g = g * (h_out > 0)
            elif op[0] == "tanh":
                g = g * (1 - h_out * h_out)
            else:  # sigmoid
                g = g * (h_out * (1 - h_out))
        self._update()

    def _update(self) -> None:
        p, g, o = self.flat, self.grad, self.options
        if o.get("weight_decay", 0.0):
            g = g + o["weight_decay"] * p
        self.steps += 1
        if self.optimizer == "adam":
            beta1, beta2 = o.get("betas", (0.9, 0.999))
            self.exp_avg += (1 - beta1) * (g - self.exp_avg)  # torch: exp_avg.lerp_(g, 1 - b1)
            self.exp_avg_sq *= beta2
            self.exp_avg_sq += (1 - beta2) * (g * g)
            step_size = self.lr / (1 - beta1**self.steps)
            denom = np.sqrt(self.exp_avg_sq) / np.sqrt(1 - beta2**self.steps) + o.get("eps", 1e-8)
            p -= step_size * (self.exp_avg / denom)
            return
        momentum = o.get("momentum", 0.0)
        if momentum:
            if self.steps == 1:
                self.momentum_buffer[:] = g
            else:
                self.momentum_buffer *= momentum
                self.momentum_buffer += g
            g = self.momentum_buffer
        p -= self.lr * g

    def scale_lr(self, factor: float) -> None:
        self.lr = self.base_lr * factor

    def reset_state(self) -> None:
        self.steps = 0
        self.exp_avg = np.zeros_like(self.flat)
        self.exp_avg_sq = np.zeros_like(self.flat)
        self.momentum_buffer = np.zeros_like(self.flat)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "steps": self.steps,
            "lr": self.lr,
            "exp_avg": torch.from_numpy(self.exp_avg.copy()),
            "exp_avg_sq": torch.from_numpy(self.exp_avg_sq.copy()),
            "momentum_buffer": torch.from_numpy(self.momentum_buffer.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])
        for name in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            getattr(self, name)[:] = state[name].numpy()
