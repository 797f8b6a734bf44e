"""The identity of code that has no source file (a class or function defined in a notebook cell or an
interactive session): a digest of what it computes, for its cache keys
(:func:`faithbench.configurable.package_version`).

The ground floor: it imports nothing of faithbench.
"""

from __future__ import annotations

import hashlib
import types
from typing import Any

__all__ = ["code_digest"]


def _array_bytes(value: Any) -> bytes:
    import numpy as np  # here: the public API's import stays light

    try:
        return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value).tobytes()
    except Exception:  # noqa: BLE001 - an array-like that does not convert: its shape and type only
        return b""


def code_digest(obj: object) -> str:
    """``"code:<sha256[:16]>"`` of what ``obj`` (a function, or a class with its bases of the same module)
    computes: its functions' bytecode, constants, names and defaults, and its simple class attributes; not
    line numbers or the cell's file name, so running an unchanged cell again keeps the digest."""
    digest = hashlib.sha256()

    def add(value: Any) -> None:
        value = getattr(value, "__func__", value)  # staticmethod, classmethod
        if isinstance(value, property):
            value = (value.fget, value.fset)
        if isinstance(value, types.FunctionType):  # its closure's values too (a diff review: a closed-over constant)
            add((value.__code__, value.__defaults__, value.__kwdefaults__,
                 tuple(c.cell_contents for c in value.__closure__ or () if c.cell_contents is not value)))
        elif hasattr(value, "__array__") and hasattr(value, "shape"):  # numpy arrays, tensors: their values
            digest.update(repr((type(value).__qualname__, tuple(value.shape))).encode() + _array_bytes(value))
        elif isinstance(value, types.CodeType):
            digest.update(value.co_code + repr((value.co_names, value.co_varnames)).encode())
            add(value.co_consts)
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            digest.update(b"(")
            if not isinstance(value, (list, tuple)):  # sorted: a set's order varies between processes
                value = sorted(value.items(), key=lambda kv: repr(kv[0])) if isinstance(value, dict) else \
                    sorted(value, key=repr)
            for item in value:
                add(item)
        else:
            digest.update(repr(value).encode() if isinstance(value, (str, bytes, int, float, complex, type(None)))
                          else type(value).__qualname__.encode())

    module = getattr(obj, "__module__", None)
    for owner in [c for c in getattr(obj, "__mro__", ()) if c.__module__ == module] or [obj]:
        add(sorted(vars(owner).items(), key=lambda item: item[0]) if isinstance(owner, type) else owner)
    return "code:" + digest.hexdigest()[:16]
