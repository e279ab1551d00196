"""Configs: presets are named overrides, ``--set`` is parsed and checked by field type."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from torchkata import registry
from torchkata.config import ConfigError, apply_overrides, from_dict, make_config, validate


@dataclasses.dataclass
class Config:
    epochs: int = 1
    lr: float = 0.1
    shuffle: bool = True
    name: str = "a"
    mode: Literal["sum", "mean"] = "mean"
    sizes: tuple[int, ...] = (2, 4)
    limit: int | None = None


def test_overrides_parse_each_field_type():
    cfg = apply_overrides(
        Config(),
        ["epochs=3", "lr=1e-3", "shuffle=false", "name=b=c", "mode=sum", "sizes=8, 16", "limit=5"],
    )
    assert cfg == Config(3, 1e-3, False, "b=c", "sum", (8, 16), 5)
    assert apply_overrides(Config(limit=5), ["limit=none"]).limit is None
    assert apply_overrides(Config(), ["lr=2"]).lr == 2.0


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("epochs=abc", "field 'epochs' expects int, got 'abc'"),
        ("epochs=1.5", "field 'epochs' expects int, got '1.5'"),
        ("shuffle=maybe", "field 'shuffle' expects bool, got 'maybe'"),
        ("mode=max", "field 'mode' expects 'sum' | 'mean', got 'max'"),
        ("sizes=2,x", r"field 'sizes' expects tuple\[int, ...\], got '2,x'"),
        ("epoch=3", "unknown config field 'epoch' for Config; known fields: epochs, lr"),
        ("epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_field_and_its_type(assignment, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [assignment])


def test_validate_rejects_values_of_the_wrong_type():
    with pytest.raises(ConfigError, match="epochs: expected int, got '3'"):
        validate(Config(epochs="3"))
    with pytest.raises(ConfigError, match="shuffle: expected bool, got 1"):
        validate(Config(shuffle=1))


def test_from_dict_round_trips_the_json_form():
    cfg = Config(epochs=5, sizes=(1, 2, 3))
    as_json = {**dataclasses.asdict(cfg), "sizes": [1, 2, 3]}
    assert from_dict(Config, as_json) == cfg


def test_make_config_applies_preset_then_overrides():
    presets = {"quick": {"epochs": 2}, "full": {}}
    assert make_config(Config, presets, "quick", ["lr=0.5"]) == Config(epochs=2, lr=0.5)
    with pytest.raises(
        ConfigError, match=r"preset: expected one of \['full', 'quick'\], got 'fast'"
    ):
        make_config(Config, presets, "fast")


@pytest.mark.parametrize("tip", registry.TIPS, ids=lambda t: t.name)
def test_every_preset_of_every_recipe_validates(tip):
    module = tip.load()
    assert {"quick", "full"} <= set(module.PRESETS)
    for preset in module.PRESETS:
        make_config(module.Config, module.PRESETS, preset)  # raises if any field is off
    for field in dataclasses.fields(module.Config):  # rule 3: every field has a default
        assert (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
