"""Suite -> cells. A cell is (dataset, model, explainer, seed); cells are independent."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from faithbench.config import PluginSpec, Suite
from faithbench.datasets.paths import DataError
from faithbench.models.checkpoint import ModelSpec
from faithbench.names import counted


@dataclass(frozen=True)
class Cell:
    dataset: PluginSpec
    model: ModelSpec
    explainer: PluginSpec
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset.label}/{self.model.label}/{self.explainer.label}/seed{self.seed}"


@dataclass(frozen=True)
class Group:
    """Cells that share a dataset, a checkpoint and a seed (loaded once by the local executor)."""

    dataset: PluginSpec
    model: ModelSpec
    seed: int
    cells: tuple[Cell, ...]


def plan(suite: Suite) -> list[Group]:
    groups = []
    for seed in suite.seeds:
        for dataset in suite.datasets:
            for model in suite.models:
                if getattr(dataset, "models", None) is not None and model.label not in dataset.models:
                    continue
                cells = tuple(Cell(dataset, model, e, seed) for e in suite.explainers)
                groups.append(Group(dataset, model, seed, cells))
    return groups


def absent_optional(suite: Any) -> list[str]:
    """Labels of the suite's ``optional`` datasets whose test split cannot be had here (validate warned of them)."""
    from faithbench.registry import datasets

    absent = []
    for spec in (s for s in suite.datasets if s.optional):
        try:
            datasets.get(spec.name)(split="test", **spec.params)
        except DataError:
            absent.append(spec.label)
    return absent


def cells_line(suite: Any, groups: list[Any], source: str, error: type[Exception]) -> str:
    """``faithbench validate``'s count: ``N cells`` and, with optional datasets absent here, how many of them run
    (the product stays the suite's; a review: "2 x 4 x 4 x 1 = 16 cells" once the skipped were left out). ``error``
    when none would run (a review: "ok ... 0 to run", then the run computed nothing, exit 2)."""
    absent = absent_optional(suite)
    skipped = sum(len(g.cells) for g in groups if g.dataset.label in absent)
    total = sum(len(g.cells) for g in groups)
    if not absent:
        return counted(total, "cell")
    names = ", ".join(map(repr, absent))
    if skipped == total:
        raise error(f"{source}: every dataset is optional and its data is not here ({names}), so the run would "
                    "compute nothing")
    verb, its = ("are", "their") if len(absent) > 1 else ("is", "its")
    return f"{counted(total, 'cell')}, {total - skipped} to run (optional {names} {verb} skipped, {its} data not " \
           f"here: {counted(skipped, 'cell')})"
