"""3D volumes from files: NIfTI (nibabel) or NRRD (pynrrd), with label maps whose regions have names.

Every volume is brought to one canonical orientation, so masks, saliency and reports agree
across files: nibabel's ``as_closest_canonical`` (RAS+) for NIfTI; for NRRD the header's
``space``, ``space directions`` and ``space origin`` give the affine (LPS is converted to RAS)
and the same canonicalisation follows. The array is then laid out as (D, H, W) = (superior →
inferior, anterior → posterior, patient's right → left), the radiological view of axial slices.
A label map on another grid than its image is resampled onto the image's grid (nearest
neighbour, through the affines; copied exactly when the grids differ by a flip, transpose, crop or
pad: :func:`~faithbench.datasets.volume_files.resample_label_map`) before anything else.
"""

from __future__ import annotations

import csv
import numbers
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from faithbench.configurable import ParameterError
from faithbench.datasets.base import SPLITS, BaseDataset, Split
from faithbench.datasets.paths import DataError, resolve_path
from faithbench.datasets.volume_files import (NIBABEL_SUFFIXES, NRRD_SUFFIXES, ORIENTATIONS, nibabel_or_error,
                                              canonical_array, detached_data, label_ids, load_nrrd_as_nifti,
                                              load_volume, read_names, resample_label_map,
                                              stored_array)
from faithbench.names import did_you_mean
from faithbench.registry import datasets
from faithbench.types import CANONICAL_PLANES, STORED_PLANES, Sample

ITEM_KEYS = ("image", "label_map", "label", "patient_id", "split")


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """A CSV with columns ``image`` [, ``label_map``, ``label``, ``patient_id``, ``split``]."""
    with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel's "CSV UTF-8" starts with a BOM
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "image" not in reader.fieldnames:
            raise DataError(f"{path}: expected a CSV header with an 'image' column, got {reader.fieldnames}")
        unknown = sorted(set(reader.fieldnames) - set(ITEM_KEYS))
        if unknown:
            raise DataError(f"{path}: unknown columns {unknown}; valid: {', '.join(ITEM_KEYS)}")
        return [{k: v for k, v in row.items() if v not in (None, "")} for row in reader]


