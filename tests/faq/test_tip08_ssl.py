"""Executable FAQ, tip 8 (self-supervised learning): claims 8.1–8.3 of FAQ_CLAIMS.md.

The document's autoencoder (Linear 784-128-64-12-3 and back, ReLU between, Tanh output)
is trained on the scikit-learn 8x8 digits, flattened to 64 inputs and scaled to [-1, 1]
for the Tanh: the document's widths with ``in_features=64`` instead of 784. (Upsampling
the digits to 28x28 for exactly 784 inputs was measured at 9.5 s per training against
2 s here, with similar results: test reconstruction error 0.58 -> 0.07 and kNN accuracy
0.85 on its codes.)

8.2 uses MNIST-1D and SimCLR (the recipe ``ssl`` measures it at length).

Training reads the images only: ``_train`` takes no labels. Labels enter afterwards, to
evaluate what was learned (kNN on the codes), to pick the "normal" digits an anomaly
detector is trained on, and to compute its AUROC.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from torchkata.data import load_digits
from torchkata.ssl.autoencoders import (
    AutoEncoder,
    DenoisingAutoEncoder,
    anomaly_scores,
    to_tanh_range,
)

EPOCHS = 20  # of Adam at lr 3e-3, batch 32, on 1,437 images: about 2 s on one CPU thread


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    """Train (1437) and test (360) digits: (N, 64) pixels in [-1, 1] and (N,) labels."""
    split = load_digits()
    return {
        "x_train": to_tanh_range(split.x_train.flatten(1)),
        "y_train": split.y_train,
        "x_test": to_tanh_range(split.x_test.flatten(1)),
        "y_test": split.y_test,
    }


def _train(model: nn.Module, x: torch.Tensor, seed: int = 0) -> list[float]:
    """Train ``model`` to reconstruct ``x`` (no labels); the mean loss of each epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the denoising autoencoder's corruption
    history = []
    model.train()
    for _ in range(EPOCHS):
        losses = []
        for idx in torch.randperm(len(x), generator=gen).split(32):
            loss = F.mse_loss(model(x[idx]), x[idx])  # the target is the input itself
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append(sum(losses) / len(losses))
    return history


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.mse_loss(a, b).item()


def _knn_accuracy(train_codes: torch.Tensor, test_codes: torch.Tensor, digits) -> float:
    knn = KNeighborsClassifier(n_neighbors=5).fit(train_codes.numpy(), digits["y_train"].numpy())
    return knn.score(test_codes.numpy(), digits["y_test"].numpy())


@pytest.fixture(scope="module")
def trained(digits) -> dict:
    """The document's autoencoder (64 inputs) before and after training on all train images."""
    torch.manual_seed(0)
    model = AutoEncoder(in_features=64)
    untrained = AutoEncoder(in_features=64)
    untrained.load_state_dict(model.state_dict())
    history = _train(model, digits["x_train"])
    return {"model": model.eval(), "untrained": untrained.eval(), "history": history}


# --------------------------------------------------------------------------- 8.1


