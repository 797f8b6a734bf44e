"""Checkpoints that a checkpoint depends on: declared by the model, resolved by the loader.

A model that needs another trained checkpoint first (a temporal model's frozen 2D backbone,
trained on single visits) says so with ``checkpoint_dependencies() -> {name: Dependency}`` and
takes the loaded network with ``attach_dependency(name, model)``.
:func:`~faithbench.models.checkpoint.load_checkpoint` trains or loads each dependency on the
declared view of the data, then attaches it, before the model's own training: no module of a
model family needs to know the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Dependency:
    """A checkpoint to train or load first: architecture ``name`` with ``params``, trained by
    ``recipe`` (a recipe dict) on ``data_view`` of each split (the name of a dataset method that
    returns the dataset to use, e.g. ``visits``; None: the splits as they are)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    data_view: str | None = None


def dependencies_of(model: Any) -> dict[str, Dependency]:
    """What ``model`` declares (nothing for a model without ``checkpoint_dependencies``)."""
    declare = getattr(model, "checkpoint_dependencies", None)
    return dict(declare()) if callable(declare) else {}
