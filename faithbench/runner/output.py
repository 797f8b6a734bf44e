"""The output folder and the cache folder of a run: checked before anything is computed, and
cleared of what a previous run left.

- :func:`prepare_output`: ``--out`` that is a file or cannot be written, or a cache folder that
  cannot be written, raises :class:`~faithbench.runner.errors.UsageError` (exit code 2) at once,
  rather than after hours of training; so does an ``--out`` that holds files a run writes
  (:data:`OWNED`) but no faithbench run (a held-out review: another program's ``index.html``,
  ``results.csv`` and ``plots/curves_my_experiment.png`` were replaced or deleted without a word);
  temporary files that a killed run left (``.<name>.<random>.tmp`` of
  :func:`faithbench.store.atomic_write_bytes`) are removed: in the output folder and its
  ``plots/`` only (under its lock, so never another run's; they were once removed from the
  whole tree below ``--out``, other programs' included), those older than
  :data:`STALE_TMP_SECONDS` anywhere in the cache (which concurrent runs share).
- :func:`clear_owned`: removes the files a run writes (:data:`OWNED`), so a reused ``--out``
  keeps no table, plot or gallery of another suite. Other files in the folder are left alone.
- :func:`versions`: the software the run's ``manifest.json`` names; :func:`plugin_origins` and
  :func:`plugin_packages`: where its plugins came from and the code in their cache keys.
"""

from __future__ import annotations

import errno
import os
import platform
import tempfile
import time
from importlib import metadata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faithbench.configurable import package_version
from faithbench.models.factory import is_external, parse_model_name
from faithbench.registry import datasets, explainers, metrics, models
from faithbench.runner.errors import FolderError
from faithbench.runner.lock import lock_output

if TYPE_CHECKING:
    from faithbench.config import Suite

STALE_TMP_SECONDS = 3600.0
TMP_GLOB = ".*.tmp"  # atomic_write_bytes: mkstemp(prefix=f".{name}.", suffix=".tmp")

# What a run (and `faithbench report`) writes in its output folder: names, or globs relative to it.
OWNED: tuple[str, ...] = (
    "results.parquet", "results.csv", "curves.parquet", "curves.csv", "models.csv", "cost.csv", "skipped.csv",
    "failures.csv", "manifest.json", "reliance.csv", "regions.csv", "region_tests.csv", "region_pairwise.csv",
    "leaderboard.csv", "leaderboard.md", "leaderboard.tex", "pairwise.csv", "friedman.csv", "nemenyi.csv",
    "overall_ranks.csv", "overall_nemenyi.csv", "agreement.csv", "models_summary.csv", "index.html", "samples.csv",
    "repeatability.csv", "strata.csv", "reliability.csv", "calibration.csv", "reliance_saliency.csv",
    "reliance_samples.csv",
    *(f"plots/{stem}.{ext}" for stem in ("gallery_*", "curves_*", "sanity_*", "distributions_*", "cd_*",
                                         "regions_*", "strata_*", "models", "cost") for ext in ("png", "svg")),
)


def _writable_folder(path: Path, what: str, *, create: bool = True) -> None:
    """Raise :class:`FolderError` (of ``what``: "out" or "cache") unless ``path`` is a folder this process can
    write, creating it (``create`` False: creating nothing, by probing its nearest existing folder when it is not
    there yet)."""
    if path.exists() and not path.is_dir():
        raise FolderError(what, path, "is a file, expected a folder")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        probed = next(p for p in (path, *path.parents) if p.exists())
        if not probed.is_dir():  # afile/sub: as mkdir says it
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=probed, prefix=".faithbench-probe."):
            pass
    except OSError as exc:
        raise FolderError(what, path, f"not writable ({exc.strerror or exc})") from None


