"""Explicit, validated hyperparameters for plugins (explainers and metrics).

A plugin lists every hyperparameter and its default in ``defaults``; ``__init__`` only stores them (as torchmetrics
does). An unknown name, a value of the wrong type, a number outside its ``bounds`` or a string outside its ``choices``
raises at once with what was expected, so a typo in a suite never silently falls back to a default (and ``faithbench
validate`` catches it).

Cache identity (:meth:`Configurable.spec`, hashed into every saliency and score key): the registry name, the
parameters, the class attribute ``version`` (bump it when the plugin's output changes) and the version of the
distribution that ships the plugin's module (``my-plugins==1.2.0``; ``faithbench==0.1.0`` for the built-ins). A plugin
module that no installed distribution ships (a local file) contributes the SHA-256 of its source instead, so editing
it recomputes its results, and the digest of its code with the current values of the module globals it reads
(:func:`~faithbench.code_identity.code_digest`), so changing one while the process runs does too.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import importlib.util
import inspect
import json
import math
import numbers
import os
import sys
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AllowInfNan, BeforeValidator

from faithbench.code_identity import code_digest


class ParameterError(ValueError):
    pass


def _number(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        raise ValueError(f"expected a number, got {f'str {value!r}' if isinstance(value, str) else str(value).lower()}")
    return value


# the numeric fields of a suite's pydantic models (suite, recipe, regions, preprocess), as strict as a plugin's
# parameters: YAML's true/false is a boolean, which pydantic's lax mode would take as 1/0 (reliability: true ran 1
# sample), and a quoted '8' a string it would parse; and finite (a review: preprocess std .inf passed every gt=0
# bound and showed the network a blank image)
def _boolean(value: Any) -> Any:
    if not isinstance(value, bool):  # a review: optional: 0 and linear_probe: "yes" were taken
        shown = f"str {value!r}" if isinstance(value, str) else repr(value)
        raise ValueError(f"expected true or false, got {shown}")
    return value


Int = Annotated[int, BeforeValidator(_number)]
Bool = Annotated[bool, BeforeValidator(_boolean)]
def _finite(value: Any) -> Any:
    value = _number(value)  # a review: lr .nan was "Input should be greater than 0" (NaN fails every bound)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value


Float = Annotated[float, BeforeValidator(_finite), AllowInfNan(False)]


@dataclass(frozen=True)
class Bound:
    """The range a numeric hyperparameter must lie in (``None``: unbounded on that side); for a
    list-valued one, every element, and the list must not be empty. A plugin declares them in
    ``bounds``; :class:`Configurable` checks them on construction, so ``faithbench validate``
    rejects a suite with ``draws: 0`` before any computation. ``why``: the reason, added to the
    error (what a value outside the range would do)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def holds(self, value: Any) -> bool:
        """``value`` is a finite real number (a NumPy scalar too) in the range: never NaN or ±inf."""
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        low, high = _bound_text(self.low), _bound_text(self.high)
        if None in (self.low, self.high):
            below = f"{'<' if self.high_open else '<='} {high}"
            return f"{'>' if self.low_open else '>='} {low}" if self.high is None else below
        return f"in {'([' [not self.low_open]}{low}, {high}{')]' [not self.high_open]}"


def _bound_text(value: float | None) -> str:
    """A bound as written: a whole number in full (1000000, not 1e+06), any other as ``:.8g`` (1 - 2**-24 is not 1)."""
    whole = value is not None and float(value).is_integer() and abs(value) < 1e15
    return str(int(value)) if whole else (f"{value:.8g}" if value is not None else "")  # type: ignore[arg-type]


POSITIVE, NON_NEGATIVE, AT_LEAST_ONE = Bound(0, low_open=True), Bound(0), Bound(1)
FRACTION = Bound(0, 1, low_open=True)  # (0, 1]
OPEN_UNIT = Bound(0, 1, low_open=True, high_open=True)  # (0, 1): a probability that leaves both classes
DROPOUT = Bound(0, 1, high_open=True)  # [0, 1): p = 1 zeroes every activation
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38  # finfo(float32) .max (above: inf), .tiny


def check_bound(owner: str, param: str, value: Any, bound: Bound, why: str = "") -> None:
    """Raise ``ParameterError("<owner>: expected <param> <range> (<why>, else the bound's), got <value>")``
    unless ``value`` is a finite number in ``bound``; ``None`` (the parameter's default) passes: dataset
    and model builders call it, so ``faithbench validate`` refuses the value before anything is trained."""
    why = why or bound.why
    if value is not None and not bound.holds(value):
        raise ParameterError(f"{owner}: expected {param} {bound}{f' ({why})' if why else ''}, got {value!r}")


