"""Datasets: one file per family. Each registers itself in ``faithbench.registry.datasets``."""

from faithbench.datasets.base import SPLITS, BaseDataset, Dataset
from faithbench.datasets.phantoms import PhantomCXR

__all__ = ["SPLITS", "BaseDataset", "Dataset", "PhantomCXR"]
