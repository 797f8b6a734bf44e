"""Suite -> cells. A cell is (dataset, model, explainer, seed); cells are independent."""

from __future__ import annotations

from dataclasses import dataclass

from faithbench.config import PluginSpec, Suite
from faithbench.models.checkpoint import ModelSpec


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
