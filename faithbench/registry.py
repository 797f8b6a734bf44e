"""One generic registry per kind of plugin (explainers, metrics, datasets, models).

Built-ins register with a decorator; third-party packages register through the
entry-point group ``faithbench.<kind>`` in their own ``pyproject.toml``::

    [project.entry-points."faithbench.explainers"]
    my_method = "my_pkg.explainers:MyMethod"

An entry point is a lazy placeholder: it is imported on first use; one that cannot be
imported raises :class:`RegistryError` naming the plugin and its package, and leaves the
others usable (``faithbench list`` shows it as broken); so does an explainer or metric entry point
that is not a subclass of :class:`~faithbench.explainers.base.Explainer` /
:class:`~faithbench.metrics.base.Metric` or leaves its ``explain`` / ``compute`` unimplemented
(caught by ``faithbench validate``, not half-way through a run). A duplicate name
raises (a silent overwrite would corrupt results): at registration for a decorated object (the
same class of the same module registered again, as ``importlib.reload`` of a plugin file does,
replaces its entry), and on use for an entry point named like an entry already there (a
held-out review: one installed package's ``gradcam`` entry point broke every command,
``faithbench list`` included; now only a suite naming ``gradcam`` fails, and ``list`` shows it as
broken); an unknown name raises with "did you mean" and the list of valid names.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or duplicate registry name. ``str()`` is the plain message."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


@dataclass
class _Entry(Generic[T]):
    target: T | None
    origin: str  # "builtin", "module:<module>", "entry-point:<dist>", or "string:<module:attr>"
    lazy: str | None = None  # "module:attr" to import on first use


def _import_string(path: str) -> Any:
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"expected a target of the form 'package.module:Name', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A name -> object mapping for one kind of plugin.

    >>> reg: Registry[type] = Registry("widgets")
    >>> @reg.register("blue")
    ... class Blue: ...
    >>> reg.get("blue") is Blue
    True
    """

    def __init__(self, kind: str, builtins: str | None = None, *, base: str | None = None,
                 implements: tuple[str, ...] = (), attributes: tuple[tuple[str, str], ...] = ()) -> None:
        self.kind = kind
        self.base = base  # "module:Name" of the class a lazily loaded plugin must subclass (None: anything)
        self.implements = implements  # methods of ``base`` such a plugin must override
        self.attributes = attributes  # (name, "module:Type"): class attributes such a plugin must set
        self.group = f"faithbench.{kind}"
        self.builtins = builtins  # the package whose import registers the built-ins (on first lookup)
        self._entries: dict[str, _Entry[T]] = {}
        self._conflicts: dict[str, str] = {}  # name -> why it is ambiguous (entry points named like another entry)
        self._entry_points_loaded = False
        self._builtins_loaded = builtins is None

    @property
    def singular(self) -> str:
        return self.kind[:-1] if self.kind.endswith("s") else self.kind

    # -- registration -----------------------------------------------------------------
    def register(self, name: str | None = None, *, origin: str | None = None) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (default: the object's ``__name__``). ``origin``
        (recorded in manifest.json): default ``"builtin"`` for faithbench's own objects and
        ``"module:<its module>"`` for one registered from your code (a review found a local plugin
        recorded as built-in)."""

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot infer a {self.kind} name for {obj!r}; pass name=")
            module = str(getattr(obj, "__module__", "") or "")
            own = module == "faithbench" or module.startswith("faithbench.")
            entry = _Entry(obj, origin or ("builtin" if own else f"module:{module}"))
            if not own:  # as an entry point's (a review: a decorated metric without info crashed load_suite later)
                self._check_plugin(key, entry, obj)
            self._add(key, entry)
            if hasattr(obj, "__dict__") and not isinstance(obj, type(lambda: 0)):
                try:
                    setattr(obj, "registry_name", key)
                except (AttributeError, TypeError):
                    pass
            return obj

        return decorator

    def register_lazy(self, name: str, target: str, *, origin: str | None = None) -> None:
        """Register ``"package.module:Name"`` to be imported on first use."""
        self._add(name, _Entry(None, origin or f"string:{target}", lazy=target))

    def _add(self, name: str, entry: _Entry[T]) -> None:
        if name in self._entries:
            old = self._entries[name]
            same = ("__module__", "__qualname__")  # a reload (importlib, %autoreload), built-ins included
            if old.origin == entry.origin and old.target is not None and entry.target is not None and all(
                    getattr(old.target, a, None) == getattr(entry.target, a, 0) for a in same):
                self._entries[name] = entry  # the same class of the same module, imported again (a reload)
                return
            raise RegistryError(self._duplicate(name, old.origin, entry.origin))
        self._entries[name] = entry

    def _duplicate(self, name: str, old: str, new: str) -> str:
        return f"duplicate {self.singular} name {name!r}: already registered by {old}, now again by {new}"

    def conflicts(self) -> list[str]:
        """Why each entry-point name is ambiguous (named like an entry already there), sorted by name."""
        self.load_entry_points()
        return [self._conflicts[name] for name in sorted(self._conflicts)]

    def conflict(self, name: str) -> str:
        """Why entry-point name ``name`` is ambiguous (named like an entry already there), or ``""``."""
        self.load_entry_points()
        return self._conflicts.get(name, "")

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._conflicts.pop(name, None)

    # -- plugins ------------------------------------------------------------------------
    def load_builtins(self) -> None:
        """Import the package of the built-ins once, so a lookup works before anything else of
        faithbench was imported (``registry.explainers.get("gradcam")`` in a fresh interpreter)."""
        if not self._builtins_loaded:
            self._builtins_loaded = True
            importlib.import_module(self.builtins)  # type: ignore[arg-type]

    def load_entry_points(self) -> None:
        """Register (lazily) the built-ins and every entry point of the group ``faithbench.<kind>``."""
        self.load_builtins()
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(ep.dist, "name", "?") if getattr(ep, "dist", None) else "?"
            if ep.name in self._entries:  # ambiguous: an error where it is used, not for every command
                old = self._entries[ep.name].origin
                self._conflicts[ep.name] = self._duplicate(ep.name, old, f"entry-point:{dist}")
                continue
            self.register_lazy(ep.name, ep.value, origin=f"entry-point:{dist}")

    # -- lookup -------------------------------------------------------------------------
    def get(self, name: str) -> T:
        if not isinstance(name, str):  # else a bare AttributeError from the did-you-mean lookup (a review)
            raise TypeError(f"{self.singular} name expects a str, got {type(name).__name__}")
        self.load_entry_points()
        if name in self._conflicts:
            raise RegistryError(self._conflicts[name])
        try:
            entry = self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None
        if entry.target is None:
            assert entry.lazy is not None
            try:
                target = _import_string(entry.lazy)
            except Exception as exc:  # a plugin's own import error: name the plugin, not our stack
                first = (str(exc).splitlines() or [""])[0]
                raise RegistryError(f"{self.singular} {name!r} ({entry.origin}, {entry.lazy}) cannot be loaded: "
                                    f"{type(exc).__name__}: {first}") from exc
            self._check_plugin(name, entry, target)
            if hasattr(target, "__dict__"):
                try:
                    setattr(target, "registry_name", name)
                except (AttributeError, TypeError):
                    pass
            entry.target = target
        return entry.target

    def _check_plugin(self, name: str, entry: _Entry[T], target: Any) -> None:
        """Raise :class:`RegistryError` unless a plugin's ``target`` (lazily loaded, or registered by the decorator
        from outside faithbench) subclasses ``self.base``, overrides every method of ``self.implements`` and sets
        ``self.attributes``."""
        if self.base is None:
            return
        base = _import_string(self.base)
        where = f"{self.singular} {name!r} ({entry.origin}{f', {entry.lazy}' if entry.lazy else ''})"
        if not (isinstance(target, type) and issubclass(target, base)):
            got = f"the class {target.__name__}" if isinstance(target, type) else f"a {type(target).__name__}"
            raise RegistryError(f"{where} must be a subclass of {base.__module__}.{base.__name__}, got {got}")
        missing = [m for m in self.implements if getattr(target, m, None) is getattr(base, m)]
        if missing:
            raise RegistryError(f"{where} does not implement {', '.join(m + '()' for m in missing)}")
        for attribute, kind in self.attributes:  # a review: a metric without info broke list and validate
            expected = _import_string(kind)
            value = getattr(target, attribute, None)
            if not isinstance(value, expected):
                raise RegistryError(f"{where} must set the class attribute {attribute} to a {expected.__name__}, "
                                    f"got {type(value).__name__}")

    def unknown_message(self, name: str) -> str:
        names = self.names()
        folded = {n.lower(): n for n in names}  # a review: 'GradCAM' got no suggestion
        close = [folded[c] for c in difflib.get_close_matches(name.lower(), list(folded), n=3, cutoff=0.5)]
        hint = f" did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.singular} {name!r};{hint} valid names: {', '.join(names)}"

    def origin(self, name: str) -> str:
        self.load_entry_points()
        return self._entries[name].origin

    def names(self, pattern: str = "*") -> list[str]:
        self.load_entry_points()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


explainers: Registry[Any] = Registry("explainers", builtins="faithbench.explainers",
                                     base="faithbench.explainers.base:Explainer", implements=("explain",))
metrics: Registry[Any] = Registry("metrics", builtins="faithbench.metrics", base="faithbench.metrics.base:Metric",
                                  implements=("compute",), attributes=(("info", "faithbench.types:MetricInfo"),))
datasets: Registry[Any] = Registry("datasets", builtins="faithbench.datasets")
models: Registry[Any] = Registry("models", builtins="faithbench.models")
