"""Recipe ``gan`` (tip 5): GANs on 2-D mixtures with known modes, then DCGAN on digits.

Part 1 trains MLP GANs on the benchmarks of VEEGAN and PacGAN — a grid of 25 Gaussians
(std 0.05) and a ring of 8 (std 0.01) — with five variants: the non-saturating GAN,
WGAN-GP, hinge loss with a spectrally normalised discriminator, PacGAN packing, and the
non-saturating GAN with the R1 penalty. Each
is scored as in those papers on 2,500 samples (modes covered, fraction of high-quality
samples within 3 std of a mode, KL of the mode histogram to uniform), mean ± std over
seeds, beside the published rows; with ``drs_percentiles``, also after discriminator
rejection sampling of the same generator with the same discriminator.

Part 2 trains a DCGAN on the scikit-learn digits (upsampled to 16x16) and measures it
with a classifier trained here on the real digits: Fréchet distance and precision /
recall of its features against held-out real digits, between the floor (real training
digits) and the ceiling (the untrained generator); then the failure of a too strong
discriminator (claim 5.4) beside the same run with the discriminator kept in check.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import load_digits
from torchkata.data.mixtures import grid25, ring8, sample_mixture
from torchkata.gan.losses import (
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from torchkata.gan.metrics import frechet_distance, mode_coverage, precision_recall
from torchkata.gan.models import (
    EMA,
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
)
from torchkata.gan.sampling import rejection_sample
from torchkata.report import subplots
from torchkata.runs import Run, lr_factor

MIXTURES = {"grid": grid25, "ring": ring8}
# loss kind, discriminator options, gradient-penalty and R1 weights, critic steps per G step
_NS = {"kind": "ns", "pack": 1, "spectral_norm": False, "gp": 0.0, "r1": 0.0, "n_critic": 1}
VARIANTS: dict[str, dict] = {
    "ns": _NS,
    "wgan-gp": _NS | {"kind": "wgan", "gp": 0.1, "n_critic": 5},
    "hinge-sn": _NS | {"kind": "hinge", "spectral_norm": True},
    "packed": _NS | {"pack": 4},  # PacGAN4
    "r1": _NS | {"r1": 1.0},  # Mescheder et al. 2018: gamma/2 * |grad D(real)|^2
}
# Published (modes covered, % high quality): VEEGAN (Srivastava et al. 2017) Table 1 and
# PacGAN (Lin et al. 2018) Table 2, 2,500 samples, mean over runs.
PUBLISHED = {
    "grid": {"VEEGAN": (24.6, 40.0), "WGAN-GP": (24.2, 28.7), "GAN (PacGAN's)": (17.3, 94.8)},
    "ring": {"VEEGAN": (8.0, 52.9), "WGAN-GP": (6.8, 59.6)},
}


@dataclasses.dataclass
class Config:
    mixtures: tuple[str, ...] = ("grid", "ring")  # 2-D benchmarks
    variants: tuple[str, ...] = tuple(VARIANTS)  # ns | wgan-gp | hinge-sn | packed | r1
    seeds: int = 5  # runs per (mixture, variant); the table shows mean ± std
    steps: int = 20_000  # discriminator steps per 2-D run
    batch_size: int = 256
    latent_dim: int = 8
    hidden: int = 256  # width of the MLPs (3 hidden layers each)
    lr_d: float = 2e-4  # Adam; separate rates (TTUR) for D and G
    lr_g: float = 2e-4
    min_lr_ratio: float = 0.02  # both rates decay by a cosine to this fraction; 1: constant
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999  # the evaluated generator is the EMA of G's weights
    eval_samples: int = 2500  # as in VEEGAN / PacGAN
    # Discriminator rejection sampling (Azadi et al. 2019): samples of the EMA generator
    # kept with probability sigmoid(F(x) - gamma), F from D's logit, gamma a percentile
    # of F (see torchkata.gan.sampling); each percentile adds a row per unpacked variant.
    drs_percentiles: tuple[float, ...] = ()
    digits_steps: int = 3000  # DCGAN on digits, steps (0 skips part 2)
    digits_batch: int = 64
    digits_latent: int = 32
    digits_width: int = 32

    def check(self) -> None:
        for name, allowed in (("mixtures", MIXTURES), ("variants", VARIANTS)):
            chosen = getattr(self, name)
            if any(c not in allowed for c in chosen):
                raise ValueError(f"{name}: expected a subset of {tuple(allowed)}, got {chosen!r}")
        for name in ("seeds", "steps", "batch_size", "latent_dim", "hidden", "eval_samples",
                     "digits_batch", "digits_latent", "digits_width"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if any(not 0.0 < p < 100.0 for p in self.drs_percentiles):
            raise ValueError(
                f"drs_percentiles: expected values in (0, 100), got {self.drs_percentiles!r}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio: expected a value in [0, 1], got {self.min_lr_ratio}")
        if self.digits_steps < 0:
            raise ValueError(
                f"digits_steps: expected >= 0 (0 skips part 2), got {self.digits_steps}"
            )
        if self.batch_size % 4:
            raise ValueError(
                f"batch_size: expected a multiple of 4 (packing), got {self.batch_size}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: expected a value in [0, 1), got {self.ema_decay}")


PRESETS: dict[str, dict] = {
    "quick": {
        "mixtures": ("grid",),
        "variants": ("ns", "r1"),
        "seeds": 1,
        "steps": 1000,
        "digits_steps": 250,
    },
    # The setting that meets the 2-D target with NS-GAN + R1 (see the guide):
    # narrower networks, 4x the steps under the cosine decay, and DRS rows.
    "full": {"hidden": 128, "steps": 80_000, "drs_percentiles": (50.0, 80.0, 90.0, 95.0)},
}


def run(cfg: Config, run: Run) -> None:
    table: dict[str, dict] = {}
    samples: dict[str, torch.Tensor] = {}
    for mixture in cfg.mixtures:
        for variant in cfg.variants:
            scores: dict[str, list] = {}
            for seed in range(cfg.seeds):
                results, last = _train_2d(cfg, run, mixture, variant, run.seed * 100 + seed)
                for name, result in results.items():
                    scores.setdefault(f"{mixture}/{name}", []).append(result)
                if seed == 0:
                    samples[f"{mixture}/{variant}"] = last
            table |= {key: _summarise(values) for key, values in scores.items()}
    if cfg.mixtures:
        _report_2d(cfg, run, table, samples)
    digits = _digits(cfg, run) if cfg.digits_steps else None
    run.finish(table=table, digits=digits)


# ---------------------------------------------------------------- part 1: 2-D mixtures


def _train_2d(cfg: Config, run: Run, mixture: str, variant: str, seed: int):
    centers, std = MIXTURES[mixture]()
    v = VARIANTS[variant]
    torch.manual_seed(seed)
    G = MLPGenerator(cfg.latent_dim, cfg.hidden, 2, num_layers=3)
    D = MLPDiscriminator(2, cfg.hidden, 3, pack=v["pack"], spectral_norm=v["spectral_norm"])
    ema = EMA(G, cfg.ema_decay, warmup=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    gen = torch.Generator().manual_seed(seed)
    desc = f"{mixture} {variant} seed {seed % 100}"
    for step in run.progress(range(1, cfg.steps + 1), desc=desc):
        factor = lr_factor(step - 1, cfg.steps, min_ratio=cfg.min_lr_ratio)
        for opt, lr in ((opt_d, cfg.lr_d), (opt_g, cfg.lr_g)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        real = sample_mixture(centers, std, cfg.batch_size, generator=gen)
        fake = G(torch.randn(cfg.batch_size, cfg.latent_dim, generator=gen))
        # D step: real and *detached* fakes, so that this step does not train G (claim 5.1)
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = discriminator_loss(d_real, d_fake, v["kind"])
        if v["gp"]:
            loss_d = loss_d + v["gp"] * gradient_penalty(
                D, real, fake, generator=gen, pack=v["pack"]
            )
        if v["r1"]:
            loss_d = loss_d + v["r1"] / 2 * r1_penalty(D, real, pack=v["pack"])
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if step % v["n_critic"]:
            continue
        # G step: through the updated D, with G's graph kept
        loss_g = generator_loss(D(fake), v["kind"])
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema.update(G)
        if step % 500 == 0 or step == cfg.steps:
            run.log({"part": "2d", "mixture": mixture, "variant": variant, "seed": seed,
                     "step": step, "loss_d": loss_d.item(), "loss_g": loss_g.item(),
                     "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(),
                     "grad_norm_g": _grad_norm(G)})  # fmt: skip
    with torch.no_grad():
        z = torch.randn(cfg.eval_samples, cfg.latent_dim, generator=gen)
        out = ema.module(z)
    results = {variant: mode_coverage(out, centers, std)}
    if v["pack"] == 1:  # a packed D scores packs, not samples
        D.eval()
        for percentile in cfg.drs_percentiles:
            drawn = rejection_sample(
                lambda n: ema.module(torch.randn(n, cfg.latent_dim, generator=gen)), D,
                cfg.eval_samples, gamma_percentile=percentile, generator=gen,
            )  # fmt: skip
            results[f"{variant} + DRS p{percentile:g}"] = mode_coverage(drawn.samples, centers, std)
    for name, result in results.items():
        run.log({"part": "2d_result", "mixture": mixture, "variant": name, "seed": seed,
                 "modes": result.modes_covered, "high_quality": result.high_quality,
                 "kl": result.kl})  # fmt: skip
    return results, out


def _grad_norm(model: nn.Module) -> float:
    """The norm of the gradient the last backward pass left in ``model``'s parameters
    (an optimizer step leaves the gradients as they are)."""
    return torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()


def _summarise(scores) -> dict:
    def stat(values):  # KL is inf for a run with no high-quality sample
        if not all(math.isfinite(v) for v in values):
            return {"mean": math.inf, "std": math.nan}
        return {"mean": statistics.mean(values), "std": statistics.pstdev(values)}

    return {
        "modes": stat([s.modes_covered for s in scores]),
        "high_quality": stat([100 * s.high_quality for s in scores]),
        "kl": stat([s.kl for s in scores]),
        "all_modes_every_run": all(s.modes_covered == len(s.counts) for s in scores),
    }


def _report_2d(cfg: Config, run: Run, table: dict, samples: dict) -> None:
    lines = [
        f"2-D mixtures, {cfg.eval_samples:,} samples from the EMA generator after "
        f"{cfg.steps:,} discriminator steps (batch {cfg.batch_size}), mean ± std over "
        f"{cfg.seeds} run(s). High quality: within 3 std of the nearest mode (the ideal "
        "generator scores 98.89%). Target: every mode in every run, >= 95% high quality.",
        "",
        "| mixture | model | modes covered | high quality (%) | KL to uniform |",
        "|---|---|---|---|---|",
    ]
    for key, row in table.items():
        mixture, variant = key.split("/", 1)
        m, hq, kl = row["modes"], row["high_quality"], row["kl"]
        lines.append(
            f"| {mixture} | torchkata {variant} | {m['mean']:.1f} ± {m['std']:.1f} | "
            f"{hq['mean']:.1f} ± {hq['std']:.1f} | {kl['mean']:.3f} |"
        )
    for mixture in cfg.mixtures:
        for name, (modes, hq) in PUBLISHED[mixture].items():
            lines.append(f"| {mixture} | {name} (published) | {modes} | {hq} | |")
    run.note("\n".join(lines))
    rows, cols = len(cfg.mixtures), len(cfg.variants)
    fig, axes = subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for (i, mixture), (j, variant) in itertools.product(
        enumerate(cfg.mixtures), enumerate(cfg.variants)
    ):
        ax, centers = axes[i, j], MIXTURES[mixture]()[0]
        ax.scatter(*samples[f"{mixture}/{variant}"].T.numpy(), s=1, alpha=0.4)
        ax.scatter(*centers.T.numpy(), s=12, c="red", marker="x")
        ax.set_title(f"{mixture}/{variant}", fontsize=8)
        ax.set_aspect("equal")
    run.figure("mixtures", fig)
    for key, row in table.items():
        run.headline(f"{key}: high-quality samples", row["high_quality"]["mean"], reference=95.0,
                     source="this tip's target", unit="%")  # fmt: skip


# ---------------------------------------------------------------- part 2: DCGAN on digits


class _FeatureNet(nn.Module):
    """A small CNN classifier of 16x16 digits; its penultimate layer gives the features."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 16, 64), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _digits(cfg: Config, run: Run) -> dict:
    split = load_digits()

    def prepare(x: torch.Tensor) -> torch.Tensor:  # [0, 1] 8x8 -> [-1, 1] 16x16
        return F.interpolate(x, size=16, mode="bilinear", align_corners=False) * 2 - 1

    x_train, x_test = prepare(split.x_train), prepare(split.x_test)
    torch.manual_seed(run.seed)
    net = _FeatureNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(run.seed)
    for _ in range(8):
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            loss = F.cross_entropy(net(x_train[idx]), split.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x_test).argmax(1) == split.y_test).float().mean().item()

        def features(x: torch.Tensor) -> torch.Tensor:
            return net.features(x).double()

        test_features = features(x_test)
    floor = frechet_distance(features(x_train), test_features)

    def score(G: nn.Module) -> dict:
        with torch.no_grad():
            z = torch.randn(
                len(x_test) * 2, cfg.digits_latent, generator=torch.Generator().manual_seed(7)
            )
            fake = features(G(z))
        precision, recall = precision_recall(test_features, fake, k=3)
        return {
            "fid": frechet_distance(fake, test_features),
            "precision": precision,
            "recall": recall,
        }

    results = {"classifier_accuracy": accuracy, "floor_fid": floor}
    grids = {}
    settings = (("balanced", 2e-4, 1, False), ("strong D", 2e-3, 5, False),
                ("strong D, spectral norm", 2e-3, 5, True))  # fmt: skip
    for setting, lr_d, d_steps, spectral_norm in settings:
        torch.manual_seed(run.seed)
        G = DCGANGenerator(cfg.digits_latent, 16, 1, cfg.digits_width)
        D = DCGANDiscriminator(16, 1, cfg.digits_width, spectral_norm=spectral_norm)
        if setting == "balanced":
            results["ceiling"] = score(G.eval())
            G.train()
        opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for step in run.progress(range(1, cfg.digits_steps + 1), desc=f"DCGAN digits ({setting})"):
            for _ in range(d_steps):
                real = x_train[torch.randint(len(x_train), (cfg.digits_batch,), generator=gen)]
                fake = G(torch.randn(cfg.digits_batch, cfg.digits_latent, generator=gen))
                d_real, d_fake = D(real), D(fake.detach())
                loss_d = discriminator_loss(d_real, d_fake, "ns")
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            loss_g = generator_loss(D(fake), "ns")
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if step % 100 == 0 or step == cfg.digits_steps:
                run.log({"part": "digits", "setting": setting, "step": step,
                         "loss_d": loss_d.item(), "loss_g": loss_g.item(),
                         "d_real": torch.sigmoid(d_real).mean().item(),
                         "d_fake": torch.sigmoid(d_fake).mean().item(),
                         "grad_norm_g": _grad_norm(G)})  # fmt: skip
        G.eval()
        results[setting] = score(G)
        with torch.no_grad():
            grids[setting] = G(
                torch.randn(32, cfg.digits_latent, generator=torch.Generator().manual_seed(3))
            )
    _report_digits(cfg, run, results, grids)
    return results


