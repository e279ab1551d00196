"""Executable FAQ, tip 10 (debugging): claim 10.1 of FAQ_CLAIMS.md on real models.

Record the symptom, make it reproducible (same seed, same result), shrink it to a minimal
example, then fix it. The doctor automates the first three; the fix is the user's, and
the doctor confirms it.
"""

from __future__ import annotations

from torchkata.doctor import GALLERY, diagnose
from torchkata.doctor.gallery import train_step, train_step_without_zero_grad


def _case(name: str) -> dict:
    return next(case for case in GALLERY if case.name == name).build()


def test_10_1_the_doctor_records_the_symptom_and_names_where_it_starts():
    diagnosis = diagnose(**_case("NaN op"), steps=20)
    finite = diagnosis.checks["finite"]
    assert finite.status == "fail"
    assert "`log`" in finite.summary  # the first module whose output is not finite
    unused = diagnose(**_case("unused layer"), steps=20).checks["gradient_flow"]
    assert unused.status == "fail" and "unused" in unused.summary


def test_10_1_the_doctor_makes_it_reproducible_same_seed_same_result():
    first = diagnose(**_case("healthy MLP"), steps=30, seed=3)
    second = diagnose(**_case("healthy MLP"), steps=30, seed=3)
    for name in ("overfit_batch", "lr_range"):
        assert first.checks[name].evidence == second.checks[name].evidence  # bit-identical
    assert first.checks["reproducibility"].status == "pass"
    # a model whose randomness escapes the seed is reported as such
    assert diagnose(**_case("non-reproducible"), steps=5).checks["reproducibility"].status == "fail"


def test_10_1_the_doctor_shrinks_the_problem_to_one_batch():
    kwargs = _case("healthy MLP")
    x, _ = kwargs["batch"]
    curve = diagnose(**kwargs, steps=50).checks["overfit_batch"].evidence["curve"]
    # the whole diagnosis ran on one batch of 64 digits: a minimal, fast example
    assert len(x) == 64 and len(curve) == 51 and curve[-1] < 0.5 * curve[0]


def test_10_1_after_the_fix_the_same_check_passes():
    broken = _case("missing zero_grad")
    assert broken["train_step"] is train_step_without_zero_grad
    assert diagnose(**broken, steps=5).checks["zero_grad"].status == "fail"
    fixed = {**broken, "train_step": train_step}  # the fix: optimizer.zero_grad() each step
    assert diagnose(**fixed, steps=5).checks["zero_grad"].status == "pass"
