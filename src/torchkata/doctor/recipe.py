"""Recipe ``doctor`` (tip 10): the doctor on a gallery of models, each with one planted bug.

Every case of :data:`~torchkata.doctor.GALLERY` is diagnosed with
:func:`~torchkata.doctor.diagnose`; the report shows which checks failed or warned for
each, whether the planted bug was caught by the check meant to catch it, and whether the
healthy models passed without false alarms. ``torchkata doctor --demo`` prints the same
table.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from torchkata.doctor import GALLERY, Diagnosis, diagnose
from torchkata.report import subplots
from torchkata.runs import Run


@dataclasses.dataclass
class Config:
    cases: tuple[str, ...] = ()  # gallery case names to run; empty = all of them
    steps: int = 100  # optimizer steps of the overfit-one-batch check

    def check(self) -> None:
        known = [case.name for case in GALLERY]
        unknown = [name for name in self.cases if name not in known]
        if unknown:
            raise ValueError(f"cases: unknown case {unknown[0]!r}; known cases: {', '.join(known)}")
        if self.steps < 1:
            raise ValueError(f"steps: expected >= 1, got {self.steps!r}")


PRESETS: dict[str, dict] = {"quick": {}, "full": {"steps": 300}}


def selected(cfg: Config) -> list:
    """The gallery cases the config selects, in gallery order."""
    return [case for case in GALLERY if not cfg.cases or case.name in cfg.cases]


def diagnose_gallery(cfg: Config, seed: int = 0) -> Iterator[tuple[object, Diagnosis, float]]:
    """Diagnose each selected gallery case, yielding ``(case, diagnosis, seconds)``."""
    for case in selected(cfg):
        start = time.perf_counter()
        diagnosis = diagnose(**case.build(), steps=cfg.steps, seed=seed)
        yield case, diagnosis, time.perf_counter() - start


def caught(case, diagnosis: Diagnosis) -> bool:
    """A buggy case is caught when its expected check fails; a healthy one when none fails."""
    if case.expected is None:
        return diagnosis.ok
    return case.expected in diagnosis.failed


def gallery_table(results: list[tuple[object, Diagnosis, float]]) -> str:
    """A Markdown table: case, planted bug's check, failed, warned, verdict."""
    lines = [
        "| case | planted bug caught by | failed | warned | verdict |",
        "|---|---|---|---|---|",
    ]
    for case, diagnosis, _ in results:
        verdict = "caught" if caught(case, diagnosis) else "MISSED"
        if case.expected is None:
            verdict = "no false alarm" if diagnosis.ok else "FALSE ALARM"
        lines.append(
            f"| {case.name} | {case.expected or '— (healthy)'} | "
            f"{', '.join(diagnosis.failed) or '—'} | {', '.join(diagnosis.warned) or '—'} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def run(cfg: Config, run: Run) -> None:
    results = []
    gallery = diagnose_gallery(cfg, run.seed)
    for case, diagnosis, seconds in run.progress(gallery, total=len(selected(cfg)), desc="gallery"):
        results.append((case, diagnosis, seconds))
        run.log(
            {
                "case": case.name,
                "expected": case.expected,
                "failed": diagnosis.failed,
                "warned": diagnosis.warned,
                "caught": caught(case, diagnosis),
                "seconds": seconds,
            }
        )

    buggy = [(c, d) for c, d, _ in results if c.expected is not None]
    healthy = [(c, d) for c, d, _ in results if c.expected is None]
    run.note(
        "**Claim 10.1.** The doctor records the symptom (each check's evidence), makes it "
        "reproducible (same seed, bit-identical losses), and shrinks the problem to one batch "
        "and one named module or parameter. Each case of the gallery has one planted bug:\n\n"
        + gallery_table(results)
    )
    if buggy:
        run.headline(
            "planted bugs caught by the check meant for them",
            sum(caught(c, d) for c, d in buggy),
            reference=len(buggy),
            source="all of them",
        )
    if healthy:
        run.headline(
            "healthy models with a false alarm",
            sum(not d.ok for _, d in healthy),
            reference=0,
            source="none",
            higher_is_better=False,
        )
    run.headline("seconds to diagnose the whole gallery", sum(s for *_, s in results), unit="s")
    for case, diagnosis in buggy[:1] + healthy[:1]:
        run.note(f"`diagnose` on **{case.name}**:\n\n```\n{diagnosis}\n```")

    lr = next((d.checks["lr_range"] for _, d in healthy if "lr_range" in d.checks), None)
    if lr is not None and lr.evidence.get("lrs"):
        fig, ax = subplots(figsize=(6, 4))
        ax.plot(lr.evidence["lrs"], lr.evidence["losses"])
        if lr.evidence.get("suggested_lr"):
            ax.axvline(lr.evidence["suggested_lr"], color="red", ls="--", label="suggested")
            ax.legend()
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed loss")
        ax.set_title(f"LR range test, {healthy[0][0].name}")
        ax.grid(alpha=0.3)
        run.figure("lr_range", fig)
    run.finish(
        cases={
            c.name: {"expected": c.expected, "failed": d.failed, "warned": d.warned}
            for c, d, _ in results
        }
    )