def _report_digits(cfg: Config, run: Run, results: dict, grids: dict) -> None:
    fig, axes = subplots(len(grids), 1, figsize=(8, 2.2 * len(grids)), squeeze=False)
    for ax, (setting, images) in zip(axes[:, 0], grids.items(), strict=True):
        tiles = images.view(4, 8, 16, 16).permute(0, 2, 1, 3).reshape(64, 128)
        ax.imshow(tiles.numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(setting)
        ax.axis("off")
    run.figure("digits_samples", fig)
    rows = [("real training digits (floor)", {"fid": results["floor_fid"], "precision": math.nan,
                                              "recall": math.nan})]  # fmt: skip
    rows += [(name, results[name]) for name in (*grids, "ceiling")]
    lines = [
        f"DCGAN on the digits upsampled to 16x16, {cfg.digits_steps:,} generator steps. "
        f"Features: a CNN trained here on the real digits (test accuracy "
        f"{100 * results['classifier_accuracy']:.1f}%); Fréchet distance and precision / "
        "recall (k = 3) against the 360 held-out real digits. *Strong D*: 10x the "
        "discriminator's learning rate and 5 discriminator steps per generator step; "
        "*spectral norm*: the same, with every convolution of D spectrally normalised.",
        "",
        "| generator | Fréchet distance | precision | recall |",
        "|---|---|---|---|",
    ]
    for name, r in rows:
        label = "untrained generator (ceiling)" if name == "ceiling" else name
        lines.append(f"| {label} | {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} |")
    run.note("\n".join(lines).replace("nan", "—"))
    run.headline("DCGAN digits: Fréchet distance", results["balanced"]["fid"],
                 reference=results["ceiling"]["fid"], source="untrained generator",
                 higher_is_better=False)  # fmt: skip