def test_8_1_the_documents_autoencoder_learns_to_reconstruct_from_inputs_alone(digits, trained):
    model, untrained, history = trained["model"], trained["untrained"], trained["history"]
    linear = [m for m in [*model.encoder, *model.decoder] if isinstance(m, nn.Linear)]
    widths = [linear[0].in_features] + [m.out_features for m in linear]
    assert widths == [64, 128, 64, 12, 3, 12, 64, 128, 64]  # the document's, with 64 pixels
    assert isinstance(model.decoder[-1], nn.Tanh)

    # the training loss falls epoch after epoch (measured: 0.365 in epoch 1, 0.102 in epoch 20)
    assert history[-1] < 0.4 * history[0]
    assert history[-1] < history[EPOCHS // 2] < history[0]

    # on unseen test digits the error falls substantially ...
    x = digits["x_test"]
    before, after = anomaly_scores(untrained, x).mean(), anomaly_scores(model, x).mean()
    assert after < 0.3 * before  # measured: 0.72 -> 0.115
    # ... and well below predicting the mean training image for every input (0.296):
    # the reconstructions are specific to each digit
    mean_image = _mse(digits["x_train"].mean(0).expand_as(x), x)
    assert after < 0.6 * mean_image  # measured ratio 0.39 (0.47 over seeds 0-3 at worst)


def test_8_1_the_3_number_codes_separate_the_classes_better_than_chance(digits, trained):
    model, untrained = trained["model"], trained["untrained"]
    with torch.no_grad():
        codes = {
            name: (m.encode(digits["x_train"]), m.encode(digits["x_test"]))
            for name, m in (("trained", model), ("untrained", untrained))
        }
    assert codes["trained"][0].shape == (1437, 3)
    # Labels only evaluate the codes: 5-nearest-neighbour accuracy on the 10 classes.
    accuracy = {name: _knn_accuracy(*c, digits) for name, c in codes.items()}
    # measured: 0.869 from the trained encoder (0.80-0.89 over seeds 0-3); chance is 0.10,
    # and the same network before training gives 0.378
    assert accuracy["trained"] > 0.7
    assert accuracy["trained"] > accuracy["untrained"] + 0.3


# --------------------------------------------------------------------------- 8.2


def test_8_2_features_learned_without_labels_help_when_labels_are_few():
    # SimCLR on MNIST-1D's 4,000 training signals, labels never read; then 10 labelled
    # signals per class. A linear probe on the pretrained encoder's features against the
    # same encoder before pretraining (same weights at the start: the gain is learned,
    # not the architecture's) and against logistic regression on the raw signal.
    from torchkata.data.mnist1d import load_mnist1d
    from torchkata.ssl import Conv1dEncoder, SimCLR, augment_signal, linear_probe

    data = load_mnist1d()
    torch.manual_seed(0)
    encoder = Conv1dEncoder(40, 32, 128)
    untrained = Conv1dEncoder(40, 32, 128)
    untrained.load_state_dict(encoder.state_dict())
    model = SimCLR(encoder, 128, projection_dim=64, temperature=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):  # epochs; the recipe's full preset runs 150
        for idx in torch.randperm(len(data.x_train), generator=gen).split(256):
            x = data.x_train[idx]  # signals only
            loss = model(augment_signal(x, generator=gen), augment_signal(x, generator=gen))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    test = (data.x_test, data.y_test)
    for seed in range(3):
        pick = torch.Generator().manual_seed(seed)
        members = [(data.y_train == c).nonzero().flatten() for c in range(10)]
        idx = torch.cat([m[torch.randperm(len(m), generator=pick)[:10]] for m in members])
        few = (data.x_train[idx], data.y_train[idx])
        pretrained = linear_probe(encoder, few, test)
        before = linear_probe(untrained, few, test)
        raw = linear_probe(nn.Identity(), few, test)
        # measured (seeds 0-2): pretrained 0.369 / 0.360 / 0.357, before pretraining
        # 0.257 / 0.259 / 0.257, raw signal 0.203 / 0.228 / 0.206 (chance 0.10)
        assert pretrained > before + 0.04, seed
        assert pretrained > raw + 0.08, seed


# --------------------------------------------------------------------------- 8.3


def test_8_3_compression_64_pixels_to_3_numbers_and_back(digits, trained):
    model = trained["model"]
    x = digits["x_test"]
    with torch.no_grad():
        codes = model.encode(x)  # what would be stored: 3 numbers per image
        rebuilt = model.decoder(codes)
    assert codes.shape == (360, 3) and rebuilt.shape == x.shape == (360, 64)
    torch.testing.assert_close(rebuilt, model(x))
    # The nonlinear 3-number code beats the best linear one, PCA with 3 components fitted on
    # the same training images. Measured: 0.115 against 0.180 (the autoencoder's worst over
    # seeds 0-3 was 0.138); keeping the mean image alone gives 0.296.
    pca = PCA(n_components=3).fit(digits["x_train"].numpy())
    pca_rebuilt = torch.from_numpy(pca.inverse_transform(pca.transform(x.numpy())))
    assert _mse(rebuilt, x) < _mse(pca_rebuilt, x) - 0.02


def test_8_3_denoising_a_denoising_autoencoder_brings_noisy_digits_closer_to_clean(digits, trained):
    torch.manual_seed(0)
    dae = DenoisingAutoEncoder(in_features=64, noise_std=0.5)  # the document's widths
    _train(dae, digits["x_train"])  # sees each image under fresh noise, learns the clean one
    dae.eval()
    clean = digits["x_test"]
    noisy = clean + 0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(100))
    with torch.no_grad():
        denoised, plain = dae(noisy), trained["model"](noisy)
    # Mean squared error to the clean test digits. Measured: noisy input 0.251, denoised
    # 0.131 (0.128-0.136 over seeds 0-3), and the plain autoencoder on the noisy input 0.145
    # (0.143-0.170). A 3-number code cannot rebuild a digit much better than 0.115, so at
    # noise_std 0.3 (noisy input at 0.091) the output was not closer than its input (0.12).
    assert _mse(denoised, clean) < 0.7 * _mse(noisy, clean)
    assert _mse(denoised, clean) < _mse(plain, clean)


@pytest.mark.parametrize(
    ("held_out", "min_auroc"),
    [
        # Class 0 was chosen before measuring (also the recipe's default anomaly_class).
        # Measured AUROC over all ten held-out classes (seed 0): 0: 0.975, 1: 0.956,
        # 2: 0.983, 3: 0.909, 4: 0.970, 5: 0.951, 6: 0.998, 7: 0.980, 8: 0.918, 9: 0.809.
        # Seeds 0-3 gave 0.967-0.975 for class 0.
        (0, 0.85),
        # The hardest of the ten, so the claim is not shown on an easy case only: a 9 shares
        # most strokes with the 3s, 5s and 8s it was trained on. Seeds 0-3: 0.809-0.880.
        (9, 0.7),
    ],
)
def test_8_3_anomaly_detection_a_digit_never_seen_in_training_scores_higher(
    digits, held_out, min_auroc
):
    normal = digits["y_train"] != held_out
    torch.manual_seed(0)
    model = AutoEncoder(in_features=64)
    _train(model, digits["x_train"][normal])  # nine classes of digits, images only
    scores = anomaly_scores(model, digits["x_test"])
    is_anomaly = digits["y_test"] == held_out
    assert scores.shape == (360,) and int(is_anomaly.sum()) == 36
    auroc = roc_auc_score(is_anomaly.numpy(), scores.numpy())
    assert auroc > min_auroc  # measured: 0.975 for class 0, 0.809 for class 9 (seed 0)
    assert scores[is_anomaly].median() > scores[~is_anomaly].median()