def remove_tmp_files(root: Path, older_than: float = 0.0, *, recursive: bool = True) -> list[Path]:
    """Remove ``.*.tmp`` files under ``root`` (in ``root`` itself only, ``recursive`` False) whose
    last change is at least ``older_than`` seconds ago; returns the paths removed."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for path in (root.rglob if recursive else root.glob)(TMP_GLOB):
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer finished (os.replace) meanwhile
            continue
    return removed


def prepare_output(out_dir: Path, cache_root: Path) -> None:
    """Check that ``out_dir`` and ``cache_root`` are folders this process can write (creating
    them; an unusable cache is refused before anything is created), and remove temporary files a killed
    run left there. Raises :class:`~faithbench.runner.errors.FolderError` (a ``UsageError``), or
    :class:`~faithbench.runner.errors.OutputInUseError` when another run holds ``out_dir``."""
    out_dir, cache_root = Path(out_dir), Path(cache_root)
    _writable_folder(cache_root, "cache", create=False)  # refused before --out and its lock are made (a review)
    _writable_folder(out_dir, "out")
    _not_foreign(out_dir)
    with lock_output(out_dir):  # another run writing there: refused before the cache is touched
        for folder in (out_dir, out_dir / "plots"):  # where the run writes; not another program's subfolders
            remove_tmp_files(folder, recursive=False)
    _writable_folder(cache_root, "cache")
    remove_tmp_files(cache_root, older_than=STALE_TMP_SECONDS)


def _not_foreign(out_dir: Path) -> None:
    """Raise :class:`FolderError` when ``out_dir`` holds files a run would replace or remove
    (:data:`OWNED`) but is no faithbench run folder (:func:`~faithbench.reports.integrity.is_run_folder`)."""
    from faithbench.reports.integrity import is_run_folder

    if is_run_folder(out_dir):
        return
    found = sorted({p.relative_to(out_dir).as_posix() for pattern in OWNED for p in out_dir.glob(pattern)
                    if p.is_file() or p.is_symlink()})
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise FolderError("out", out_dir, f"holds {shown}, which a run writes, but no faithbench run (no run's "
                          "manifest.json, no results.parquet); choose an empty or new folder, or move those files")


def clear_owned(out_dir: Path, names: Iterable[str] = OWNED) -> list[Path]:
    """Remove the files of ``names`` (file names or globs relative to ``out_dir``) that exist;
    returns them. Call it while holding the folder's lock, just before the run writes its tables."""
    removed: list[Path] = []
    for pattern in names:
        for path in sorted(Path(out_dir).glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def versions() -> dict[str, str]:
    """Python and the distributions a run uses (those installed), with torch's build (``2.14.1+cu130``),
    its CUDA and cuDNN versions and the first GPU's name where CUDA is available: what a paper states of
    a GPU run (a review: ``torch 2.14.1`` alone, no CUDA, no GPU, no MONAI)."""
    import torch

    out = {"python": platform.python_version()}
    for dist in ("faithbench", "torch", "torchvision", "timm", "captum", "grad-cam", "quantus", "numpy",
                 "scipy", "pandas", "scikit-posthocs", "ray", "monai", "zennit", "scikit-image", "nibabel"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    out["torch_build"] = torch.__version__
    if torch.version.cuda:
        out["cuda"] = str(torch.version.cuda)
        out["cudnn"] = str(torch.backends.cudnn.version())
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def model_origin(name: str) -> str:
    """Where a model entry's architecture comes from: the registry's origin of a built-in or
    plugin name, else the library, hub or module that a prefixed name points to."""
    if is_external(name):  # e.g. timm:resnet18, module:my_pkg.models:build_net
        parsed = parse_model_name(name)
        return f"{parsed.source}:{parsed.target}"
    return models.origin(name)


def plugin_origins(suite: Suite) -> dict[str, dict[str, str]]:
    return {
        "datasets": {s.name: datasets.origin(s.name) for s in suite.datasets},
        "models": {s.name: model_origin(s.name) for s in suite.models},
        "explainers": {s.name: explainers.origin(s.name) for s in suite.explainers},
        "metrics": {s.name: metrics.origin(s.name) for s in suite.metrics},
    }


def plugin_packages(suite: Suite) -> dict[str, dict[str, str]]:
    """Per explainer and metric of the suite, the package identity in its cache keys
    (:func:`~faithbench.configurable.package_version`: ``dist==version``, ``+source:…`` for an
    editable install, ``source:…+code:…`` for a local file): which code computed the results (a review:
    the manifest named only ``entry-point:pkg``). Datasets and models that are yours (a plugin, a
    ``pkg.module:callable`` model) too, under the identity in their keys; faithbench's and the libraries'
    are left out (a review: an edited plugin dataset retrained everything, rightly, under an unchanged
    manifest)."""
    from faithbench.models.factory import builder_package

    def package(registry: Any, name: str) -> str:
        try:
            return package_version(registry.get(name).__module__, registry.get(name))
        except Exception:  # noqa: BLE001 - a broken plugin: its cells failed and say why
            return ""
    own_data = [s.name for s in suite.datasets if s.name in datasets.names() and datasets.origin(s.name) != "builtin"]
    return {"explainers": {s.name: package(explainers, s.name) for s in suite.explainers},
            "metrics": {s.name: package(metrics, s.name) for s in suite.metrics},
            "datasets": {name: package(datasets, name) for name in own_data},
            "models": {s.name: found for s in suite.models if (found := builder_package(s.name))}}