def check_range_pair(owner: str, param: str, value: Any) -> tuple[float, float]:
    """``value`` as ``(min, max)`` with ``0 < min <= max`` (a radius range), else :class:`ParameterError`."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok or not 0 < value[0] <= value[1]:
        raise ParameterError(f"{owner}: expected {param} [min, max] with 0 < min <= max, got {value!r}")
    return float(value[0]), float(value[1])


def _numbers(values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _expected(default: Any) -> str:
    numbers = isinstance(default, (list, tuple)) and default and _numbers(default)
    return "a list of numbers" if numbers else type(default).__name__


def _type_ok(default: Any, value: Any) -> bool:
    """``value`` has the type of ``default``; null only where the default is null (a review: a
    parameter left empty in YAML, ``relu:``, was read as False and ``steps:`` failed every cell)."""
    if default is None or value is None:
        return default is None
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        return not (default and _numbers(default)) or _numbers(value)
    return isinstance(value, type(default))


def unrepresentable(value: Any) -> str | None:
    """Why a number (or a list's) cannot reach torch, as what it expects (a review: 2**64 failed every cell)."""
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            return "finite numbers"
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            return "integers within int64 (-2**63 <= x < 2**63)"
        if isinstance(v, float) and (abs(v) > FLOAT32_MAX or 0 < abs(v) < FLOAT32_TINY):  # a diff review: lime NaN
            return f"numbers within float32's range (0 or {FLOAT32_TINY:.7g} <= |x| <= {FLOAT32_MAX:.7g})"
    return None


class Configurable:
    defaults: ClassVar[dict[str, Any]] = {}
    bounds: ClassVar[dict[str, Bound]] = {}  # merged along the class hierarchy; checked for the keys in defaults
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}  # the allowed values of a string parameter, merged likewise
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
                    f"{name}: parameter {key!r} expects {_expected(default)} "
                    f"(default {default!r}), got " + ("null" if value is None else f"{type(value).__name__} {value!r}")
                )
            if problem := unrepresentable(value):  # .nan / .inf in YAML: every comparison with NaN is false
                raise ParameterError(f"{name}: parameter {key!r} expects {problem}, got {value!r}")
        self.params: dict[str, Any] = {**self.defaults, **params}
        for key, value in self.params.items():
            setattr(self, key, value)
        bounds = {k: b for cls in reversed(type(self).__mro__) for k, b in vars(cls).get("bounds", {}).items()}
        for key, bound in bounds.items():
            value = self.params.get(key)
            if value is None:
                continue
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            if not items or not all(bound.holds(v) for v in items):
                each = "a non-empty list of numbers, each " if isinstance(value, (list, tuple)) else ""
                why = f" ({bound.why})" if bound.why else ""
                raise ParameterError(f"{name}: parameter {key!r} must be {each}{bound}{why}, got {value!r}")
        choices = {k: c for cls in reversed(type(self).__mro__) for k, c in vars(cls).get("choices", {}).items()}
        for key, allowed in choices.items():
            if key in self.params and self.params[key] not in allowed:
                raise ParameterError(f"{name}: parameter {key!r} expects one of {', '.join(allowed)}, "
                                     f"got {self.params[key]!r}")

    @property
    def name(self) -> str:
        return getattr(type(self), "registry_name", "") or type(self).__name__

    def spec(self) -> dict[str, Any]:
        """What a cache key needs: name, implementation version, the shipping package's version
        (:func:`package_version`) and resolved parameters."""
        return {"name": self.name, "version": self.version,
                "package": package_version(type(self).__module__, type(self)), "params": self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


@functools.lru_cache(maxsize=None)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def package_version(module: str, obj: object = None) -> str:
    """``"<dist>==<version>"`` of the distribution that ships ``module`` (its top-level package),
    with ``"+source:<sha256[:16]>"`` appended for an editable install (``pip install -e``: the code
    changes under the same version; a held-out review found an edited plugin's old maps reused);
    for a module no distribution ships, ``"source:<sha256[:16]>"``. The digest covers the module's
    file and the local helper modules it uses (:func:`local_sources`; the file's own digest when it
    uses none), so editing a helper invalidates the plugin's cached results too. Without a file (a
    class defined in a notebook cell, ``__main__`` of an interactive session), ``"code:<sha256[:16]>"``
    of ``obj``'s code (:func:`code_digest`; a held-out review: an edited notebook plugin, registered
    again, got its old version's cached scores), else ``""``. A local file's ``obj`` appends its code
    digest, ``"source:…+code:…"``: the current values of the module globals its code reads (a held-out
    review: a script sweeping a global ``K`` in a loop got the first K's maps back; an installed
    distribution, also an editable one, is keyed by its version and files only). The code digest is
    not cached: it covers the globals the code reads, which another cell may change under the same class."""
    version = _file_version(module)
    if obj is not None and (not version or version.startswith("source:")):
        return f"{version}+{code_digest(obj)}" if version else code_digest(obj)
    return version


@functools.lru_cache(maxsize=None)
def _file_version(module: str) -> str:
    """:func:`package_version` of a module with a distribution or a source file (``""`` without)."""
    top = module.split(".")[0]
    for dist in _distributions().get(top, []):
        try:
            version = f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
        return version + (f"+{_source_digest(module, top)}" if _editable(dist) else "")
    return _source_digest(module)


package_version.cache_clear = _file_version.cache_clear  # type: ignore[attr-defined]  # tests reset it


def installed_version(dist: str = "faithbench") -> str:
    """The installed version of ``dist`` (``faithbench --version``), or ``(not installed)`` when it
    runs from a source tree that is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _editable(dist: str) -> bool:
    """Whether ``dist`` is installed in editable mode (PEP 610 ``direct_url.json``), in any of the
    metadata folders of that name on the path: run from a checkout, setuptools' ``<name>.egg-info``
    in the working directory comes first and has no ``direct_url.json``."""
    for found in metadata.distributions(name=dist):
        try:
            text = found.read_text("direct_url.json")
            if text and json.loads(text).get("dir_info", {}).get("editable"):
                return True
        except Exception:  # noqa: BLE001 - unreadable metadata: not this one
            continue
    return False


def _source_digest(module: str, own: str | None = None) -> str:
    """``"source:<sha256[:16]>"`` of :func:`local_sources` (``""`` without a source file)."""
    try:
        first, *helpers = local_sources(module, own)
        digest = hashlib.sha256(Path(first).read_bytes())
        for path in helpers:
            digest.update(os.path.relpath(path, Path(first).parent).encode() + b"\0" + Path(path).read_bytes())
        return "source:" + digest.hexdigest()[:16]
    except (KeyError, TypeError, OSError, ValueError):
        return ""


@dataclass(frozen=True)
class _Unloaded:
    """A module a source file imports that is not loaded yet: its name and source path."""

    name: str
    path: str


def _imported_modules(module: types.ModuleType) -> list[types.ModuleType | _Unloaded]:
    """The modules ``module``'s source imports, read from its import statements (anywhere: also inside
    functions), as loaded modules or, where not loaded yet, :class:`_Unloaded` (found without importing
    anything, :func:`_unloaded`). ``from helpers import
    FACTOR`` names ``helpers`` (a constant has no ``__module__``, so the globals alone miss it: a
    held-out review edited one and got the old scores) and ``helpers.FACTOR`` (a submodule, if one)."""
    try:
        path = inspect.getsourcefile(module)
        tree = ast.parse(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, SyntaxError, TypeError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__ or "")
            except (ImportError, ValueError):
                continue
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    found: list[types.ModuleType | _Unloaded] = []
    for name in dict.fromkeys(names):
        if name in sys.modules:
            found.append(sys.modules[name])
        else:
            found += _unloaded(name)
    return found


def _unloaded(name: str) -> list[_Unloaded]:
    """The source files of module ``name`` and of its packages, found without importing any of them
    (``importlib.util.find_spec`` of a dotted name imports its parent package: code the plugin
    imports only lazily); a package already loaded is read off ``sys.modules``."""
    parts, out = name.split("."), []
    try:
        loaded = sys.modules.get(parts[0])
        spec = loaded.__spec__ if loaded is not None else importlib.util.find_spec(parts[0])
        for k in range(1, len(parts) + 1):
            if spec is None:
                return out
            if spec.origin and spec.origin.endswith(".py") and ".".join(parts[:k]) not in sys.modules:
                out.append(_Unloaded(".".join(parts[:k]), spec.origin))
            if k < len(parts):
                inner = sys.modules.get(".".join(parts[:k + 1]))
                spec = inner.__spec__ if inner is not None else importlib.machinery.PathFinder.find_spec(
                    ".".join(parts[:k + 1]), list(spec.submodule_search_locations or []))
    except Exception:  # noqa: BLE001 - an unresolvable name: nothing more to hash
        pass
    return out


def local_sources(module: str, own: str | None = None) -> list[str]:
    """The source file of ``module`` (first), then those of the modules it uses, transitively
    through its globals (``import helpers``, ``from helpers import f``) and its import statements
    (``from helpers import FACTOR``, also inside functions), that no distribution ships (but the one
    of top-level package ``own``: an editable install's) and that lie in the folder of ``module``'s
    file or below it: a plugin's own helpers. A helper imported inside a function and not loaded yet
    is hashed but not followed further. TypeError or KeyError when ``module`` has no source file."""
    first = inspect.getsourcefile(sys.modules[module])
    if not first:
        raise TypeError(f"{module} has no source file")
    root = Path(first).resolve().parent
    found: dict[str, str] = {module: first}

    def local(name: str, path: str | None) -> bool:
        top = name.split(".")[0]
        return bool(path) and name not in found and (top == own or not _distributions().get(top)) and \
            Path(path).resolve().is_relative_to(root)

    todo = [sys.modules[module]]
    while todo:
        current = todo.pop()
        for value in [*vars(current).values(), *_imported_modules(current)]:
            if isinstance(value, _Unloaded):  # a helper not loaded yet: its file
                if local(value.name, value.path):
                    found[value.name] = value.path
                continue
            try:
                used = value if isinstance(value, types.ModuleType) else sys.modules.get(value.__module__)
                path = inspect.getsourcefile(used) if used is not None and used.__name__ not in found else None
            except Exception:  # noqa: BLE001 - no __module__, a builtin, a proxy that refuses attributes
                continue
            if path and local(used.__name__, path):
                found[used.__name__] = path
                todo.append(used)
    return [first, *sorted(set(found.values()) - {first})]
