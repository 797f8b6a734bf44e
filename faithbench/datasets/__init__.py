"""Datasets: one file per family. Each registers itself in ``faithbench.registry.datasets``.

Real data is read relative to one data root: ``$FAITHBENCH_DATA`` (e.g. shared/data), or a
dataset's ``root`` parameter (:func:`data_root`).
"""

from faithbench.datasets.base import SPLITS, BaseDataset, Dataset
from faithbench.datasets.folder import FolderDataset
from faithbench.datasets.longitudinal import LongitudinalFolder, PhantomLongitudinal
from faithbench.datasets.medmnist import MedMNIST
from faithbench.datasets.multilabel import PhantomCXRMultiLabel
from faithbench.datasets.paths import ENV_VAR, DataError, DataWarning, data_root, resolve_path
from faithbench.datasets.phantoms import PhantomCXR, PhantomOrgan3D
from faithbench.datasets.semisynthetic import MNILesion
from faithbench.datasets.volumes import VolumeDataset

__all__ = ["ENV_VAR", "SPLITS", "BaseDataset", "DataError", "DataWarning", "Dataset", "FolderDataset",
           "LongitudinalFolder", "MedMNIST", "MNILesion", "PhantomCXR", "PhantomCXRMultiLabel", "PhantomLongitudinal",
           "PhantomOrgan3D", "VolumeDataset", "data_root", "resolve_path"]
