"""How good are features learned without labels? A linear probe and k-nearest neighbours.

Both freeze the encoder (eval mode, no gradients), embed the labelled training samples
and the test samples, and fit the simplest possible classifier on the features: if a
linear model or a nearest-neighbour vote does well, the labels' structure is already in
the representation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["embed", "knn_accuracy", "linear_probe"]


@torch.no_grad()
def embed(encoder: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Features of ``x`` from ``encoder`` in eval mode (its mode restored): ``(N, F)``."""
    was_training = encoder.training
    encoder.eval()
    try:
        return torch.cat([encoder(chunk) for chunk in x.split(batch_size)]).flatten(1)
    finally:
        encoder.train(was_training)


def _check(name: str, data: tuple[Tensor, Tensor]) -> None:
    if not (isinstance(data, tuple) and len(data) == 2):
        raise TypeError(f"{name}: expected a tuple (x, y), got {type(data).__name__}")
    x, y = data
    if len(x) != len(y) or y.dim() != 1 or len(y) == 0:
        raise ValueError(
            f"{name}: expected x of N samples and labels y of shape (N,), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )


def linear_probe(
    encoder: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    weight_decay: float = 1e-3,
    max_iter: int = 200,
) -> float:
    """Test accuracy of a logistic regression on the frozen encoder's features.

    The features are standardised with the training features' mean and standard deviation,
    and a multinomial logistic regression with L2 penalty ``weight_decay`` is fitted by
    full-batch L-BFGS (deterministic), in float64.

    Args:
        encoder: maps inputs to features; frozen here.
        train: ``(x, y)`` labelled training samples (any number per class).
        test: ``(x, y)`` test samples.
        weight_decay: L2 penalty on the weights. Default: ``1e-3``
        max_iter: L-BFGS iterations. Default: ``200``

    Returns:
        float: accuracy on ``test``, in [0, 1].

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(200, 5); y = (x[:, 0] > 0).long()
        >>> linear_probe(nn.Identity(), (x[:100], y[:100]), (x[100:], y[100:])) > 0.9
        True
    """
    _check("train", train)
    _check("test", test)
    z_train, z_test = embed(encoder, train[0]).double(), embed(encoder, test[0]).double()
    mean, std = z_train.mean(0), z_train.std(0, unbiased=False).clamp_min(1e-8)
    z_train, z_test = (z_train - mean) / std, (z_test - mean) / std
    classes = int(max(train[1].max(), test[1].max())) + 1
    linear = nn.Linear(z_train.shape[1], classes).double()
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(
        linear.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(z_train), train[1])
        loss = loss + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (linear(z_test).argmax(1) == test[1]).double().mean().item()


def knn_accuracy(
    encoder: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    k: int = 5,
) -> float:
    """Test accuracy of a k-nearest-neighbour vote (cosine similarity) on frozen features.

    Ties are broken by the summed similarity of the voters.

    Args:
        encoder: maps inputs to features; frozen here.
        train: ``(x, y)`` labelled samples, the neighbours.
        test: ``(x, y)`` test samples.
        k: neighbours per vote (at most the number of training samples). Default: ``5``

    Returns:
        float: accuracy on ``test``.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> knn_accuracy(nn.Identity(), (x, y), (x, y), k=1)
        1.0
    """
    _check("train", train)
    _check("test", test)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    k = min(k, len(train[1]))
    z_train = F.normalize(embed(encoder, train[0]).double(), dim=1)
    z_test = F.normalize(embed(encoder, test[0]).double(), dim=1)
    similarity = z_test @ z_train.T  # (N_test, N_train)
    top, index = similarity.topk(k, dim=1)  # (N_test, k)
    classes = int(max(train[1].max(), test[1].max())) + 1
    votes = torch.zeros(len(z_test), classes, dtype=torch.float64)
    votes.scatter_add_(1, train[1][index], 1.0 + 1e-6 * top)  # count, then similarity
    return (votes.argmax(1) == test[1]).double().mean().item()
