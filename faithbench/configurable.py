"""Explicit, validated hyperparameters for plugins (explainers and metrics).

A plugin lists every hyperparameter and its default in ``defaults``; ``__init__`` only stores
them (as torchmetrics does). An unknown name or a value of the wrong type raises at once with
what was expected, so a typo in a suite never silently falls back to a default.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ParameterError(ValueError):
    pass


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


class Configurable:
    defaults: ClassVar[dict[str, Any]] = {}
    version: ClassVar[str] = "1"
    registry_name: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        kind = type(self).__name__
        name = getattr(type(self), "registry_name", "") or kind
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "(none)"
            raise ParameterError(f"{name}: unknown parameter {unknown[0]!r}; valid parameters: {valid}")
        for key, value in params.items():
            default = self.defaults[key]
            if not _type_ok(default, value):
                raise ParameterError(
                    f"{name}: parameter {key!r} expects {type(default).__name__} "
                    f"(default {default!r}), got {type(value).__name__} {value!r}"
                )
        self.params: dict[str, Any] = {**self.defaults, **params}
        for key, value in self.params.items():
            setattr(self, key, value)

    @property
    def name(self) -> str:
        return getattr(type(self), "registry_name", "") or type(self).__name__

    def spec(self) -> dict[str, Any]:
        """What a cache key needs: name, implementation version and resolved parameters."""
        return {"name": self.name, "version": self.version, "params": self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
