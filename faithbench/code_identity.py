"""The identity of code that has no source file (a class or function defined in a notebook cell or an
interactive session): a digest of what it computes, for its cache keys
(:func:`faithbench.configurable.package_version`). A plugin in a local source file is keyed by its
source and by this digest too, for the current values of the module globals its code reads.

The ground floor: it imports nothing of faithbench.
"""

from __future__ import annotations

import hashlib
import os
import sys
import types
from typing import Any

__all__ = ["code_digest"]


def _array_bytes(value: Any) -> bytes:
    import numpy as np  # here: the public API's import stays light

    try:
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        # an object array's bytes are addresses, different in every process: its type and shape only
        return b"" if array.dtype.hasobject else array.tobytes()
    except Exception:  # noqa: BLE001 - an array-like that does not convert: its shape and type only
        return b""


def _without_source(value: Any) -> bool:
    """Whether function or class ``value`` comes from a module without a file (a notebook's ``__main__``,
    an ``exec``'d namespace): its code is all there is to key it by. A module with a file has a version
    or a source digest of its own (:func:`faithbench.configurable.package_version`)."""
    name = getattr(value, "__module__", None)
    if name is None:  # exec'd into a namespace without a __name__
        return True
    if not isinstance(name, str) or name in sys.builtin_module_names:
        return False
    file = getattr(sys.modules.get(name), "__file__", None)
    return not file or not os.path.isfile(file)  # no file, or a pseudo one: "<stdin>", "<ipython-input-3>"


def _names_read(code: types.CodeType) -> set[str]:
    """The global (and attribute) names ``code`` and the code nested in it (lambdas, comprehensions,
    inner functions) read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_read(const)
    return names


def _canonical(value: Any) -> str:
    """``repr`` with every set's items sorted, so that a set of frozensets sorts alike in every process
    (their ``repr`` follows the string hash seed; a diff review)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_canonical(v) for v in value) + ")"
    return repr(value)


def _closure(function: types.FunctionType) -> tuple[Any, ...]:
    """The values ``function`` closes over (a diff review: a closed-over constant), but itself (a recursive
    inner function) and cells not filled yet."""
    values = []
    for cell in function.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            values.append("<empty>")
    return tuple(v for v in values if v is not function)


def code_digest(obj: object) -> str:
    """``"code:<sha256[:16]>"`` of what ``obj`` (a function, or a class with its bases of the same module)
    computes: its functions' bytecode, constants, names, defaults and closures, its simple class attributes,
    and the module globals its functions read by name (a held-out review: ``K = 7.0`` edited in the cell
    kept the key of ``K = 1.0`` and re-served its scores). A global is hashed by its value (numbers,
    strings, containers of them, arrays, tensors), or, a function or class from a module without a file
    (another cell), by its own code, recursively; a module, or a function or class from a file, by its
    name only (its package's version counts). Not line numbers or the cell's file name, so running an
    unchanged cell again keeps the digest; sorted wherever order is not the code's, so every process agrees."""
    digest = hashlib.sha256()
    seen: dict[int, Any] = {}  # functions and classes hashed so far (kept alive, so their ids stay theirs)
    path: set[int] = set()  # containers being hashed: one that holds itself ends there

    def name_of(value: Any) -> bytes:
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}".encode()

    def add_code(value: Any) -> None:
        """A function or class without a source file, by its content; once (a cycle ends in its name)."""
        if id(value) in seen:
            digest.update(b"<again>" + name_of(value))
            return
        seen[id(value)] = value
        if isinstance(value, type):
            module = value.__module__
            for owner in [c for c in value.__mro__ if c.__module__ == module]:
                add(sorted(vars(owner).items(), key=lambda item: item[0]))
            return
        add((value.__code__, value.__defaults__, value.__kwdefaults__, _closure(value)))
        found = value.__globals__
        add([(name, found[name]) for name in sorted(_names_read(value.__code__)) if name in found])

    def add(value: Any) -> None:
        try:
            value = getattr(value, "__func__", value)  # staticmethod, classmethod
            while callable(value) and isinstance(getattr(value, "__wrapped__", None), types.FunctionType) \
                    and not isinstance(value, types.FunctionType):  # lru_cache, functools.wraps: the function
                value = value.__wrapped__  # (a diff review: an edited @lru_cache helper kept the key)
            is_array = hasattr(value, "__array__") and hasattr(value, "shape")
            named = callable(value) and isinstance(getattr(value, "__qualname__", None), str)
        except Exception:  # noqa: BLE001 - a proxy that refuses attributes: its type
            value, is_array, named = type(value), False, False
        if isinstance(value, property):
            value = (value.fget, value.fset)
        if isinstance(value, types.ModuleType):
            digest.update(b"<module>" + value.__name__.encode())
        elif isinstance(value, (types.FunctionType, type)):
            own = getattr(value, "__module__", None) == home  # obj's module: its code, also where it has a file
            add_code(value) if own or _without_source(value) else digest.update(b"<named>" + name_of(value))
        elif is_array:  # numpy arrays, tensors: their values
            digest.update(repr((type(value).__qualname__, tuple(value.shape))).encode() + _array_bytes(value))
        elif isinstance(value, types.CodeType):
            digest.update(value.co_code + repr((value.co_names, value.co_varnames)).encode())
            add(value.co_consts)
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            key = id(value)
            if key in path:
                digest.update(b"<cycle>")
                return
            path.add(key)
            digest.update(b"(")
            if not isinstance(value, (list, tuple)):  # sorted: a set's order varies between processes
                value = sorted(value.items(), key=lambda kv: _canonical(kv[0])) if isinstance(value, dict) else \
                    sorted(value, key=_canonical)
            for item in value:
                add(item)
            digest.update(b")")
            path.discard(key)
        elif isinstance(value, (str, bytes, int, float, complex, type(None))):
            digest.update(repr(value).encode())
        elif named:  # a function of a compiled module, a dispatcher object: np.mean, torch.relu
            digest.update(b"<named>" + name_of(value))
        else:  # any other object: its type (not its attributes)
            digest.update(type(value).__qualname__.encode())

    obj = getattr(obj, "__func__", obj)  # a bound method: its function
    home = getattr(obj, "__module__", None)
    add_code(obj) if isinstance(obj, (types.FunctionType, type)) else add(obj)
    return "code:" + digest.hexdigest()[:16]
