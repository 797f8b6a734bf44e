"""A store for Ray tasks: reads the shared cache, holds new entries for the driver to write.

A task computes with a :class:`DeferredCache` and returns ``pending`` with its output; the
driver writes the entries with :func:`commit`, so exactly one process writes the cache.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from faithbench.store import Cache


class DeferredCache(Cache):
    """Reads through to the cache at ``root``; holds writes in :attr:`pending` for the driver.

    A Ray task computes with one of these and returns ``pending`` with its rows; the driver
    writes the entries with :func:`commit`, so exactly one process writes the cache.
    """

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.pending: list[tuple[str, str, str, Any]] = []
        self._held: dict[tuple[str, str, str], Any] = {}

    def get_tensors(self, kind: str, key: str) -> dict[str, Tensor] | None:
        held = self._held.get((kind, key, "tensors"))
        return held if held is not None else super().get_tensors(kind, key)

    def put_tensors(self, kind: str, key: str, tensors: dict[str, Tensor]) -> Any:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        self._held[(kind, key, "tensors")] = tensors
        self.pending.append((kind, key, "tensors", tensors))
        return self.path(kind, key, "safetensors")

    def get_json(self, kind: str, key: str) -> Any | None:
        held = self._held.get((kind, key, "json"))
        return held if held is not None else super().get_json(kind, key)

    def put_json(self, kind: str, key: str, payload: Any) -> Any:
        self._held[(kind, key, "json")] = payload
        self.pending.append((kind, key, "json", payload))
        return self.path(kind, key, "json")


def commit(cache: Cache, pending: list[tuple[str, str, str, Any]]) -> None:
    """Write the entries a task computed (atomically, one file each)."""
    for kind, key, fmt, payload in pending:
        if fmt == "tensors":
            cache.put_tensors(kind, key, payload)
        else:
            cache.put_json(kind, key, payload)