def resize_label_map(label_map: Tensor, size: tuple[int, ...]) -> Tensor:
    """``label_map (D, H, W)`` (integer ids) -> ``size`` (int64), on the grid of the image's
    trilinear resize (``align_corners=False``), so a mask stays on its structure: nearest-neighbour
    sampling reads another grid and put masks (k - 1) / 2 source voxels off at a downscale of k.

    Where no axis shrinks: nearest-exact (each voxel takes the id of the source voxel holding its
    centre). Otherwise each id's indicator is resized trilinearly and a voxel takes the id with the
    largest share (ties: the background, then the lower id); an id that wins no voxel keeps its
    voxel of largest share, so a lesion smaller than a voxel does not vanish (unless the resize
    reads none of it: at a downscale above 2 trilinear sampling skips source voxels, in the image too).
    Time grows with (ids x source voxels): 0.32 s for the shipped CT's 41 ids, 112 x 101 x 122 -> 64^3."""
    if tuple(label_map.shape) == tuple(size):
        return label_map.long()
    if all(s >= n for s, n in zip(size, label_map.shape)):
        return F.interpolate(label_map[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()

    def share(indicator: Tensor) -> Tensor:
        # float64: an exact tie stays a tie (a review: float32 gave 0.5000010 to an id against 0.4999990)
        return F.interpolate(indicator[None, None].double(), size=size, mode="trilinear", align_corners=False)[0, 0]

    best, out, peaks = share(label_map == 0), torch.zeros(size, dtype=torch.long), {}
    for rid in torch.unique(label_map).tolist():
        if rid != 0:
            part = share(label_map == rid)
            out[part > best] = int(rid)
            best = torch.maximum(best, part)
            peaks[int(rid)] = (float(part.max()), int(part.argmax()))
    for rid, (peak, where) in peaks.items():
        if peak > 0 and not bool((out == rid).any()):
            out.view(-1)[where] = rid
    return out


@datasets.register("volume")
class VolumeDataset(BaseDataset):
    """Volumes with optional label maps; one sample per volume.

    Parameters:
        items: a list of ``{image, label_map?, label?, patient_id?, split?}`` (paths relative to the
            data root or absolute), or
        manifest: a CSV file with those columns (relative paths in it are relative to the data root).
        names: a JSON or CSV file mapping label-map ids to region names (e.g.
            ``totalsegmentator/class_map_total.json``); ids without a name become ``label_<id>``.
        regions: keep only these region names as masks (default: every region present); each a
            name of the names file (or ``label_<id>``), else refused.
        classes: class names (default ``("class_0", "class_1")``); ``label`` indexes them (default 0).
        window: ``[low, high]`` intensity window (e.g. Hounsfield units), mapped to [0, 1] with
            clipping; default: each volume's 0.5th–99.5th percentile.
        size: ``[D, H, W]`` to resample to (trilinear for images; label maps by :func:`resize_label_map`); default
            the native grid (then every volume of a run must share it).
        orientation: ``canonical`` (default: RAS+, laid out (D, H, W) = (S→I, A→P, R→L), as in the
            module docstring) or ``as_stored`` (the array as nibabel's ``get_fdata()`` or pynrrd
            returns it, for a model trained on that layout; label maps still follow their affines).
        root: data root overriding ``$FAITHBENCH_DATA``.

    An item's ``split`` (train/val/test) places it; items without one are test items, for
    explaining a model with fixed weights. ``label``: a class index or a name of ``classes``; an item
    may lack it only when no item has one and none is a train or val item (then every label is 0).
    Volumes load on first access (cached per dataset).
    Masks: one per region (``spleen``, ``liver``, ...), absent regions all-False.
    """

    spatial_dims = 3
    background = 0.0
    # 2: label maps resized as the image (1: nearest, masks shifted by (k - 1) / 2 voxels); 4: 3's per-lesion rescue
    # withdrawn (seconds per volume of many small lesions, masks grown many times over them); 5: shares in float64;
    # 6: label maps on another affine copied exactly when grid-aligned, else the voxel holding each centre
    version = "6"
    cheap_splits = True

    def __init__(self, split: Split = "test", *, items: list[dict[str, Any]] | None = None,
                 manifest: str | None = None, names: str | None = None, regions: list[str] | None = None,
                 classes: list[str] | None = None, window: list[float] | None = None,
                 size: list[int] | None = None, orientation: str = "canonical", root: str | None = None) -> None:
        if (items is None) == (manifest is None):
            raise ValueError("volume: give exactly one of 'items' (a list) or 'manifest' (a CSV file)")
        if window is not None and (len(window) != 2 or not window[0] < window[1]):
            raise ParameterError(f"volume: expected window [low, high] with low < high, got {window}")
        ints = isinstance(size, (list, tuple, np.ndarray)) and all(  # NumPy integers too (a diff review)
            isinstance(n, (numbers.Integral, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in size)
        if size is not None and (not ints or len(size) != 3 or min(size) < 1):
            raise ParameterError(f"volume: expected size [D, H, W] of positive ints, got {size}")
        if orientation not in ORIENTATIONS:
            raise ParameterError(f"volume: expected orientation one of {', '.join(ORIENTATIONS)}, got {orientation!r}")
        entries = read_manifest(resolve_path(manifest, root, "volume manifest")) if manifest else list(items or [])
        for k, item in enumerate(entries):
            if not isinstance(item, dict) or "image" not in item:
                raise ValueError(f"volume: items[{k}]: expected a mapping with an 'image' path, got {item!r}")
            unknown = sorted(set(item) - set(ITEM_KEYS))
            if unknown:
                raise ValueError(f"volume: items[{k}]: unknown keys {unknown}; valid: {', '.join(ITEM_KEYS)}")
            if item.get("split", "test") not in SPLITS:
                raise ValueError(f"volume: items[{k}]: split must be one of {SPLITS}, got {item['split']!r}")
            for key in ("image", "label_map"):  # by name, so validate refuses it before a run
                if item.get(key) and not str(item[key]).lower().endswith(NRRD_SUFFIXES + NIBABEL_SUFFIXES):
                    raise DataError(f"volume: items[{k}]: {key} {item[key]!r} is not a volume file (expected .nii, "
                                    f".nii.gz, .mgz, .mgh, .nrrd or .nhdr)")
        self.classes = tuple(classes) if classes else ("class_0", "class_1")  # type: ignore[misc]
        stored = {"orientation": orientation} if orientation != "canonical" else {}  # the default: keys unchanged
        super().__init__(split, items=entries, names=names, regions=regions, classes=list(self.classes),
                         window=window, size=size, **stored)
        self.orientation = orientation
        self.planes = STORED_PLANES if orientation == "as_stored" else CANONICAL_PLANES  # the gallery's slice names
        labelled = [it for it in entries if it.get("label") not in (None, "")]
        for k, item in enumerate(entries):  # a review: a blank label cell silently became class 0
            if item.get("label") in (None, "") and (labelled or item.get("split", "test") != "test"):
                why = "other items have one" if labelled else f"a {item['split']} item trains the model"
                raise DataError(f"volume: items[{k}] ({item['image']}): no label ({why}); expected a class index "
                                f"0 to {len(self.classes) - 1} or a name of classes {list(self.classes)}")
        mine = [it for it in entries if it.get("split", "test") == split]
        if not mine:
            raise ValueError(f"volume: no items in split {split!r} ({len(entries)} items in all; items without "
                             f"a 'split' are test items)")
        self.items = []
        for it in mine:
            label = self._class_index(it)
            self.items.append({"image": resolve_path(it["image"], root, "volume image"),
                               "label_map": resolve_path(it["label_map"], root, "label map")
                               if it.get("label_map") else None,
                               "label": label, "patient_id": it.get("patient_id")})
        unmasked = [it["image"].name for it in self.items if it["label"] and it["label_map"] is None]
        if unmasked and any(it["label_map"] is not None for it in self.items):  # a review: dropped unnamed
            self.warn(f"volume ({split} split): {len(unmasked)} volume(s) of a class other than {self.classes[0]!r} "
                      f"without a label_map, e.g. {unmasked[0]}: their localisation metrics are undefined (no row)")
        self.names = read_names(resolve_path(names, root, "region names file")) if names else {}
        self._check_regions(regions)
        self.regions, self.window, self.size = regions, window, size
        sources = [("manifest", manifest), ("names", names)] + [
            (key, it[key]) for it in entries for key in ("image", "label_map") if it.get(key)]
        self._sources = [(f"{key}:{path}", resolve_path(path, root, key, must_exist=False)) for key, path in sources
                         if path]  # another split's file may be absent here (a test-only run): keyed as absent
        self._sources += [(f"data:{name}:{data.name}", data) for name, header in self._sources
                          for data in detached_data(header)]
        self._load = lru_cache(maxsize=64)(self._load_item)

    def __len__(self) -> int:
        return len(self.items)

    def _class_index(self, item: dict[str, Any]) -> int:
        """An item's label as a class index: an int or a whole number as text (a manifest cell), else a
        name of ``classes`` (a class named "1" is not reachable by name); 0 when absent (no item has one,
        checked in ``__init__``)."""
        raw = item.get("label", 0)
        try:  # a number is an index, in a manifest's text as in a list's int (a review: "1" was read as a name)
            label = int(raw) if not isinstance(raw, (bool, float)) else int(str(raw))
        except ValueError:
            if isinstance(raw, str) and raw.strip() in self.classes:
                return self.classes.index(raw.strip())
            raise DataError(f"volume: {item['image']}: label {raw!r} is neither a class index 0 to "
                            f"{len(self.classes) - 1} nor a name of classes {list(self.classes)}") from None
        if not 0 <= label < len(self.classes):
            raise ValueError(f"volume: {item['image']}: label {label} is not an index of classes {self.classes}")
        return label

    def _load_item(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        item = self.items[i]
        img = load_volume(item["image"])
        arrange = ORIENTATIONS[self.orientation]
        image = arrange(img, item["image"]).astype(np.float32)
        label_map = None
        if item["label_map"] is not None:
            seg = load_volume(item["label_map"])
            same_shape, same_affine = seg.shape[:3] == img.shape[:3], np.allclose(seg.affine, img.affine, atol=1e-3)
            if same_affine and not same_shape:
                self.warn(f"{item['label_map']}: label map of shape {seg.shape[:3]} has the same affine as its "
                          f"image of shape {img.shape[:3]}, so its voxel (0, 0, 0) is placed on the image's; "
                          "a label map cropped or padded without updating its header lands in the wrong "
                          "place (check an overlay)")
            if same_shape and not same_affine:  # a review: a mask saved with np.eye(4) landed on no lesion voxel
                self.warn(f"{item['label_map']}: label map of its image's shape {img.shape[:3]} but another affine, "
                          "so it is resampled through the two affines; one saved with a placeholder affine "
                          "(np.eye(4)) lands in the wrong place (check an overlay)")
            if not (same_shape and same_affine):
                # read once: the check and the resampling share it; one frame of 4D as 3D (load_volume refused
                # more: resample_from_to of 4D data failed with numpy's error, naming no file)
                data = stored_array(seg, item["label_map"])
                self._check_overlap(item, data, seg.affine, img)
                data = resample_label_map(data, seg.affine, img.shape[:3], img.affine)
                seg = nibabel_or_error().Nifti1Image(data, img.affine)
            label_map = label_ids(arrange(seg, item["label_map"]), item["label_map"])
        if self.window is not None:
            lo, hi = self.window
        else:
            lo, hi = np.percentile(image, [0.5, 99.5])
            hi = hi if hi > lo else lo + 1.0
        x = torch.from_numpy(np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32))[None]
        lm = torch.from_numpy(label_map.copy()) if label_map is not None else None
        if self.size is not None:
            x = F.interpolate(x[None], size=tuple(self.size), mode="trilinear", align_corners=False)[0]
            if lm is not None:
                lm = resize_label_map(lm, tuple(self.size))
        masks: dict[str, Tensor] = {}
        if lm is not None:
            for rid in torch.unique(lm).tolist():
                if rid == 0:
                    continue
                name = self.names.get(int(rid), f"label_{int(rid)}")
                if self.regions is None or name in self.regions:
                    masks[name] = lm == rid
            for name in self.regions or []:
                masks.setdefault(name, torch.zeros(x.shape[1:], dtype=torch.bool))
        return x, masks

    def _check_regions(self, regions: list[str] | None) -> None:
        """Each kept region is a name of the names file (or ``label_<id>`` for an id it does not
        name): a misspelled one was an all-False mask, and the run computed nothing without naming
        it (a review of real volumes)."""
        for name in regions or []:
            id_name = name.startswith("label_") and name[6:].isdigit() and int(name[6:]) not in self.names
            if name not in self.names.values() and not id_name:
                known = sorted(self.names.values())
                raise ValueError(f"volume: regions: {name!r} is no region name{' of the names file' if known else ''}"
                                 f"{did_you_mean(name, known)}; expected one of "
                                 f"{', '.join(known) if known else 'label_<id> (no names file)'}")

    def _check_overlap(self, item: dict[str, Any], data: np.ndarray, affine: np.ndarray, img: Any) -> None:
        """Refuses a label map none of whose labelled voxels' centres lies in its image's field of
        view (the two affines put it elsewhere: another series' or patient's?), warns when less than
        half does. By geometry, not by what survives the resampling: a lesion smaller than the
        image's voxel may vanish there though it lies inside (a diff review). At most 100,000
        labelled voxels, drawn with a fixed seed, are placed."""
        voxels = np.argwhere(data)  # 3D: stored_array squeezed one frame and refused more
        if not len(voxels):
            return
        if len(voxels) > 100_000:
            voxels = voxels[np.random.default_rng(0).choice(len(voxels), 100_000, replace=False)]
        to_image = np.linalg.inv(img.affine) @ affine
        placed = voxels @ to_image[:3, :3].T + to_image[:3, 3]
        shape = np.asarray(img.shape[:3])
        share = float(((placed >= -0.5) & (placed <= shape - 0.5)).all(axis=1).mean())
        if share >= 0.5:
            return
        where = f"{item['label_map']}: {'none' if share == 0 else f'{share:.0%}'} of its labelled voxels"
        if share == 0:
            raise DataError(f"{where} lie inside its image {item['image']}'s field of view (the two affines do not "
                            "overlap: a label map of another series or patient?)")
        self.warn(f"{where} lie inside its image {item['image']}'s field of view; the rest is cut off "
                  "(check an overlay)")

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"volume: index {i} out of range for {len(self)} volumes")
        item = self.items[i]
        stem = item["image"].name.split(".")[0]
        sample_id = f"{self.split}-{i:04d}-{stem}"
        try:
            x, masks = self._load(i)
        except DataError as exc:  # a run reads samples in several places; not every one names the sample
            raise DataError(f"sample {sample_id}: {exc}") from None
        return Sample(id=sample_id, image=x.clone(), label=item["label"],
                      masks={k: v.clone() for k, v in masks.items()},
                      patient_id=item["patient_id"] or stem, meta={"path": os.fspath(item["image"])})

    def data_files(self) -> list[tuple[str, Path]]:
        """The manifest, the names file, and every split's volumes and label maps (as given)."""
        return self._sources


__all__ = ["VolumeDataset", "canonical_array", "load_nrrd_as_nifti", "load_volume", "read_names", "stored_array"]
