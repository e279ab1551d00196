"""Recipe configs: presets as named overrides, and type-checked ``--set key=value``.

A recipe's ``Config`` is a dataclass whose fields carry simple types: ``int``,
``float``, ``bool``, ``str``, ``Literal[...]``, ``tuple[X, ...]`` of those, or
``X | None``. Values from the command line are parsed by the field's type, and every
value, wherever it comes from, is checked against it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ConfigError", "apply_overrides", "from_dict", "make_config", "validate"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(ValueError):
    """A config value that does not fit its field (the message names field, type, value)."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"tuple[{_type_name(args[0])}, ...]" if args else "tuple"
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _parse(text: str, tp: Any) -> Any:
    """Parse command-line text as type ``tp``; ``ValueError`` if it does not fit."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.lower() in {"none", "null"}:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse(text, arg)
            except ValueError:
                continue
        raise ValueError(text)
    if origin is typing.Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text:
                return choice
        raise ValueError(text)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(_parse(p, item) for p in parts)
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise TypeError(f"unsupported config field type {_type_name(tp)}")


def _fits(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        return isinstance(value, tuple) and all(_fits(v, item) for v in value)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _hints(config_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(config_cls)


def validate(config: Any) -> None:
    """Check every field of a config dataclass against its annotated type.

    Raises:
        ConfigError: naming the first field whose value does not fit.
    """
    hints = _hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _fits(value, hints[field.name]):
            raise ConfigError(
                f"{field.name}: expected {_type_name(hints[field.name])}, got {value!r}"
            )
    check = getattr(config, "check", None)
    if callable(check):  # the recipe's own checks of values and their combinations
        try:
            check()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def _set_fields(config: Any, values: Mapping[str, Any]) -> Any:
    names = [f.name for f in dataclasses.fields(config)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown config field {unknown[0]!r} for {type(config).__name__}; "
            f"known fields: {', '.join(names)}"
        )
    new = dataclasses.replace(config, **values)
    validate(new)
    return new


def apply_overrides(config: Any, assignments: Sequence[str]) -> Any:
    """Return a copy of ``config`` with ``key=value`` assignments parsed by field type.

    Examples:
        >>> @dataclasses.dataclass
        ... class Config:
        ...     epochs: int = 1
        ...     batch_sizes: tuple[int, ...] = (8,)
        >>> apply_overrides(Config(), ["epochs=3", "batch_sizes=2,4"])
        Config(epochs=3, batch_sizes=(2, 4))
        >>> apply_overrides(Config(), ["epochs=abc"])
        Traceback (most recent call last):
        ...
        torchkata.config.ConfigError: --set epochs=abc: field 'epochs' expects int, got 'abc'
    """
    hints = _hints(type(config))
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        if key not in hints:
            _set_fields(config, {key: None})  # raises the unknown-field error
        try:
            values[key] = _parse(text, hints[key])
        except ValueError:
            raise ConfigError(
                f"--set {assignment}: field {key!r} expects {_type_name(hints[key])}, got {text!r}"
            ) from None
    return _set_fields(config, values)


def from_dict(config_cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config from its JSON form (lists become tuples), checking every field."""
    hints = _hints(config_cls)
    fixed = {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
    }
    return _set_fields(config_cls(), fixed)


def make_config(
    config_cls: type,
    presets: Mapping[str, Mapping[str, Any]],
    preset: str,
    overrides: Sequence[str] = (),
) -> Any:
    """``config_cls`` defaults, then the named preset's overrides, then ``--set`` assignments."""
    if preset not in presets:
        raise ConfigError(f"preset: expected one of {sorted(presets)}, got {preset!r}")
    config = _set_fields(config_cls(), presets[preset])
    return apply_overrides(config, overrides)
