"""Parameter types of datasets and models against the annotations of their builders' signatures.

:func:`check_param_types` (called by :func:`faithbench.config.validate_plugins` and the API's
``create_*``): a parameter annotated ``int``, ``float``, ``bool`` or ``str`` (or ``Optional`` of
one) must have that type; other annotations (``Sequence[int] | int``, ``str | tuple``) are the
builder's business. A class's signature is read along its bases while each ``__init__`` takes
``**kwargs`` (MONAI's networks pass most parameters on to a parent class).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable

_SIMPLE = (bool, int, float, str)


def _simple_type(hint: Any) -> tuple[type, bool] | None:
    """``(type, optional)`` when ``hint`` is one of the simple types or ``Optional`` of one."""
    if hint in _SIMPLE:
        return hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _SIMPLE and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return None


def _type_ok(expected: type, value: Any) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _init_chain(target: Callable[..., Any]) -> list[Callable[..., Any]]:
    """``[target]`` for a function; for a class its ``__init__`` and, while each takes ``**kwargs``,
    those of its bases (MONAI's ``DenseNet121(init_features: int, ..., **kwargs)`` passes ``bn_size`` on
    to ``DenseNet``, whose signature annotates it)."""
    if not isinstance(target, type):
        return [target]
    chain: list[Callable[..., Any]] = []
    for cls in target.__mro__:
        if cls is object or cls.__module__.startswith("torch.") or "__init__" not in vars(cls):
            continue
        chain.append(cls.__init__)
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()):
            break
    return chain


def check_param_types(where: str, target: Callable[..., Any], params: dict[str, Any], error: type[Exception],
                      part: str = ".params") -> None:
    """Raise ``error`` naming ``<where><part>.<key>`` for a value of the wrong simple type: the annotation's, else,
    unannotated, text where the default is a number (a review: a builder's ``width=6`` given "a" failed inside the
    builder; lists, bools and other kinds stay the builder's business: ``kernel=3`` may take ``[3, 3]``)."""
    hints: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for part_fn in _init_chain(target):  # the nearest definition of a name wins
        try:
            own = typing.get_type_hints(part_fn)
            found = {n: p.default for n, p in inspect.signature(part_fn).parameters.items() if p.default is not p.empty}
        except Exception:  # unresolvable annotations: the plugin's own checks decide
            break
        hints, defaults = {**own, **hints}, {**found, **defaults}
    for key, value in params.items():
        if value is None and key in defaults and defaults[key] is None:
            continue  # the default itself (``x: int = None``)
        simple = _simple_type(hints.get(key))
        default = defaults.get(key)
        if key not in hints and isinstance(value, str) and isinstance(default, (int, float)) \
                and not isinstance(default, bool):
            raise error(f"{where}{part}.{key}: expected a number (the default is {default!r}), got str {value!r} "
                        "(annotate the parameter if it takes text)")
        if simple is None:
            continue
        expected, optional = simple
        if (value is None and optional) or _type_ok(expected, value):
            continue
        raise error(f"{where}{part}.{key}: expected {expected.__name__}{' or null' if optional else ''}, "
                    f"got {type(value).__name__} {value!r}")
