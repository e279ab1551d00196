import pytest

from torchkata.gan.recipe import Config


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"drs_percentiles": (80.0, 100.0)}, r"drs_percentiles: expected values in \(0, 100\)"),
        ({"min_lr_ratio": 1.5}, r"min_lr_ratio: expected a value in \[0, 1\], got 1.5"),
        ({"steps": 0}, "steps: expected >= 1, got 0"),
    ],
)
def test_bad_settings_are_named(setting: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**setting).check()
