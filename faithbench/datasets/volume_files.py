"""Reading volume files for the ``volume`` dataset: NIfTI (nibabel) and NRRD (pynrrd) as nibabel
images, their arrays in the canonical or the stored orientation, label-map ids and region names."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from faithbench.datasets.paths import DataError

def nibabel_or_error() -> Any:
    try:
        import nibabel
    except ImportError:
        raise DataError("the 'volume' dataset needs nibabel: pip install nibabel") from None
    return nibabel


def load_nrrd_as_nifti(path: Path) -> Any:
    """An NRRD file as a ``nibabel.Nifti1Image`` with a RAS affine from its header."""
    nib = nibabel_or_error()
    try:
        import nrrd
    except ImportError:
        raise DataError(f"{path}: reading NRRD needs pynrrd: pip install pynrrd") from None
    data, header = nrrd.read(str(path))  # (x, y, z) index order, as the header describes
    ndim = data.ndim
    directions = header.get("space directions")
    if directions is None:
        directions = np.diag(header.get("spacings", np.ones(ndim)))
    directions = np.asarray([d for d in directions if d is not None and not np.all(np.isnan(d))], dtype=float)
    if directions.shape != (ndim, 3):
        raise DataError(f"{path}: expected {ndim} spatial axes in 'space directions', got {directions.shape}")
    affine = np.eye(4)
    affine[:3, :3] = directions.T
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    space = str(header.get("space", "right-anterior-superior")).lower()
    flips = {"left-posterior-superior": (-1, -1, 1), "lps": (-1, -1, 1), "right-anterior-superior": (1, 1, 1),
             "ras": (1, 1, 1), "left-anterior-superior": (-1, 1, 1), "las": (-1, 1, 1)}
    if space not in flips:
        raise DataError(f"{path}: unsupported NRRD space {space!r} (expected one of {sorted(flips)})")
    affine = np.diag([*flips[space], 1]) @ affine
    return nib.Nifti1Image(data, affine)


NRRD_SUFFIXES, NIBABEL_SUFFIXES = (".nrrd", ".nhdr"), (".nii", ".nii.gz", ".mgz", ".mgh")


def detached_data(path: Path) -> list[Path]:
    """The data file a detached NRRD header (``.nhdr``) names, for the cache key: [] for another
    file, an absent or unreadable header, or a file list or pattern (then the header alone)."""
    if path.suffix.lower() != ".nhdr" or not path.is_file():
        return []
    try:
        import nrrd

        header = nrrd.read_header(str(path))
    except Exception:  # noqa: BLE001 - no pynrrd, or a header the loader will refuse with its reason
        return []
    name = header.get("data file", header.get("datafile"))
    if not isinstance(name, str) or name.startswith("LIST") or " " in name.strip():
        return []
    return [path.parent / name]


def load_volume(path: Path) -> Any:
    """A NIfTI or NRRD file as a nibabel image (not yet canonical), its voxels read into memory;
    one that is not 3D (:func:`check_3d`) or holds NaN/Inf voxels (:func:`check_finite`) is refused.

    Any failure to read it (a truncated gzip's ``EOFError``, pynrrd's ``NRRDError`` for a data
    part shorter than its header says, nibabel's several types) is a :class:`DataError` naming
    the file: nibabel reads lazily, so a truncated ``.nii.gz`` used to fail later, un-wrapped,
    and a run reported "every cell failed" (exit code 1) without the file (a review of real data).
    """
    name = path.name.lower()
    if not name.endswith(NRRD_SUFFIXES + NIBABEL_SUFFIXES):
        raise DataError(f"{path}: unsupported volume format (expected .nii, .nii.gz, .nrrd or .nhdr)")
    try:
        if name.endswith(NRRD_SUFFIXES):
            img = load_nrrd_as_nifti(path)
        else:
            img = nibabel_or_error().load(str(path))
            # read once here; the in-memory image drops the header's scaling, which the array already has
            img = type(img)(np.asanyarray(img.dataobj), img.affine, img.header)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and pynrrd raise many types for a corrupt file
        raise DataError(f"{path}: cannot read volume: {type(exc).__name__}: {exc}") from None
    check_3d(img.shape, path)
    check_finite(np.asarray(img.dataobj), path)
    return img


def check_3d(shape: tuple[int, ...], path: Path | str | None = None) -> None:
    """Refuses a volume that is not 3D (a 4D one of one frame counts as 3D), naming the file, before
    anything reads its geometry: a 2D image met nibabel's ``as_closest_canonical`` first, whose
    ``OrientationError`` named neither file nor sample (a run: "every cell failed", exit code 1), and a
    2D label map was first warned of as placed on its image's voxel (0, 0, 0) (a review)."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 3 or (len(shape) == 4 and shape[3] == 1):
        return
    where = f"{path}: " if path else ""
    raise DataError(f"{where}expected a 3D volume, got shape {shape}")


def check_finite(data: np.ndarray, path: Path) -> None:
    """Refuses a volume holding NaN or infinite voxels (float maps with a NaN background are common),
    naming the file and the counts, where it is read, so that ``validate`` refuses it too: the
    percentile window of an array with NaN is NaN, which made every voxel NaN, and the run refused
    the sample without naming its file (a review)."""
    if not np.issubdtype(data.dtype, np.floating):
        return
    nan, inf = int(np.isnan(data).sum()), int(np.isinf(data).sum())
    if nan or inf:
        raise DataError(f"{path}: the file holds NaN/Inf voxels ({nan} NaN, {inf} infinite of {data.size}): expected "
                        "finite values; replace them (np.nan_to_num, or the background value) and save it again")


def canonical_array(img: Any, path: Path | str | None = None) -> np.ndarray:
    """RAS-canonical data laid out as (D, H, W) = (S→I, A→P, R→L); ``path`` names the file in
    the error for a volume that is not 3D (checked first: nibabel cannot reorient a 2D one)."""
    check_3d(img.shape, path)
    data = stored_array(nibabel_or_error().as_closest_canonical(img), path)
    return np.ascontiguousarray(data.transpose(2, 1, 0)[::-1, ::-1, ::-1])


def stored_array(img: Any, path: Path | str | None = None) -> np.ndarray:
    """The data as the file stores it (nibabel's ``dataobj``, pynrrd's array): (i, j, k) voxel order,
    no reorientation (``orientation: as_stored``); a 4D volume of one frame as 3D, else refused."""
    data = np.asarray(img.dataobj)
    check_3d(data.shape, path)
    return np.ascontiguousarray(data[..., 0] if data.ndim == 4 else data)


ORIENTATIONS = {"canonical": canonical_array, "as_stored": stored_array}


def grid_map(to_source: np.ndarray, tol: float = 1e-4) -> np.ndarray | None:
    """``to_source`` (4 x 4, target voxel -> source voxel) rounded to a signed permutation with an integer
    translation when every entry lies within ``tol`` of it (a flipped, transposed, cropped or padded
    copy of one grid, up to the float error of the two affines), else None."""
    exact = np.rint(to_source[:3])
    if np.abs(to_source[:3] - exact).max() > tol:
        return None
    rotation = np.abs(exact[:, :3])
    if not ((rotation.sum(axis=0) == 1).all() and (rotation.sum(axis=1) == 1).all()):
        return None
    return exact


def resample_label_map(data: np.ndarray, affine: np.ndarray, shape: tuple[int, ...],
                       target_affine: np.ndarray) -> np.ndarray:
    """Label ids ``data`` (3D, voxel -> world by ``affine``) on the grid ``(shape, target_affine)``;
    0 where the target voxel's centre lies outside the source's voxels.

    On the same grid up to a flip, transpose, crop or pad (:func:`grid_map`) voxels are copied
    exactly; otherwise each target voxel takes the id of the source voxel holding its centre
    (nearest neighbour). nibabel's ``resample_from_to(order=0)`` dropped the voxels of a flipped
    copy's edge slice: its transform's translation came out 31.000000000000007, which scipy's
    constant mode places outside [0, 31] (a review: 56 of 2340 lesion voxels lost)."""
    to_source = np.linalg.inv(affine) @ target_affine
    exact = grid_map(to_source)
    out = np.zeros(tuple(int(n) for n in shape[:3]), dtype=data.dtype)
    if exact is not None:
        dst, src, axes = [], [], []
        for a in range(3):  # target axis a reads source axis p, reversed where the sign is -1
            p = int(np.flatnonzero(exact[:, a])[0])
            index = exact[p, a] * np.arange(out.shape[a]) + exact[p, 3]
            keep = (index >= 0) & (index < data.shape[p])
            dst.append(np.flatnonzero(keep))
            src.append(index[keep].astype(np.intp))
            axes.append(p)
        out[np.ix_(*dst)] = data.transpose(axes)[np.ix_(*src)]
        return out
    from scipy.ndimage import affine_transform

    # one voxel of background around the source: a centre within half a voxel beyond its edge (float
    # error, or a grid shifted by less than half a voxel) reads the edge voxel, farther out the padding
    padded = np.pad(data, 1)
    return affine_transform(padded, to_source[:3, :3], offset=to_source[:3, 3] + 1, output_shape=out.shape,
                            order=0, mode="constant", cval=0)


def label_ids(data: np.ndarray, path: Path | str) -> np.ndarray:
    """A label map's region ids as int64. A float map whose values lie within 1e-3 of integers (ids
    written as float, or 1.9999 after an interpolation) is rounded; other values (a probability
    map: 0.9, which a cast would make 0, emptying the mask) are refused, naming the file."""
    if np.issubdtype(data.dtype, np.integer) or data.dtype == bool:
        return data.astype(np.int64)
    if not np.isfinite(data).all():
        raise DataError(f"{path}: the label map holds NaN or infinite values; expected integer region ids")
    rounded = np.rint(data)
    off = np.abs(data - rounded)
    if off.size and off.max() > 1e-3:
        raise DataError(f"{path}: expected integer region ids in the label map, found {data.flat[int(off.argmax())]:g} "
                        "(a probability or soft map? threshold it into ids first)")
    return rounded.astype(np.int64)


def read_names(path: Path) -> dict[int, str]:
    """Region names: a JSON object ``{"1": "spleen", ...}`` or a CSV ``id,name`` (header optional)."""
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object of id -> name")
            return {int(k): str(v) for k, v in raw.items()}
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8-sig").splitlines()) if r]  # Excel: a BOM
        if rows and not rows[0][0].strip().lstrip("-").isdigit():
            rows = rows[1:]
        return {int(r[0]): r[1].strip() for r in rows}
    except (ValueError, IndexError, OSError) as exc:
        raise DataError(f"{path}: cannot read region names: {exc}") from None
